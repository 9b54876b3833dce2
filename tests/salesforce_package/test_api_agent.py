"""The agent endpoints the Salesforce component calls (web/api_agent.py), end to end over HTTP:
label now, re-print, the address held for review and its fix, each refusal as {code, message,
field}. Same world as tests/web/test_api_http.py (its fixture, imported): both sandboxes on
loopback, the app served by uvicorn."""

from __future__ import annotations

import base64

from sqlalchemy import select

from chronoforce.store.models import ExceptionRow, Shipment
from tests.web.test_api_http import RATES_ONLY_KEY, ApiWorld, api_world

__all__ = ["api_world"]  # the imported fixture, used by name below


def _label(world: ApiWorld, order_id: str) -> dict[str, object]:
    answer = world.http.post(f"/api/v1/orders/{order_id}/label", headers=world.headers())
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_label_now_makes_the_label_and_writes_it_back(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    made = _label(api_world, order_id)
    assert made["created"] is True and made["status"] == "label_created"
    numbers = made["skybill_numbers"]
    assert isinstance(numbers, list) and numbers
    order = api_world.order(order_id)
    assert order["Chronopost_Tracking_Number__c"] == ",".join(numbers)
    assert order["Chronopost_Label_Status__c"] == "Created"
    # Asked again: the live label, no second one at Chronopost.
    live = api_world.carrier.live_labels()
    again = _label(api_world, order_id)
    assert again["created"] is False and again["skybill_numbers"] == numbers
    assert api_world.carrier.live_labels() == live


def test_reprint_answers_the_stored_label_bytes(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    made = _label(api_world, order_id)
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/label/reprint", headers=api_world.headers()
    )
    assert answer.status_code == 200, answer.text
    copies = answer.json()["labels"]
    assert [c["skybill_number"] for c in copies] == made["skybill_numbers"]
    assert base64.b64decode(copies[0]["content_base64"]).startswith(b"%PDF")
    assert copies[0]["file_name"] == f"chronopost-{copies[0]['skybill_number']}.pdf"


def test_reprint_without_a_label_is_a_404(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/label/reprint", headers=api_world.headers()
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "SHIPMENT_NOT_FOUND"
    assert answer.json()["record_id"] == order_id


def test_label_now_for_an_unknown_order_is_a_404(api_world: ApiWorld) -> None:
    answer = api_world.http.post(
        "/api/v1/orders/801000000009999AAA/label", headers=api_world.headers()
    )
    assert answer.status_code == 404 and answer.json()["code"] == "ORDER_NOT_FOUND"


def test_the_agent_endpoints_need_the_labels_scope(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    for method, path in (
        ("POST", f"/api/v1/orders/{order_id}/label"),
        ("POST", f"/api/v1/orders/{order_id}/label/reprint"),
        ("GET", f"/api/v1/orders/{order_id}/address-review"),
    ):
        assert api_world.http.request(method, path).status_code == 401
        narrow = api_world.http.request(method, path, headers=api_world.headers(RATES_ONLY_KEY))
        assert narrow.status_code == 403, path


def test_an_address_held_for_review_is_shown_then_fixed_and_labeled(
    api_world: ApiWorld,
) -> None:
    order_id = api_world.take_order()
    good_city = api_world.order(order_id)["ShippingCity"]
    api_world.org.org.update("Order", order_id, {"ShippingCity": ""})
    refused = api_world.http.post(f"/api/v1/orders/{order_id}/label", headers=api_world.headers())
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert (body["code"], body["field"], body["record_id"]) == ("FIELD_MISSING", "city", order_id)
    assert "city is missing" in body["message"]
    # Asked again before the fix: the same refusal, from the review queue, no carrier call.
    calls = api_world.carrier.live_labels()
    again = api_world.http.post(f"/api/v1/orders/{order_id}/label", headers=api_world.headers())
    assert again.status_code == 400 and again.json()["code"] == "FIELD_MISSING"
    assert api_world.carrier.live_labels() == calls

    review = api_world.http.get(
        f"/api/v1/orders/{order_id}/address-review", headers=api_world.headers()
    )
    assert review.status_code == 200, review.text
    held = review.json()
    assert (held["code"], held["field"]) == (body["code"], body["field"])
    fields = {f["sf_field"]: f["value"] for f in held["fields"]}
    assert fields["ShippingCity"] == ""
    assert isinstance(held["candidates"], list)

    # Still wrong: refused with the check's message, nothing written.
    still = api_world.http.post(
        f"/api/v1/orders/{order_id}/address",
        json={"values": {"ShippingStreet": fields["ShippingStreet"] + " BIS"}},
        headers=api_world.headers(),
    )
    assert still.status_code == 400 and still.json()["code"] == "ADDRESS_REFUSED"
    assert api_world.order(order_id)["ShippingStreet"] == fields["ShippingStreet"]

    fixed = api_world.http.post(
        f"/api/v1/orders/{order_id}/address",
        json={"values": {"ShippingCity": good_city, "ShippingStreet": fields["ShippingStreet"]}},
        headers=api_world.headers(),
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["fields"] == ["ShippingCity"]
    assert api_world.order(order_id)["ShippingCity"] == good_city
    with api_world.runtime.store.session() as session:
        shipment = session.scalars(select(Shipment).where(Shipment.sf_id == order_id)).one()
        assert shipment.state in ("retry", "pending"), shipment.state
        row = session.scalars(select(ExceptionRow).where(ExceptionRow.shipment_id == shipment.id))
        assert all(r.state != "open" for r in row)
    made = _label(api_world, order_id)
    assert made["created"] is True
    gone = api_world.http.get(
        f"/api/v1/orders/{order_id}/address-review", headers=api_world.headers()
    )
    assert gone.status_code == 404 and gone.json()["code"] == "NO_ADDRESS_REVIEW"


def test_a_fix_with_an_unknown_key_is_a_422_naming_it(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/address", json={"fields": {}}, headers=api_world.headers()
    )
    assert answer.status_code == 422
    assert [d["loc"] for d in answer.json()["detail"]] == [["body", "values"], ["body", "fields"]]
