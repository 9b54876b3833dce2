"""Chronopost's in-body error codes, by service: which typed error each becomes, in ONE place.

Every code of Chronopost's documents for the services chronoforce calls (shipping, ESD pickups,
relay search, quick cost, tracking, cancel, proof of delivery), with its class: `data` (our
request is wrong: exception for review naming the field), `account` (credentials or contract:
stop and alert), `transient` (their side failed: retry), `business-rule` (a clear refusal).
Sources: Chronopost "Documentation Web Services" 2020 ([D] §4.3, §2.6.4) and "Spécifications
Techniques" 2017 ([S] Annexes 1, 4, 5, §3.x.5), as tabled in the reference `error_codes.csv`
(tests check every row there is covered here). Pure data and lookups; it must never do I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from chronoforce.domain.clock import as_utc
from chronoforce.domain.errors import (
    CancelConflictError,
    CancelTooEarlyError,
    CarrierAccountError,
    CarrierRefusedError,
    CarrierUnavailableError,
    CarrierValidationError,
    ChronoforceError,
)

Kind = Literal["data", "account", "transient", "business-rule"]
KINDS: Mapping[Kind, type[ChronoforceError]] = MappingProxyType(
    {
        "data": CarrierValidationError,
        "account": CarrierAccountError,
        "transient": CarrierUnavailableError,
        "business-rule": CarrierRefusedError,
    }
)

# Which service's table an operation's errorCode is read in ([D] and [S] number each service
# on its own: code 3 is a bad password in quick cost, a parcel taken over in cancel).
OPERATION_SERVICES: Mapping[str, str] = MappingProxyType(
    {
        "shippingMultiParcelV4": "shipping",
        "shippingMultiParcelV5": "shipping",
        "getReservedSkybill": "shipping",
        "getReservedSkybillWithTypeAndMode": "shipping",
        "getReservedSkybillTypeAndModeAuth": "shipping",
        "creerEnlevementNational": "esd",
        "creerEnlevementEurope": "esd",
        "faisabiliteESD": "esd",
        "recherchePointChronopost": "relay",
        "recherchePointChronopostInter": "relay",
        "quickCost": "quickcost",
        "quickCostV3": "quickcost",
        "calculateProducts": "quickcost",
        "calculateDeliveryTime": "quickcost",
        "trackSkybillV2": "tracking",
        "trackWithSenderRef": "tracking",
        "trackSearch": "tracking",
        "cancelSkybill": "cancel",
        "cancelListSkybill": "cancel",
        "searchPOD": "pod",
        "searchPODWithSenderRef": "pod",
    }
)
DEFAULT_SERVICE = "shipping"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One documented errorCode of one service.

    `when` narrows a row: `message:<regex>` (the message decides, code 33), `operation:<name>`
    (one operation's own meaning), `window` (a cancel inside the cancel window). Rows with a
    condition are tried first; the row without one is the code's default.
    """

    service: str
    code: int
    kind: Kind
    meaning: str
    source: str
    when: str = ""
    empty_answer: bool = False  # not an error at all: the answer simply has nothing (601)


def _rows(service: str, source: str, *rows: tuple[int, Kind, str]) -> list[ErrorCode]:
    return [ErrorCode(service, code, kind, meaning, source) for code, kind, meaning in rows]


_D431, _D432, _S_A4 = "[D] §4.3.1; [S] Annexe 1", "[D] §4.3.2; [S] Annexe 4", "[S] Annexe 4"
_ACCOUNT_33 = r"accescolis|identwebpro|password|mot de passe|account number|num[ée]ro de compte"

ERROR_TABLE: tuple[ErrorCode, ...] = (
    # --- shipping (label) ------------------------------------------------------------------
    *_rows(
        "shipping",
        _D432,
        (1, "transient", "System Error ([S] §3.12.5)"),
        (18, "business-rule", "ESD: pickup must be ready by a given time for that date"),
        (21, "business-rule", "ESD: wrong availability date (the message names valid dates)"),
        (25, "business-rule", "ESD: a pickup with this refEsdClient is already booked today"),
        # [S] adds that 29 may mean a bad WS password; [D] says system error: retried, and an
        # account problem shows as the retries running out with the same message.
        (29, "transient", "system error, or an internal Chronopost service down"),
        (30, "account", "Invalid contract number: wrong contract number or password"),
        (31, "data", "Empty data: a mandatory parameter is missing"),
        (32, "data", "Incorrect data length: a parameter is too long"),
        (33, "data", "Invalid data: a parameter is not in the expected format"),
        (34, "data", "Not a number: a parameter should be numeric"),
        (35, "business-rule", "Code Service GeoPost not found: product/route not consistent"),
        (36, "transient", "File not found: Chronopost configuration or PDF storage problem"),
        (37, "transient", "SBrange: the parcel-number allocation service failed"),
        (38, "business-rule", "routing: product, countries and postcodes not consistent"),
    ),
    ErrorCode(
        "shipping",
        33,
        "account",
        "Invalid accesColis account number / password, invalid identWebPro password",
        "[D] §4.3.2; [S] §3.12.5; karrio sample ShipmentErrorResponse",
        when=f"message:{_ACCOUNT_33}",
    ),
    ErrorCode(
        "shipping",
        29,
        "data",
        "reservation number not found or inconsistent",
        "[D] §2.3.3.b",
        when="operation:getReservedSkybill",
    ),
    # --- ESD pickups ------------------------------------------------------------------------
    *_rows(
        "esd",
        _D431,
        (1, "transient", "SYSTEM_ERROR"),
        (2, "transient", "APPLICATION_ERROR"),
        (3, "data", "METHOD_INPUT_PARAMETER_EMPTY"),
        (4, "data", "CONTACT_CLIENT_ATTRIBUTE_EMPTY"),
        (5, "data", "PICKUP_CONTACT_ATTRIBUTE_EMPTY"),
        (6, "data", "PICKUP_PACKAGES_ATTRIBUTE_WRONG: parcel count or weight below 0"),
        (7, "data", "CLIENT_INFO_ATTRIBUTE_EMPTY"),
        (8, "account", "WRONG_CONTRACT_NUMBER"),
        (9, "business-rule", "PICKUP_ADDRESS_ZC_UNKNOWN: no Chronopost depot for this place"),
        (10, "data", "CONTRAINTES_NOT_FOUND: pickup postcode or city unknown"),
        (11, "business-rule", "CONTRAINTES_NOT_ACTIVE: pickup place not served now"),
        (12, "data", "CONTRAINTES_ZC_CITY_UNKNOWN: city not recognised"),
        *((n, "business-rule", f"PICKUP_DATE_ERROR_{n - 12}") for n in range(13, 22)),
        (22, "data", "CONTACT_CLIENT_ZC_CITY_UNKNOWN"),
        (23, "data", "CONTACT_CLIENT_ZC_UNKNOWN"),
        (24, "data", "WRONG_ORIGIN_VALUE"),
        (25, "business-rule", "DUPLICATE_REFERENCE ([D]; [S]: SERVICE_IS_MANDATORY)"),
        (26, "business-rule", "MODIFICATION_INVALID"),
        (27, "business-rule", "ANNULATION_INVALID: pickup cannot be cancelled"),
        (28, "data", "ESD_NOT_FOUND"),
        (50, "business-rule", "label printed at the depot: asked too late ([S] only)"),
        (51, "transient", "faisabiliteESD: System Error ([S] §3.11.5)"),
        (907, "business-rule", "DATE_NON_OUVREE: not a working day"),
        (908, "transient", "PRB_CALCUL_OUVREE: working-day computation error"),
        (910, "data", "DATE_PASSE: pickup date in the past"),
        (911, "business-rule", "WEIGHT_ERROR: over 30 kg"),
        (912, "data", "MANDATORY_INSTRUCTIONS: instructions empty with Fret DOM"),
        (916, "business-rule", "DPD_ENLEVEMENT_NON_ROUTABLE"),
        (917, "business-rule", "DPD_PAYS_NON_OUVERT"),
        (918, "business-rule", "DPD_CUTOFF: too late for that date"),
        (920, "business-rule", "DPD_ENLEVEMENT_DESTINATAIRE: mainland France only"),
        (921, "account", "CONTRAT_NON_AUTORISE: ESD Europe not in the contract"),
        (922, "data", "DIMENSIONS_ERREUR: 2L + 2W + 2H over 300"),
    ),
    # --- relay points ----------------------------------------------------------------------
    *_rows(
        "relay",
        "[D] §4.3.3; [S] Annexe 5",
        (300, "data", "a parameter has the wrong format"),
        (301, "data", "a mandatory parameter is NULL"),
        (302, "data", "postcode format wrong"),
        (306, "data", "date format wrong"),
        (307, "data", "date value wrong"),
        (309, "data", "a number parameter not sent as a number"),
        (317, "data", "holidayTolerant not set to 1"),
        (319, "data", "maxDistanceSearch too high"),
        (320, "data", "maxPointChronopost too high: at most 25"),
        (321, "data", "weight format wrong"),
        (700, "transient", "System error"),
        (1500, "account", "wrong contract number or password"),
    ),
    ErrorCode(
        "relay",
        601,
        "business-rule",
        "no relay point found: an empty answer, not an error",
        "[D] §4.3.3; [S] Annexe 5",
        empty_answer=True,
    ),
    # --- quick cost -----------------------------------------------------------------------
    *_rows(
        "quickcost",
        "[D] §4.3.6; [S] §3.1.5",
        (1, "transient", "System Error"),
        (2, "data", "Data Empty: a mandatory parameter is missing"),
        (3, "account", "Invalid Password"),
        (4, "business-rule", "Invalid product code for this destination"),
        (5, "business-rule", "Amount not found: no price for the data given"),
    ),
    # --- tracking, proof of delivery --------------------------------------------------------
    *_rows("tracking", "[S] §3.15.5-3.17.5", (1, "transient", "System Error")),
    *_rows(
        "pod",
        "[S] §3.18.5",
        (1, "transient", "System Error"),
        (2, "account", "parcel does not belong to the contract"),
    ),
    # --- cancel ([D] §2.6.4 cancelListSkybill; [S] §3.14.5 cancelSkybill) --------------------
    # 2 and 3 each mean two things: inside the cancel window (the parcel is not in Chronopost's
    # system yet) they are "too early, retry when it opens"; after it, 2 is a parcel of
    # another contract ([D]) and 3 a parcel Chronopost has taken over ([S]; [D] final case).
    *_rows(
        "cancel",
        "[D] §2.6.4.b; [S] §3.14.5",
        (1, "transient", "System error"),
        (2, "account", "the parcel does not belong to the contract in accountNumber"),
        (3, "business-rule", "already taken over by Chronopost: it can no longer be cancelled"),
    ),
    ErrorCode(
        "cancel",
        2,
        "transient",
        "not yet registered in tracking: retry once the cancel window opens ([S])",
        "[S] §3.14.5",
        when="window",
    ),
    ErrorCode(
        "cancel",
        3,
        "transient",
        "not yet integrated in Chronopost's system: retry ~10 min after creation ([D])",
        "[D] §2.6.4.b",
        when="window",
    ),
)

ERROR_CODES: Mapping[tuple[str, int], ErrorCode] = MappingProxyType(
    {(e.service, e.code): e for e in ERROR_TABLE if not e.when}
)

# Cancelling works "about 10 minutes" after the label is made ([D] §2.6.4; SPEC-FACTS §9). A
# refusal up to CANCEL_GRACE later is still read as "too early": "about" leaves clocks room.
CANCEL_OPENS_AFTER = dt.timedelta(minutes=10)
CANCEL_GRACE = dt.timedelta(minutes=5)
CANCEL_RETRY_MIN = dt.timedelta(minutes=1)


def cancel_opens_at(created_at: dt.datetime) -> dt.datetime:
    """When Chronopost starts accepting a cancel for a label made at `created_at`."""
    return as_utc(created_at, name="created_at") + CANCEL_OPENS_AFTER


def service_of(operation: str) -> str:
    return OPERATION_SERVICES.get(operation, DEFAULT_SERVICE)


def lookup(
    code: int, message: str, operation: str = "", *, in_cancel_window: bool = False
) -> ErrorCode | None:
    """The row that explains `code` for this operation (and message), None when undocumented."""
    service = service_of(operation)
    for row in ERROR_TABLE:
        if row.service != service or row.code != code or not row.when:
            continue
        kind, _, value = row.when.partition(":")
        if (
            (kind == "message" and re.search(value, message, re.IGNORECASE))
            or (kind == "operation" and operation.startswith(value))
            or (kind == "window" and in_cancel_window)
        ):
            return row
    return ERROR_CODES.get((service, code))


def is_empty_answer(code: int, operation: str) -> bool:
    """A code that means "nothing found" (relay 601): the answer is read as empty."""
    row = ERROR_CODES.get((service_of(operation), code))
    return row is not None and row.empty_answer


def error_for(code: int, message: str, operation: str = "") -> ChronoforceError:
    """The typed error for a non-zero errorCode; undocumented codes are validation errors.

    Unknown codes are permanent on purpose: retrying a request Chronopost refused for a reason
    we cannot read would only repeat the refusal; the exception row shows code and message.
    """
    return _error(lookup(code, message, operation), code, message, operation)


def cancel_error_for(
    code: int,
    message: str,
    operation: str,
    *,
    created_at: dt.datetime | None,
    now: dt.datetime,
) -> ChronoforceError:
    """A cancel's errorCode read with the label's age: too early, taken over, or as the table.

    Inside the window (or, for code 2, when the label's age is unknown: [S] says a parcel just
    made is "not yet registered in tracking"), 2 and 3 are CancelTooEarlyError: retried, never
    taken as final. That matters: a recovery that took "refused" as final could make a second
    label while the first is still live.
    """
    now = as_utc(now, name="now")
    opens = cancel_opens_at(created_at) if created_at is not None else None
    inside = (opens is None and code == 2) or (opens is not None and now < opens + CANCEL_GRACE)
    row = lookup(code, message, operation, in_cancel_window=inside)
    text = message.strip() or (row.meaning if row else "")
    if row is not None and row.when == "window":
        when = opens if opens is not None else now + CANCEL_OPENS_AFTER
        return CancelTooEarlyError(
            f"Chronopost error {code}: {text}; cancelling opens at {when.isoformat()}",
            code=f"CHRONOPOST_{code}",
            operation=operation,
            opens_at=max(when, now + CANCEL_RETRY_MIN),
            now=now,
        )
    return _error(row, code, message, operation)


def _error(row: ErrorCode | None, code: int, message: str, operation: str) -> ChronoforceError:
    kind: type[ChronoforceError] = KINDS[row.kind] if row else CarrierValidationError
    if row is not None and (row.service, row.code, row.kind) == _TAKEN_OVER:
        kind = CancelConflictError
    text = message.strip() or (row.meaning if row else "unknown Chronopost error")
    named = _FIELD_IN_MESSAGE.search(text) if kind is CarrierValidationError else None
    return kind(
        f"Chronopost error {code}: {text}",
        code=f"CHRONOPOST_{code}",
        operation=operation,
        field=_field(named.group(1)) if named else "",
    )


_TAKEN_OVER = ("cancel", 3, "business-rule")  # the parcel is Chronopost's now: a conflict


def _field(name: str) -> str:
    return name.rstrip(".")


# Messages of codes 31-34 name the refused request element ("Invalid data: recipientCity",
# "Validation error - Field length SkybillValue.Service must be equal 3"), as do the ESD names
# ("DATE_PASSE: datePassage…"): the exception row shows it as the field, so a reviewer knows
# what to fix without reading XML.
_FIELD_IN_MESSAGE = re.compile(
    r"(?:\b(?:empty|invalid|incorrect)\s+data(?:\s+length)?\s*:\s*|\bField\s+(?:length\s+)?"
    r"|^(?-i:[A-Z][A-Z0-9_]+):\s*)([A-Za-z][A-Za-z0-9_./]*)",
    re.IGNORECASE,
)
