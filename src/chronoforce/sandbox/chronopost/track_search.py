"""trackSearch of the sandbox: every parcel of the account deposited in a date window, each with
its current significant event, on the sandbox clock (issue 21).

Documented ([D] §2.6.3.a; [S] §2.9.4, §3.17; SPEC-FACTS §7): account and password, dateDeposit
and dateEndDeposit mandatory as DD/MM/YYYY, parcelState mandatory (ANY, NONDISTRIBUES,
DISTRIBUES, INTERNATIONAL, INSTANCE, INCIDENT), serviceCode the sub-account (empty = 000, ALL =
every sub-account), optional sendersRef / consigneesRef / consigneesZipCode / consigneesCountry.
The answer is one listInfosPOD per parcel with its significantEvent. Unconfirmed choices
(docs/sandbox-chronopost.md, "trackSearch"): the error code of a bad request, the maximum
window, what each parcelState keeps. It must never show another account's parcel, nor an event
after the sandbox clock.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from chronoforce.sandbox.chronopost.context import PARIS, BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.store import Parcel, StoredEvent
from chronoforce.sandbox.chronopost.tables import (
    DOMESTIC_COUNTRIES,
    EVENT_CODES,
    INVALID_DATA,
)
from chronoforce.sandbox.chronopost.tracking import _account, _french

# The states of [D] §2.6.3.a, read on the category (tracking_events.csv groups) of the parcel's
# significant event; INTERNATIONAL on the recipient's country (sandbox reading, unconfirmed).
_DELIVERED = frozenset({"delivered"})
_INSTANCE = frozenset({"available_for_pickup"})  # "en instance": waiting to be collected
_INCIDENT = frozenset({"incident_delivery", "incident_parcel", "incident_routing"})
PARCEL_STATES = ("ANY", "NONDISTRIBUES", "DISTRIBUES", "INTERNATIONAL", "INSTANCE", "INCIDENT")
# No maximum window is documented ([D], [S]): the sandbox refuses more than 31 days (choice).
MAX_WINDOW_DAYS = 31
# The documents give no trackSearch code for a bad parameter: the sandbox answers 33 "Invalid
# data", Chronopost's generic code for a parameter not in the expected format (e.g. dates,
# error_codes.csv shipping 33, [S] Annexe 4) — unconfirmed for this service.
_BAD = INVALID_DATA


def _invalid(field: str, why: str) -> BusinessError:
    return BusinessError(_BAD, f"Invalid data: {field} {why}")


def _date(op: etree._Element, field: str) -> dt.date:
    value = (op.findtext(field) or "").strip()
    if not value:
        raise _invalid(field, "is mandatory (DD/MM/YYYY)")
    try:
        return dt.datetime.strptime(value, "%d/%m/%Y").date()
    except ValueError:
        raise _invalid(field, f"{value!r} is not a date DD/MM/YYYY") from None


def _sub_account(value: str) -> int:
    return int(value) if value.strip().isdigit() else -1


def _keeps(state: str, parcel: Parcel, significant: StoredEvent) -> bool:
    category = EVENT_CODES[significant.code].category
    if state == "ANY":
        return True
    if state == "DISTRIBUES":
        return category in _DELIVERED
    if state == "NONDISTRIBUES":
        return category not in _DELIVERED
    if state == "INSTANCE":
        return category in _INSTANCE
    if state == "INCIDENT":
        return category in _INCIDENT
    country = str(parcel.label_data.get("recipient", {}).get("country") or "FR").upper()
    return country not in DOMESTIC_COUNTRIES  # INTERNATIONAL


def _matches(op: etree._Element, parcel: Parcel) -> bool:
    """The optional filters: our reference, the consignee's reference, postcode and country."""
    recipient = parcel.label_data.get("recipient", {})
    wanted = {
        "sendersRef": parcel.shipper_ref or "",
        "consigneesRef": parcel.recipient_ref or "",
        "consigneesZipCode": str(recipient.get("zip") or ""),
        "consigneesCountry": str(recipient.get("country") or ""),
    }
    for field, actual in wanted.items():
        asked = (op.findtext(field) or "").strip()
        if asked and asked.upper() != actual.strip().upper():
            return False
    return True


def track_search(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Parcels of the account deposited between the two dates, each with its significant event."""
    # A bad pair is refused like the other tracking operations (TRACKING_BAD_CREDENTIALS).
    account = _account(ctx, op)
    first, last = _date(op, "dateDeposit"), _date(op, "dateEndDeposit")
    if last < first:
        raise _invalid("dateEndDeposit", "is before dateDeposit")
    if (last - first).days > MAX_WINDOW_DAYS:
        raise _invalid("dateEndDeposit", f"window longer than {MAX_WINDOW_DAYS} days")
    state = (op.findtext("parcelState") or "").strip().upper()
    if state not in PARCEL_STATES:
        raise _invalid("parcelState", f"must be one of {', '.join(PARCEL_STATES)}")
    service = (op.findtext("serviceCode") or "").strip().upper()  # [S]: empty = 000
    wanted_sub = None if service == "ALL" else _sub_account(service or "0")
    now, french = ctx.clock.timestamp(), _french(op)
    add(result, "errorCode", 0)
    for parcel in ctx.store.parcels_of_account(account):
        deposited = dt.datetime.fromtimestamp(parcel.created_at, PARIS)
        if not first <= deposited.date() <= last or parcel.created_at > now:
            continue
        if (
            wanted_sub is not None
            and _sub_account(str(parcel.label_data.get("sub_account") or "0")) != wanted_sub
        ):
            continue
        events = ctx.store.events(parcel.skybill, now)
        if not events or not _matches(op, parcel):
            continue  # nothing in tracking yet: not listed
        # The significant event is the one trackSkybillV2 marks highPriority: the last visible
        # one ([D] §2.6.3.b); a cancelled parcel's is AN (store.cancel appends it last).
        significant = events[-1]
        if _keeps(state, parcel, significant):
            _infos(ctx, add(result, "listInfosPOD"), parcel, deposited, significant, french)


def _infos(
    ctx: Context,
    element: etree._Element,
    parcel: Parcel,
    deposited: dt.datetime,
    significant: StoredEvent,
    french: bool,
) -> None:
    shipper = parcel.label_data.get("shipper", {})
    recipient = parcel.label_data.get("recipient", {})
    add_all(
        element,
        [
            ("dateDeposit", deposited),
            ("depositCountry", shipper.get("country") or "FR"),
            ("depositZipCode", shipper.get("zip") or ""),
            ("objectType", None),  # reserved ([D] §2.6.3.a)
            ("recipientCity", recipient.get("city") or ""),
            ("recipientCountry", recipient.get("country") or ""),
            ("recipientName", recipient.get("name") or ""),
            ("recipientRef", parcel.recipient_ref or ""),
            ("recipientZipCode", recipient.get("zip") or ""),
            ("shipperCity", shipper.get("city") or ""),
            ("shipperRef", parcel.shipper_ref or ""),
            ("shipperZipCode", shipper.get("zip") or ""),
        ],
    )
    code = EVENT_CODES[significant.code]
    add_all(
        add(element, "significantEvent"),
        [
            ("code", significant.code),
            ("eventDate", ctx.local(significant.at)),
            ("eventLabel", code.label_fr if french else code.label_en),
            ("highPriority", True),
            ("NPC", significant.zip[:2]),
            ("officeLabel", significant.office),
            ("zipCode", significant.zip),
        ],
    )
    add(element, "skybillNumber", parcel.skybill)
