"""Chrono Precise through /api/v1 over HTTP, both sandboxes behind it (issue 23 items 2, 3):
slots offered with price levels and dates, a slot confirmed and printed, a rebooking after a
failed delivery (by shipment and by its Case), and the slot errors as 4xx with a message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from chronoforce.store.models import Shipment
from tests.pipeline.test_precise import track_until
from tests.web.conftest import RATES_ONLY_KEY, ApiWorld, api_world_at


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("precise-api")) as world:
        yield world


def _take(world: ApiWorld) -> str:
    while True:  # inside the sandbox's Precise zone (not Corsica, not its no-slot 48xxx)
        order_id = world.take_order()
        if not (world.order(order_id)["ShippingPostalCode"] or "").startswith(("20", "48")):
            return order_id


def _weekday(slots: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in slots if s["open"] and dt.date.fromisoformat(s["date"]).isoweekday() < 6)


def test_slots_are_offered_confirmed_and_printed(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    order_id = _take(world)
    offered = http.get(f"/api/v1/orders/{order_id}/slots", headers=headers)
    assert offered.status_code == 200, offered.text
    body = offered.json()
    assert body["product_type"] == "RDV" and not body["rebooking"]
    assert body["mesh_code"] == world.order(order_id)["ShippingPostalCode"]
    levels = {s["tariff_level"] for s in body["slots"]}
    assert levels <= {"N1", "N2", "N3", "N4"} and len(levels) > 1
    chosen = _weekday(body["slots"])
    ask = {"date": chosen["date"], "code": chosen["code"]}
    booked = http.post(f"/api/v1/orders/{order_id}/slot", json=ask, headers=headers)
    assert booked.status_code == 200, booked.text
    answer = booked.json()
    assert (answer["product_code"], answer["service_code"], answer["as_code"]) == ("2O", "976", "")
    assert answer["start"] == chosen["start"] and answer["tariff_level"] == chosen["tariff_level"]

    runtime = world.runtime
    assert runtime.labels.process(answer["shipment_id"]) == "labeled"
    [label] = world.carrier.requests("shippingMultiParcelV5")[-1:]
    assert "<appointmentValue>" in label.request and "<service>976</service>" in label.request
    with runtime.store.session() as session:
        [skybill] = [
            p.skybill_number
            for p in session.get_one(Shipment, answer["shipment_id"]).parcels
            if p.live
        ]
    parcel = world.carrier.parcel(skybill)
    assert parcel is not None
    printed = f"PRECISE {chosen['date']} {chosen['start'][:5]}-{chosen['end'][:5]}"
    assert printed.encode() in parcel.label
    # once the label is made, a slot is no longer a checkout choice
    late = http.get(f"/api/v1/orders/{order_id}/slots", headers=headers)
    assert late.status_code == 409 and late.json()["code"] == "SLOT_NOT_NOW"


def test_slot_errors_are_clear_refusals(world: ApiWorld) -> None:
    http, headers = world.http, world.headers()
    corsica = _take(world)
    world.org.org.update(
        "Order", corsica, {"ShippingPostalCode": "20000", "ShippingCity": "Ajaccio"}
    )
    out = http.get(f"/api/v1/orders/{corsica}/slots", headers=headers)
    assert out.status_code == 422 and out.json()["code"] == "SLOT_OUT_OF_ZONE"
    assert "route not covered" in out.json()["message"]
    mende = _take(world)
    world.org.org.update("Order", mende, {"ShippingPostalCode": "48000", "ShippingCity": "Mende"})
    none = http.get(f"/api/v1/orders/{mende}/slots", headers=headers)
    assert none.status_code == 422 and none.json()["code"] == "SLOT_NONE"

    order_a, order_b = _take(world), _take(world)
    place = {k: world.order(order_a)[k] for k in ("ShippingPostalCode", "ShippingCity")}
    world.org.org.update("Order", order_b, place)
    world.carrier.context.slot_quota = 1
    try:
        slots_a = http.get(f"/api/v1/orders/{order_a}/slots", headers=headers).json()["slots"]
        http.get(f"/api/v1/orders/{order_b}/slots", headers=headers)
        chosen = _weekday(slots_a)
        ask = {"date": chosen["date"], "code": chosen["code"]}
        first = http.post(f"/api/v1/orders/{order_a}/slot", json=ask, headers=headers)
        taken = http.post(f"/api/v1/orders/{order_b}/slot", json=ask, headers=headers)
    finally:
        world.carrier.context.slot_quota = 3
    assert first.status_code == 200, first.text
    assert taken.status_code == 409 and taken.json()["code"] == "SLOT_TAKEN"
    assert "quota reached" in taken.json()["message"]
    unknown = {"date": chosen["date"], "code": "NOPE"}
    missing = http.post(f"/api/v1/orders/{order_b}/slot", json=unknown, headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "SLOT_NOT_FOUND"
    scoped = http.get(f"/api/v1/orders/{order_a}/slots", headers=world.headers(RATES_ONLY_KEY))
    assert scoped.status_code == 403


def test_a_case_rebooks_a_failed_delivery(world: ApiWorld) -> None:
    http, headers, runtime = world.http, world.headers(), world.runtime
    order_id = _take(world)
    street = (world.order(order_id)["ShippingStreet"] or "").split("\n")[0]
    world.org.org.update("Order", order_id, {"ShippingStreet": f"{street}\n[scenario:absent]"})
    slots = http.get(f"/api/v1/orders/{order_id}/slots", headers=headers).json()["slots"]
    chosen = _weekday(slots)
    ask = {"date": chosen["date"], "code": chosen["code"]}
    shipment_id = http.post(f"/api/v1/orders/{order_id}/slot", json=ask, headers=headers).json()[
        "shipment_id"
    ]
    assert runtime.labels.process(shipment_id) == "labeled"
    early = http.get(f"/api/v1/shipments/{shipment_id}/slots", headers=headers)
    assert early.status_code == 409  # no delivery failed yet
    reached = track_until(world, shipment_id, "delivery_attempted", flush=True)  # type: ignore[arg-type]
    assert reached == "delivery_attempted"
    # The agent opens a Case on the order (as an agent would, not tracking) and rebooks there.
    case_id = world.org.org.create(
        "Case", {"Subject": "Missed delivery", "Chronopost_Order__c": order_id}
    )
    path = f"/api/v1/cases/{case_id}"
    again = http.get(f"{path}/slots", headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["rebooking"] is True
    new = next(
        s for s in again.json()["slots"]
        if s["open"] and (s["date"], s["code"]) != (chosen["date"], chosen["code"])
    )  # fmt: skip
    rebooked = http.post(
        f"{path}/rebook", json={"date": new["date"], "code": new["code"]}, headers=headers
    )
    assert rebooked.status_code == 200, rebooked.text
    assert rebooked.json()["rebooked"] and rebooked.json()["skybill_numbers"]
    runtime.flush()
    order = world.order(order_id)
    assert order["Chronopost_Slot_Level__c"] == new["tariff_level"]
    comments = [c for c in world.org.records("CaseComment") if c.get("ParentId") == case_id]
    assert any("rebooked" in (c.get("CommentBody") or "") for c in comments)
    # the same through the shipment: a second rebooking replaces the first
    by_shipment = http.get(f"/api/v1/shipments/{shipment_id}/slots", headers=headers)
    assert by_shipment.status_code == 200 and by_shipment.json()["rebooking"]
