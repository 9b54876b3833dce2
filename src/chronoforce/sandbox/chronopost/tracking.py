"""Tracking service of the sandbox: events on the sandbox clock, search by our reference and
cancellation (proof of delivery is in pod.py).

Only events whose time is at or before the sandbox clock are shown; it must never reveal a
parcel to another account (except trackSkybillV2, which Chronopost keys on the number alone).
Cancelling keeps the documented window on the sandbox clock: refused for the first ten minutes
(not yet in tracking), and once Chronopost has taken the parcel over ([D] §2.6.4; [S] §3.14).
"""

from __future__ import annotations

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.store import Parcel, StoredEvent
from chronoforce.sandbox.chronopost.tables import (
    CANCEL_TOO_EARLY,
    CANCEL_TOO_LATE,
    DELIVERED_CODES,
    EVENT_CODES,
    NOT_TAKEN_OVER_CATEGORIES,
    NOT_TAKEN_OVER_CODES,
    PARCEL_NOT_FOUND,
    TRACKING_BAD_CREDENTIALS,
)


def _french(op: etree._Element) -> bool:
    return (op.findtext("language") or "").lower().startswith("fr")


def _account(ctx: Context, op: etree._Element) -> str:
    account = ctx.authenticate(op.findtext("accountNumber"), op.findtext("password"))
    if account is None:
        raise BusinessError.of(TRACKING_BAD_CREDENTIALS)
    return account


def _own_parcel(ctx: Context, op: etree._Element, account: str) -> Parcel:
    parcel = ctx.store.parcel((op.findtext("skybillNumber") or "").strip())
    if parcel is None or parcel.account != account:
        raise BusinessError.of(PARCEL_NOT_FOUND)
    return parcel


def _event(
    ctx: Context,
    element: etree._Element,
    event: StoredEvent,
    french: bool,
    parcel: Parcel | None,
    last: bool = False,
) -> None:
    code = EVENT_CODES[event.code]
    add_all(
        element,
        [
            ("code", event.code),
            ("eventDate", ctx.local(event.at)),
            ("eventLabel", code.label_fr if french else code.label_en),
            # [D] §2.6.3.b: true marks the event that gives the parcel's state, the last one.
            ("highPriority", last),
            ("NPC", event.zip[:2]),
            ("officeLabel", event.office),
            ("zipCode", event.zip),
        ],
    )
    if parcel is not None and event.code in DELIVERED_CODES:
        info = add(element, "infoCompList")
        add_all(info, [("name", "Consignee's name"), ("value", _consignee(parcel))])


def _consignee(parcel: Parcel) -> str:
    return str(parcel.label_data.get("recipient", {}).get("name") or "")


def track_skybill_v2(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Visible events of one parcel; an unknown number answers no events (errorCode 0)."""
    skybill = (op.findtext("skybillNumber") or "").strip()
    parcel = ctx.store.parcel(skybill)
    events = ctx.store.events(skybill, ctx.clock.timestamp()) if parcel else []
    add(result, "errorCode", 0)
    listing = add(result, "listEventInfoComp")
    french = _french(op)
    for i, event in enumerate(events):
        _event(ctx, add(listing, "events"), event, french, parcel, last=i == len(events) - 1)
    add(listing, "skybillNumber", skybill)


def track_with_sender_ref(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Every parcel of the account carrying this shipperRef, with its visible events."""
    account = _account(ctx, op)
    reference = (op.findtext("sendersRef") or "").strip()
    now, french = ctx.clock.timestamp(), _french(op)
    add(result, "errorCode", 0)
    for parcel in ctx.store.parcels_by_ref(account, reference) if reference else []:
        listing = add(result, "listParcel")
        events = ctx.store.events(parcel.skybill, now)
        for i, event in enumerate(events):
            _event(ctx, add(listing, "events"), event, french, None, last=i == len(events) - 1)
        add(listing, "skybillNumber", parcel.skybill)


def taken_over(ctx: Context, parcel: Parcel, now: float) -> bool:
    """Chronopost holds the parcel: an event past the shipper's preparation is visible."""
    return any(
        EVENT_CODES[e.code].category not in NOT_TAKEN_OVER_CATEGORIES
        and e.code not in NOT_TAKEN_OVER_CODES
        for e in ctx.store.events(parcel.skybill, now)
    )


def cancel_skybill(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Cancel a parcel from ten minutes after its creation until Chronopost takes it over;
    cancelling twice is accepted (sandbox choice)."""
    parcel = _own_parcel(ctx, op, _account(ctx, op))
    now = ctx.clock.timestamp()
    if parcel.cancelled_at is None:
        if now < parcel.created_at + ctx.cancel_window.total_seconds():
            raise BusinessError.of(CANCEL_TOO_EARLY)
        if taken_over(ctx, parcel, now):
            raise BusinessError.of(CANCEL_TOO_LATE)
        ctx.store.cancel(parcel.skybill, now, StoredEvent("AN", now, "Web Services", ""))
    add_all(result, [("errorCode", 0), ("statusCode", 0)])
