"""What an operator hits with returns, pickups and rates, read back from the sandboxes.

Issue 17 items 1 (one shipper reference per intent), 4 (a pickup once per order and day,
changed with annulerEnlevements), 5 (pickup times are Paris time, written as instants), 6 (the
product chosen is one Chronopost quoted); issue 18 item 4 (returns built as Chronopost
documents them, and the sandbox refusing one that is not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from chronoforce.domain.address import require_sendable
from chronoforce.domain.errors import CarrierValidationError, MappingError
from chronoforce.domain.models import (
    Address,
    Contact,
    LabelFormat,
    Parcel,
    Party,
    References,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.pipeline.returns import Returns
from chronoforce.pipeline.runtime import build_runtime, shipper_party
from chronoforce.sandbox.chronopost import pickups as sandbox_pickups
from chronoforce.store.models import Shipment
from tests.web.conftest import ApiWorld, api_world_at

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("cases")) as world:
        yield world


def _label(world: ApiWorld, order_id: str) -> int:
    runtime = world.runtime
    [shipment_id] = runtime.record([world.service.read_order(order_id).record], None)
    assert runtime.labels.process(shipment_id) == "labeled"
    return shipment_id


def _live(world: ApiWorld, skybills: set[str]) -> set[str]:
    return {s for s in skybills if world.carrier.parcel(s).cancelled_at is None}  # type: ignore[union-attr]


def _new_parcels(world: ApiWorld, before: set[str]) -> set[str]:
    return {p.skybill for p in world.carrier.parcels()} - before


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- issue 17 item 1: one reference per intent --------------------------------------------


def test_relabeling_an_order_never_cancels_its_return_label(world: ApiWorld) -> None:
    """The issue's reproduction: a return label, then the outbound label's answer lost while
    the changed order is relabeled; its recovery must leave the return parcel alone."""
    http, headers, runtime = world.http, world.headers(), world.runtime
    order_id = world.take_order()
    shipment_id = _label(world, order_id)
    made = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers)
    assert made.status_code == 200, made.text
    [returned] = made.json()["skybill_numbers"]
    world.carrier.advance_clock(dt.timedelta(minutes=15))  # past the cancel window, if any
    world.org.org.update(
        "Order",
        order_id,
        {"ShippingStreet": "12 rue de la Paix", "Chronopost_Label_Status__c": "Requested"},
    )
    world.carrier.set_faults(kind="http_503", rate=1.0, operations=["shippingMultiParcelV5"])
    try:
        runtime.record([world.service.read_order(order_id).record], None)
        assert runtime.labels.process(shipment_id) == "retry"  # answer lost: `calling`
    finally:
        world.carrier.clear_faults()
    assert runtime.labels.process(shipment_id) == "labeled"  # recovered, relabeled
    assert world.carrier.parcel(returned).cancelled_at is None  # type: ignore[union-attr]
    sent = [r.request for r in world.carrier.requests("trackWithSenderRef")]
    assert sent and all("R-" not in r for r in sent)


def test_a_lost_return_answer_never_leaves_two_live_return_labels(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    order_id = world.take_order()
    before = {p.skybill for p in world.carrier.parcels()}
    world.carrier.set_faults(kind="http_503", rate=1.0, operations=["shippingMultiParcelV5"])
    try:
        lost = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers)
    finally:
        world.carrier.clear_faults()
    assert lost.status_code == 503
    again = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers)
    assert again.status_code == 200, again.text
    made = _new_parcels(world, before)
    assert len(made) == 2  # the lost one, then the one answered
    assert _live(world, made) == set(again.json()["skybill_numbers"])  # one live return label
    by_reference = world.carrier.requests("trackWithSenderRef")[-1].request
    assert "R-" in by_reference  # looked up by the reference the return was sent with


# --- issue 17 items 4 and 5: pickups ----------------------------------------------------


def _pickup_day(world: ApiWorld) -> dt.date:
    day = world.carrier.now().date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _ask(day: dt.date, **more: Any) -> dict[str, Any]:
    return {"date": day.isoformat(), "ready_time": "14:00", "closing_time": "18:00", **more}


def test_a_pickup_is_booked_once_per_order_and_day(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    order_id = world.take_order()
    _label(world, order_id)
    day = _pickup_day(world)
    calls = len(world.carrier.requests("creerEnlevementNational"))
    first = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
    again = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["pickup_number"] == first.json()["pickup_number"]
    assert (first.json()["booked"], again.json()["booked"]) == (True, False)
    assert len(world.carrier.requests("creerEnlevementNational")) == calls + 1  # one driver
    world.runtime.flush()
    assert world.order(order_id)["Chronopost_Pickup_Number__c"] == first.json()["pickup_number"]


def test_changing_a_pickup_cancels_the_first_with_annuler_enlevements(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    order_id = world.take_order()
    _label(world, order_id)
    day = _pickup_day(world)
    first = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
    assert first.status_code == 200, first.text
    number = first.json()["pickup_number"]
    later = _ask(day, ready_time="15:00", change=True)
    changed = http.post(f"/api/v1/orders/{order_id}/pickup", json=later, headers=headers)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["booked"] and body["cancelled_pickups"] == [number]
    assert body["pickup_number"] != number
    [cancel] = world.carrier.requests("annulerEnlevements")[-1:]
    assert cancel.error_code == 0 and f"<esdNumber>{number}</esdNumber>" in cancel.request
    context = world.carrier.context
    assert sandbox_pickups.cancelled(context, number) is True
    assert sandbox_pickups.cancelled(context, body["pickup_number"]) is False
    world.runtime.flush()
    assert world.order(order_id)["Chronopost_Pickup_Number__c"] == body["pickup_number"]


def test_a_pickup_whose_answer_was_lost_is_never_booked_twice(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    order_id = world.take_order()
    _label(world, order_id)
    day = _pickup_day(world)
    world.carrier.set_faults(kind="http_503", rate=1.0, operations=["creerEnlevementNational"])
    try:  # booked at Chronopost, the answer lost on the way back
        lost = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
    finally:
        world.carrier.clear_faults()
    assert lost.status_code == 503
    again = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "PICKUP_ALREADY_BOOKED"
    [first, second] = world.carrier.requests("creerEnlevementNational")[-2:]
    assert first.injected == "http_503" and second.error_code == 25  # one driver booked


def test_the_sandbox_refuses_a_second_pickup_under_the_same_reference_that_day(
    world: ApiWorld,
) -> None:
    order_id = world.take_order()
    shipment_id = _label(world, order_id)
    runtime = world.runtime
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        skybills = tuple(p.skybill_number for p in row.parcels if p.live)
        reference = row.shipper_ref or ""
    from chronoforce.domain.models import Pickup

    pickup = Pickup(_pickup_day(world), dt.time(14), dt.time(18))
    parcels = (Parcel(Decimal(1)),)
    shipper = shipper_party(runtime.settings)
    runtime.carrier.book_pickup(shipper, pickup, parcels, skybills, reference)
    with pytest.raises(CarrierValidationError) as refused:
        runtime.carrier.book_pickup(shipper, pickup, parcels, skybills, reference)
    assert refused.value.code == "CHRONOPOST_25"


def test_pickup_times_are_paris_time_written_as_instants(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    labeled, unlabeled = world.take_order(), world.take_order()
    _label(world, labeled)
    day = _pickup_day(world)
    for order_id in (labeled, unlabeled):  # a pickup of its own; the label's esdValue
        answer = http.post(f"/api/v1/orders/{order_id}/pickup", json=_ask(day), headers=headers)
        assert answer.status_code == 200, answer.text
    world.runtime.flush()
    wanted = dt.datetime.combine(day, dt.time(14), tzinfo=PARIS)
    for order_id in (labeled, unlabeled):
        written = world.order(order_id)["Chronopost_Pickup_Date__c"]
        assert _instant(written) == wanted, (order_id, written)  # 13:00 UTC in winter


# --- issue 17 item 6: the product chosen is one Chronopost quoted -------------------------


@pytest.mark.parametrize(
    "to", [{"country": "MC", "postal_code": "98000"}, {"country": "FR", "postal_code": "97400"}]
)
def test_rates_choose_only_a_product_chronopost_quoted_or_say_why(
    world: ApiWorld, to: dict[str, str]
) -> None:
    answer = world.http.post(
        "/api/v1/rates", json={"to": to, "parcels": [{"weight_kg": 2}]}, headers=world.headers()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    quoted = {p["product_code"] for p in body["products"]}
    if body["chosen"] is not None:
        assert body["chosen"]["product_code"] in quoted
    else:
        assert "does not offer" in body["routing_error"]
        assert all(code in body["routing_error"] for code in quoted)


# --- issue 18 item 4: returns as Chronopost documents them --------------------------------


def _field(request: str, name: str) -> str:
    start = request.index(f"<{name}>") + len(name) + 2
    return request[start : request.index(f"</{name}>", start)]


def test_a_return_is_sent_by_the_customer_to_the_warehouse_with_a_return_product(
    world: ApiWorld,
) -> None:
    order_id = world.take_order()
    answer = world.http.post(
        f"/api/v1/orders/{order_id}/return-label", json={}, headers=world.headers()
    )
    assert answer.status_code == 200, answer.text
    sent = world.carrier.requests("shippingMultiParcelV5")[-1].request
    order = world.order(order_id)
    merchant = world.runtime.settings.chronopost.shipper
    assert _field(sent, "productCode") == "4T"  # Chrono Reverse 13 (api.return_product)
    assert _field(sent, "mode") == "PPR"
    assert _field(sent, "modeRetour") == "2"  # api.return_delivery: case
    assert _field(sent, "shipperZipCode") == order["ShippingPostalCode"]  # the customer
    assert _field(sent, "recipientZipCode") == merchant.postal_code  # the warehouse
    assert _field(sent, "customerName") == merchant.name  # the account holder
    assert _field(sent, "shipperRef").startswith("R-")
    parcel = world.carrier.parcel(answer.json()["skybill_numbers"][0])
    assert parcel is not None and parcel.is_return and parcel.product == "4T"


def test_a_return_label_chronopost_hands_over_needs_the_customers_email(
    world: ApiWorld, tmp_path: Any
) -> None:
    settings = world.runtime.settings
    api = {**settings.api, "return_delivery": "post_office", "return_product": "4U"}
    runtime = build_runtime(settings.model_copy(update={"api": api}))
    try:
        read = _reachable_order(world)
        made = Returns(runtime.store, runtime.labels, runtime.now).ask(
            read.order, read.record, read.items
        )
        sent = world.carrier.requests("shippingMultiParcelV5")[-1].request
        assert made.created and _field(sent, "modeRetour") == "3"
        assert _field(sent, "productCode") == "4U" and _field(sent, "shipperEmail")
        # Without an e-mail Chronopost could not reach the customer: refused, the field named.
        other = world.take_order()
        contact = world.order(other)["ShipToContactId"]
        world.org.org.update("Contact", contact, {"Email": None})
        read = world.service.read_order(other)
        with pytest.raises(MappingError) as refused:
            Returns(runtime.store, runtime.labels, runtime.now).ask(
                read.order, read.record, read.items
            )
        assert refused.value.field == "email" and refused.value.record_id == other
        with runtime.store.session() as session:
            row = session.scalars(
                select(Shipment).where(Shipment.sf_id == other, Shipment.intent == "return")
            ).one()
            assert row.state == "exception"  # kept for review, nothing sent
        runtime.flush()  # a return's failure leaves the order's outbound label status alone
        assert world.order(other).get("Chronopost_Label_Status__c") != "Error"
    finally:
        runtime.close()


def _reachable_order(world: ApiWorld) -> Any:
    """An order whose customer has a mobile phone and an e-mail, as the label will carry them."""
    while True:
        read = world.service.read_order(world.take_order())
        contact = require_sendable(read.order.recipient, "shipper").contact
        if contact.mobile and contact.email:
            return read


def _return_request(world: ApiWorld, **changes: Any) -> ShipmentRequest:
    merchant = shipper_party(world.runtime.settings)
    consumer = Party(
        Address("Marie Durand", "", "10 rue de Rivoli", "", "75004", "Paris", "FR"),
        Contact("Marie Durand", phone="0612345678", mobile="0612345678", email="m@example.com"),
    )
    values: dict[str, Any] = {
        "shipper": consumer,
        "recipient": merchant,
        "parcels": (Parcel(Decimal(1)),),
        "product_code": "4T",
        "ship_date": world.carrier.now().date(),
        "references": References("R-T1", shipper_ref="R-T1"),
        "options": ShipmentOptions(is_return=True, label_format=LabelFormat.PPR, mode_retour="2"),
        "customer": merchant,
    }
    values.update(changes)
    return ShipmentRequest(**values)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("pdf", "mode"),
        ("merchant_sends", "shipperName"),
        ("post_office_without_email", "shipperEmail"),
        ("abroad", "shipperCountry"),
    ],
)
def test_the_sandbox_refuses_a_return_that_breaks_the_documented_rules(
    world: ApiWorld, change: str, field: str
) -> None:
    good = _return_request(world)
    options, consumer = good.options, good.shipper
    bad = {
        "pdf": {"options": ShipmentOptions(is_return=True, mode_retour="2")},
        "merchant_sends": {"shipper": good.customer, "recipient": consumer},
        "post_office_without_email": {
            "shipper": Party(consumer.address, Contact("Marie Durand", mobile="0612345678")),
            "options": ShipmentOptions(
                is_return=True, label_format=LabelFormat.PPR, mode_retour="3"
            ),
        },
        "abroad": {
            "shipper": Party(
                Address("Anna Weber", "", "Hauptstrasse 5", "", "10115", "Berlin", "DE"),
                consumer.contact,
            )
        },
    }[change]
    assert options.label_format is LabelFormat.PPR
    world.runtime.carrier.create_shipment(good)  # the documented form is accepted
    with pytest.raises(CarrierValidationError) as refused:
        world.runtime.carrier.create_shipment(_return_request(world, **bad))
    assert refused.value.code == "CHRONOPOST_33" and field in refused.value.message
