"""Chrono Precise through both sandboxes over HTTP (issue 23 items 2 and 3): a slot searched,
chosen, confirmed and printed; a rebooking after a failed delivery; slot errors as refusals.

Facts: SPEC-FACTS.md §6 ([D] §2.5, §3.5, §4.7). The sandbox's zones and codes are its own
choices (docs/sandbox-chronopost.md, "Creneau service").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from chronoforce.domain.errors import (
    ConflictError,
    NoSlotError,
    OutOfZoneError,
    SlotExpiredError,
    SlotTakenError,
)
from chronoforce.pipeline.precise import Precise, confirmed_slot
from chronoforce.pipeline.runtime import shipper_party
from chronoforce.store.models import DeliverySlot as SlotRow
from chronoforce.store.models import Shipment
from tests.web.conftest import ApiWorld, api_world_at

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("precise")) as world:
        yield world


def _precise(world: ApiWorld) -> Precise:
    runtime = world.runtime
    return Precise(
        runtime.store, runtime.carrier, runtime.labels.gates, shipper_party(runtime.settings),
        runtime.now, runtime.mapping,
    )  # fmt: skip


def _take(world: ApiWorld) -> str:
    """An order inside the sandbox's Precise zone (not Corsica, not its no-slot 48xxx)."""
    while True:
        order_id = world.take_order()
        if not (world.order(order_id)["ShippingPostalCode"] or "").startswith(("20", "48")):
            return order_id


def _shipment(world: ApiWorld, order_id: str, **fields: str) -> int:
    if fields:
        world.org.org.update("Order", order_id, fields)
    [shipment_id] = world.runtime.record([world.service.read_order(order_id).record], None)
    return shipment_id


def _weekday(offer: object) -> object:
    return next(s for s in offer.slots if s.open and s.date.isoweekday() < 6)  # type: ignore[attr-defined]


def track_until(world: ApiWorld, shipment_id: int, wanted: str, *, flush: bool = False) -> str:
    """Tracking rounds, the sandbox's clock two hours on each, until the shipment's status is
    `wanted` (or 48 sandbox hours went by); the status it reached. Our side's clock moves with
    the sandbox's, so each round is a new trackSearch round (delta tracking)."""
    runtime = world.runtime
    started = world.carrier.now()
    deadline = started + dt.timedelta(hours=48)
    status = ""
    while world.carrier.now() < deadline and status != wanted:
        world.carrier.advance_clock(dt.timedelta(hours=2))
        ahead = world.carrier.now() - started
        runtime.tracking.now = lambda ahead=ahead: dt.datetime.now(dt.UTC) + ahead
        with runtime.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            row.next_poll_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        runtime.poll_once()
        if flush:
            runtime.flush()
        with runtime.store.session() as session:
            status = session.get_one(Shipment, shipment_id).status
    return status


def test_a_slot_is_searched_chosen_confirmed_and_printed(world: ApiWorld) -> None:
    order_id = _take(world)
    shipment_id = _shipment(world, order_id)
    precise = _precise(world)
    offer = precise.offer(shipment_id)
    assert offer.slots and offer.mesh_code == world.order(order_id)["ShippingPostalCode"]
    chosen = _weekday(offer)
    booked = precise.confirm(shipment_id, chosen.date, chosen.code)  # type: ignore[attr-defined]
    assert (booked.confirmed.product_code, booked.confirmed.service_code) == ("2O", "976")
    stored = confirmed_slot(world.runtime.store, shipment_id)
    assert stored is not None and stored.slot.starts_at == chosen.starts_at  # type: ignore[attr-defined]
    assert (stored.product_code, stored.service_code) == ("2O", "976")
    [confirm] = world.carrier.requests("confirmDeliverySlotV2")[-1:]
    assert confirm.error_code == 0 and confirm.account == "19869502"
    assert "255562" not in confirm.request  # the header's password is never logged

    assert world.runtime.labels.process(shipment_id) == "labeled"
    [label] = world.carrier.requests("shippingMultiParcelV5")[-1:]
    assert label.error_code == 0
    assert (
        "<appointmentValue>" in label.request and "<productCode>2O</productCode>" in label.request
    )
    assert "<service>976</service>" in label.request
    assert f"<timeSlotTariffLevel>{chosen.tariff_level}</timeSlotTariffLevel>" in label.request  # type: ignore[attr-defined]
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        [skybill] = [p.skybill_number for p in row.parcels if p.live]
    parcel = world.carrier.parcel(skybill)
    assert parcel is not None
    when = f"PRECISE {chosen.date} {chosen.start:%H:%M}-{chosen.end:%H:%M}"  # type: ignore[attr-defined]
    assert when.encode() in parcel.label
    world.runtime.flush()
    order = world.order(order_id)
    assert order["Chronopost_Slot_Level__c"] == chosen.tariff_level  # type: ignore[attr-defined]
    assert order["Chronopost_Slot_Start__c"] and order["Chronopost_Slot_End__c"]


def test_slots_offered_at_checkout_hold_the_label_until_one_is_chosen(world: ApiWorld) -> None:
    """The label worker does not make the label while the customer chooses (pipeline/precise.py
    CHECKOUT_HOLD); the confirm lets it go at once, with the slot on it."""
    from chronoforce.pipeline.runner import due_shipments

    order_id = _take(world)
    shipment_id = _shipment(world, order_id)
    precise = _precise(world)
    now = dt.datetime.now(dt.UTC)
    assert shipment_id in due_shipments(world.runtime.store, now)
    offer = precise.offer(shipment_id)
    assert shipment_id not in due_shipments(world.runtime.store, now + dt.timedelta(minutes=5))
    chosen = _weekday(offer)
    precise.confirm(shipment_id, chosen.date, chosen.code)  # type: ignore[attr-defined]
    assert shipment_id in due_shipments(world.runtime.store, now)


def test_a_slot_cannot_be_chosen_once_the_label_is_made(world: ApiWorld) -> None:
    order_id = _take(world)
    shipment_id = _shipment(world, order_id)
    assert world.runtime.labels.process(shipment_id) == "labeled"
    with pytest.raises(ConflictError) as refused:
        _precise(world).offer(shipment_id)
    assert refused.value.code == "SLOT_NOT_NOW"


def test_a_rebooking_after_a_failed_delivery_reaches_the_parcel(world: ApiWorld) -> None:
    order_id = _take(world)
    street = (world.order(order_id)["ShippingStreet"] or "").split("\n")[0]
    shipment_id = _shipment(world, order_id, ShippingStreet=f"{street}\n[scenario:absent]")
    precise = _precise(world)
    first = precise.offer(shipment_id)
    chosen = _weekday(first)
    precise.confirm(shipment_id, chosen.date, chosen.code)  # type: ignore[attr-defined]
    assert world.runtime.labels.process(shipment_id) == "labeled"
    assert track_until(world, shipment_id, "delivery_attempted") == "delivery_attempted"
    runtime = world.runtime

    again = precise.offer(shipment_id)
    assert all(s.date > world.carrier.now().date() for s in again.slots)
    new = next(s for s in again.slots if s.open and (s.date, s.code) != (chosen.date, chosen.code))  # type: ignore[attr-defined]
    booked = precise.confirm(shipment_id, new.date, new.code)
    assert booked.rebooked and booked.skybill_numbers
    assert confirmed_slot(runtime.store, shipment_id).slot.date == new.date  # type: ignore[union-attr]
    with runtime.store.session() as session:
        states = [
            (r.reason, r.state)
            for r in session.scalars(
                select(SlotRow).where(
                    SlotRow.shipment_id == shipment_id, SlotRow.state != "offered"
                )
            )
        ]
    assert states == [("checkout", "replaced"), ("rebook", "confirmed")]
    runtime.flush()
    order = world.order(order_id)
    paris = dt.datetime.combine(new.date, new.start, tzinfo=PARIS)
    written = dt.datetime.fromisoformat(order["Chronopost_Slot_Start__c"].replace("Z", "+00:00"))
    assert written == paris and order["Chronopost_Slot_Level__c"] == new.tariff_level
    [confirm] = world.carrier.requests("confirmDeliverySlotV2")[-1:]
    assert f"<meshCode>{again.mesh_code}</meshCode>" in confirm.request


@pytest.mark.parametrize(
    ("postcode", "error", "code"),
    [
        (("20000", "Ajaccio"), OutOfZoneError, "SLOT_OUT_OF_ZONE"),
        (("48000", "Mende"), NoSlotError, "SLOT_NONE"),
    ],
)
def test_out_of_zone_and_no_slot_are_clear_refusals(
    world: ApiWorld, postcode: tuple[str, str], error: type[Exception], code: str
) -> None:
    order_id = _take(world)
    place = {"ShippingPostalCode": postcode[0], "ShippingCity": postcode[1]}
    shipment_id = _shipment(world, order_id, **place)
    with pytest.raises(error) as refused:
        _precise(world).offer(shipment_id)
    assert refused.value.code == code  # type: ignore[attr-defined]
    assert "84" in str(refused.value) or "71" in str(refused.value)


def test_a_taken_slot_and_an_expired_offer_are_refused(world: ApiWorld) -> None:
    precise = _precise(world)
    order_a = _take(world)
    first = _shipment(world, order_a)
    same = {k: world.order(order_a)[k] for k in ("ShippingPostalCode", "ShippingCity")}
    second = _shipment(world, _take(world), **same)  # the same tile (meshCode)
    world.carrier.context.slot_quota = 1
    try:
        offer_a, offer_b = precise.offer(first), precise.offer(second)
        chosen = next(
            s for s in offer_a.slots
            if s.open and s.date.isoweekday() < 6
            and any((t.date, t.code, t.open) == (s.date, s.code, True) for t in offer_b.slots)
        )  # fmt: skip
        precise.confirm(first, chosen.date, chosen.code)
        assert offer_b.mesh_code == offer_a.mesh_code
        with pytest.raises(SlotTakenError) as taken:
            precise.confirm(second, chosen.date, chosen.code)
        assert "10" in str(taken.value)  # quota reached
    finally:
        world.carrier.context.slot_quota = 3
    third = _shipment(world, _take(world))
    offer = precise.offer(third)
    world.carrier.advance_clock(dt.timedelta(minutes=31))  # the sandbox's transaction lifetime
    slot = _weekday(offer)
    with pytest.raises(SlotExpiredError):
        precise.confirm(third, slot.date, slot.code)  # type: ignore[attr-defined]
