"""trackSearch: every parcel of an account deposited in a date window, each with its current
significant event, in one call (issue 21; [D] §2.6.3.a; [S] §2.9.4, §3.17; SPEC-FACTS §7).

No I/O here. Dates go as `DD/MM/YYYY` ([D], [S]); the parcel state is one of PARCEL_STATES;
`service_code` is the sub-account ([S]: empty = 000, `ALL` = every sub-account). It must never
invent an event: a parcel without a significant event has `significant` None.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope, result_of
from chronoforce.chronopost.tracking import LANGUAGE, NAMESPACE, PARIS, event_time
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.models import TrackingEvent

OPERATION = "trackSearch"
# [D] §2.6.3.a: ANY, NONDISTRIBUES (not delivered), DISTRIBUES (delivered), INTERNATIONAL (sent
# abroad), INSTANCE (waiting for collection), INCIDENT.
PARCEL_STATES = ("ANY", "NONDISTRIBUES", "DISTRIBUES", "INTERNATIONAL", "INSTANCE", "INCIDENT")
ALL_SUB_ACCOUNTS = "ALL"  # [S] §3.17


@dataclass(frozen=True, slots=True)
class SearchedParcel:
    """One listInfosPOD entry of a trackSearch answer."""

    skybill_number: str
    deposited_at: dt.datetime | None
    significant: TrackingEvent | None
    shipper_ref: str = ""
    recipient_ref: str = ""
    recipient_zip: str = ""
    recipient_country: str = ""


def day(value: dt.date) -> str:
    """`DD/MM/YYYY`, the documented format of dateDeposit and dateEndDeposit."""
    return value.strftime("%d/%m/%Y")


def build_search(
    credentials: ChronopostCredentials,
    first: dt.date,
    last: dt.date,
    state: str = "ANY",
    service_code: str | None = None,
    *,
    senders_ref: str | None = None,
    consignees_ref: str | None = None,
    consignees_zip: str | None = None,
    consignees_country: str | None = None,
) -> bytes:
    """The request; `service_code` None sends the credentials' sub-account (empty = 000)."""
    if state not in PARCEL_STATES:
        raise ValueError(f"parcelState must be one of {PARCEL_STATES}, not {state!r}")
    if last < first:
        raise ValueError("dateEndDeposit must not be before dateDeposit")
    values: dict[str, Any] = {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "language": LANGUAGE,
        "consigneesCountry": consignees_country,
        "consigneesRef": consignees_ref,
        "consigneesZipCode": consignees_zip,
        "dateDeposit": day(first),
        "dateEndDeposit": day(last),
        "parcelState": state,
        "sendersRef": senders_ref,
        "serviceCode": credentials.sub_account.strip()
        if service_code is None
        else service_code.strip(),
    }
    return zeep_request(
        Service.TRACKING, OPERATION, {k: v for k, v in values.items() if v is not None}
    )


def _deposit(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=PARIS)
    return event_time(str(value), OPERATION)


def parse_search(content: bytes) -> tuple[SearchedParcel, ...]:
    """The parcels of the answer; a non-zero errorCode raises its typed error (codes.py)."""
    root = parse_envelope(content, OPERATION)
    result_of(root, NAMESPACE, OPERATION)
    value = zeep_result(Service.TRACKING, OPERATION, root)
    parcels = []
    for info in value.listInfosPOD or ():
        skybill = (info.skybillNumber or "").strip()
        if not skybill:
            continue
        event = info.significantEvent
        significant = (
            TrackingEvent(
                skybill_number=skybill,
                code=(event.code or "").strip(),
                label=(event.eventLabel or "").strip(),
                time=event_time(event.eventDate, OPERATION),
                place=(event.officeLabel or "").strip(),
                postal_code=(event.zipCode or "").strip(),
                high_priority=bool(event.highPriority),
            )
            if event is not None and (event.code or "").strip() and event.eventDate is not None
            else None
        )
        parcels.append(
            SearchedParcel(
                skybill_number=skybill,
                deposited_at=_deposit(info.dateDeposit),
                significant=significant,
                shipper_ref=(info.shipperRef or "").strip(),
                recipient_ref=(info.recipientRef or "").strip(),
                recipient_zip=(info.recipientZipCode or "").strip(),
                recipient_country=(info.recipientCountry or "").strip(),
            )
        )
    return tuple(parcels)
