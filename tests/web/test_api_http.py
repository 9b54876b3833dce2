"""The HTTP API (/api/v1) end to end: rates, relay points, pickups, returns, cancel, auth.

Everything runs on loopback: the Chronopost sandbox, the Salesforce sandbox over HTTPS, and
`create_app` served by a real uvicorn server, with two configured API clients. Each endpoint is
tested for success, a Chronopost error, bad input, bad credentials and an unknown order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chronoforce.sandbox.chronopost import DEMO_PASSWORD
from chronoforce.store.models import ApiToken, Parcel, Shipment
from chronoforce.web.api_config import sha256_hex
from tests.web.conftest import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    RATES_ONLY_KEY,
    ApiWorld,
    api_world_at,
)


@pytest.fixture(scope="module")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("api")) as world:
        yield world


# --- OpenAPI and auth ---------------------------------------------------------------------


def test_openapi_lists_every_endpoint(api_world: ApiWorld) -> None:
    spec = api_world.http.get("/openapi.json").json()
    assert {
        "/api/v1/oauth/token",
        "/api/v1/rates",
        "/api/v1/orders/{order_id}/rate",
        "/api/v1/relay-points",
        "/api/v1/orders/{order_id}/pickup",
        "/api/v1/orders/{order_id}/return-label",
        "/api/v1/cases/{case_id}/return-label",
        "/api/v1/shipments/{shipment_id}/cancel",
        "/api/v1/orders/{order_id}/cancel",
    } <= set(spec["paths"])


def test_client_credentials_token_opens_the_api(api_world: ApiWorld) -> None:
    answer = api_world.http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "scope": "relay"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"] == "bearer" and token["scope"] == "relay"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    points = api_world.http.get("/api/v1/relay-points?postal_code=75008", headers=bearer)
    assert points.status_code == 200, points.text
    # The token was asked for `relay` only: rates are refused, with the scope named.
    refused = api_world.http.post("/api/v1/rates", json=EXPLICIT, headers=bearer)
    assert refused.status_code == 403 and "rates" in refused.json()["message"]
    # Only the digest is stored.
    with api_world.runtime.store.session() as session:
        digests = list(session.scalars(select(ApiToken.digest)))
    assert sha256_hex(token["access_token"]) in digests
    assert token["access_token"] not in digests


def test_wrong_secret_or_grant_is_refused(api_world: ApiWorld) -> None:
    http = api_world.http
    wrong = http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    unknown = http.post(
        "/api/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
    )
    assert unknown.status_code == 401
    grant = http.post("/api/v1/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/rates", {"to": {"postal_code": "75008"}, "parcels": [{"weight_kg": 1}]}),
        ("POST", "/api/v1/orders/801000000000001AAA/rate", {"product_code": "01"}),
        ("GET", "/api/v1/relay-points?postal_code=75008", None),
        (
            "POST",
            "/api/v1/orders/801000000000001AAA/pickup",
            {"date": "2030-01-02", "ready_time": "10:00", "closing_time": "17:00"},
        ),
        ("POST", "/api/v1/orders/801000000000001AAA/return-label", {}),
        ("POST", "/api/v1/shipments/1/cancel", None),
        ("POST", "/api/v1/orders/801000000000001AAA/cancel", None),
    ],
)
def test_every_endpoint_needs_credentials_and_its_scope(
    api_world: ApiWorld, method: str, path: str, body: Any
) -> None:
    http = api_world.http
    missing = http.request(method, path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    bad = http.request(method, path, json=body, headers={"Authorization": "Bearer cft_forged"})
    assert bad.status_code == 401
    bad_key = http.request(method, path, json=body, headers=api_world.headers("cfk_wrong"))
    assert bad_key.status_code == 401
    if "/rate" not in path:  # the rates-only client may call the two rate endpoints
        scoped = http.request(method, path, json=body, headers=api_world.headers(RATES_ONLY_KEY))
        assert scoped.status_code == 403, scoped.text


def test_every_call_is_logged_with_its_client_id(
    api_world: ApiWorld, request: pytest.FixtureRequest
) -> None:
    # The suite's log lines (JSON, as in production) go to one file: see tests/conftest.py.
    log_file = request.config._tmp_path_factory.getbasetemp() / "chronoforce-session.jsonl"  # type: ignore[attr-defined]
    start = log_file.stat().st_size
    api_world.http.get("/api/v1/relay-points?postal_code=75008", headers=api_world.headers())
    api_world.http.get("/api/v1/relay-points?postal_code=75008")
    with log_file.open("rb") as handle:
        handle.seek(start)
        lines = [json.loads(line) for line in handle.read().decode().splitlines() if line.strip()]
    calls = [line for line in lines if line.get("event") == "api call"]
    assert {(c["client_id"], c["status"]) for c in calls} >= {(CLIENT_ID, 200), ("", 401)}, calls
    assert all(c["path"] == "/api/v1/relay-points" and c["ms"] >= 0 for c in calls)
    assert API_KEY not in log_file.read_text()


# --- rates --------------------------------------------------------------------------------

EXPLICIT = {
    "to": {"country": "FR", "postal_code": "69003", "city": "Lyon"},
    "parcels": [{"weight_kg": "2.4"}, {"weight_kg": "0.8"}],
}


def test_rates_for_a_destination_price_every_product_and_say_which_routing_picks(
    api_world: ApiWorld,
) -> None:
    answer = api_world.http.post("/api/v1/rates", json=EXPLICIT, headers=api_world.headers())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    products = {p["product_code"]: p for p in body["products"]}
    assert {"01", "16"} <= set(products)
    chrono13 = products["01"]
    assert chrono13["eligible"] and chrono13["product_name"] == "Chrono 13"
    assert chrono13["amount_incl_vat"] == pytest.approx(
        chrono13["amount_excl_vat"] + chrono13["vat"], abs=0.011
    )
    assert chrono13["amount_excl_vat"] > 0
    assert chrono13["promised_before"] == "13:00"
    assert dt.date.fromisoformat(chrono13["promised_date"]) > dt.date.fromisoformat(
        chrono13["ship_date"]
    )
    # Chrono Relais needs a relay point: priced, but not eligible, and the note says why.
    relais = products.get("86")
    if relais is not None:
        assert not relais["eligible"] and "relay point" in relais["note"]
    assert body["chosen"]["product_code"] == "16"
    assert "home-france" in body["chosen"]["reason"] or "Chrono 18" in body["chosen"]["reason"]
    assert body["parcels"] == 2


def test_the_same_rates_twice_within_the_ttl_cost_one_carrier_call(api_world: ApiWorld) -> None:
    ask = {"to": {"postal_code": "33000", "city": "Bordeaux"}, "parcels": [{"weight_kg": "4.2"}]}
    before = len(api_world.carrier.requests("calculateProducts"))
    first = api_world.http.post("/api/v1/rates", json=ask, headers=api_world.headers()).json()
    # Same route and weight band (4-5 kg), same day: from the shared cache.
    ask["parcels"] = [{"weight_kg": "4.9"}]
    second = api_world.http.post("/api/v1/rates", json=ask, headers=api_world.headers()).json()
    assert len(api_world.carrier.requests("calculateProducts")) - before == 1
    assert (first["carrier_calls"], first["cached"]) == (1, False)
    assert (second["carrier_calls"], second["cached"]) == (0, True)
    assert first["products"] == second["products"]


def test_rates_for_an_order_then_write_the_choice_back(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    http = api_world.http
    answer = http.post("/api/v1/rates", json={"order_id": order_id}, headers=api_world.headers())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["order_id"] == order_id
    assert body["arrival"]["postal_code"] == api_world.order(order_id)["ShippingPostalCode"]
    chrono13 = next(p for p in body["products"] if p["product_code"] == "01")
    calls = api_world.org.stats()["total"]
    written = http.post(
        f"/api/v1/orders/{order_id}/rate", json={"product_code": "01"}, headers=api_world.headers()
    )
    assert written.status_code == 200, written.text
    assert written.json()["shipping_cost"] == chrono13["amount_incl_vat"]
    order = api_world.order(order_id)
    assert order["Chronopost_Product__c"] == "01"
    assert order["Chronopost_Shipping_Cost__c"] == pytest.approx(chrono13["amount_incl_vat"])
    # Reading the order (query + items) and one update; the price came from the cache.
    assert api_world.org.stats()["total"] - calls <= 3


def test_a_product_chronopost_does_not_offer_is_not_written(api_world: ApiWorld) -> None:
    order_id = api_world.good_orders[0]
    refused = api_world.http.post(
        f"/api/v1/orders/{order_id}/rate", json={"product_code": "9Z"}, headers=api_world.headers()
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "product_code"


def test_rates_bad_input_is_a_422_naming_the_field(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    heavy = http.post(
        "/api/v1/rates",
        json={"to": {"postal_code": "75008"}, "parcels": [{"weight_kg": 31}]},
        headers=headers,
    )
    assert heavy.status_code == 422
    assert heavy.json()["detail"][0]["loc"] == ["body", "parcels", 0, "weight_kg"]
    country = http.post(
        "/api/v1/rates",
        json={"to": {"postal_code": "75008", "country": "France"}, "parcels": [{"weight_kg": 1}]},
        headers=headers,
    )
    assert country.status_code == 422 and country.json()["detail"][0]["loc"][-1] == "country"
    nothing = http.post("/api/v1/rates", json={}, headers=headers)
    assert nothing.status_code == 422 and "order_id" in nothing.json()["detail"][0]["msg"]
    bad_id = http.post("/api/v1/rates", json={"order_id": "x' OR Id != '"}, headers=headers)
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"] == ["body", "order_id"]


def test_rates_for_an_unknown_order_is_a_404(api_world: ApiWorld) -> None:
    answer = api_world.http.post(
        "/api/v1/rates", json={"order_id": "801000000000999AAA"}, headers=api_world.headers()
    )
    assert answer.status_code == 404
    assert answer.json()["record_id"] == "801000000000999AAA"
    rate = api_world.http.post(
        "/api/v1/orders/801000000000999AAA/rate",
        json={"product_code": "01"},
        headers=api_world.headers(),
    )
    assert rate.status_code == 404


def test_chronopost_errors_come_back_with_the_carrier_code(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    # Département 00 does not exist: Chronopost refuses the route (a permanent error, 400).
    refused = http.post(
        "/api/v1/rates",
        json={"to": {"postal_code": "00100"}, "parcels": [{"weight_kg": 1}]},
        headers=headers,
    )
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["code"].startswith("CHRONOPOST_") and body["operation"] == "calculateProducts"
    api_world.carrier.set_faults(kind="system_error", rate=1.0)
    try:
        down = http.post(
            "/api/v1/rates",
            json={"to": {"postal_code": "13001"}, "parcels": [{"weight_kg": 7}]},
            headers=headers,
        )
        relay = http.get("/api/v1/relay-points?postal_code=13001", headers=headers)
    finally:
        api_world.carrier.clear_faults()
    assert down.status_code == 503 and down.headers["retry-after"]
    assert down.json()["code"] == "CHRONOPOST_1"
    # The relay service names its system error 700 (error_codes.csv, relay; [D] §4.3.3).
    assert relay.status_code == 503 and relay.json()["code"] == "CHRONOPOST_700"
    assert DEMO_PASSWORD not in down.text


# --- relay points -------------------------------------------------------------------------


def test_relay_points_near_a_postal_code_and_near_an_order(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    near = http.get("/api/v1/relay-points?postal_code=75011&country=FR&limit=3", headers=headers)
    assert near.status_code == 200, near.text
    points = near.json()["points"]
    assert 1 <= len(points) <= 3
    assert all(p["id"] and p["name"] and p["address"]["postal_code"] for p in points)
    assert any(p["opening_hours"] for p in points)
    order_id = api_world.good_orders[0]
    by_order = http.get(f"/api/v1/relay-points?near_order={order_id}", headers=headers)
    assert by_order.status_code == 200, by_order.text
    assert by_order.json()["postal_code"] == api_world.order(order_id)["ShippingPostalCode"]


def test_the_relay_point_chosen_flows_into_the_label_request(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    near = api_world.http.get(
        f"/api/v1/relay-points?near_order={order_id}&limit=1", headers=api_world.headers()
    )
    [point] = near.json()["points"]
    # The agent (or the checkout) stores the chosen id on the order in Salesforce.
    api_world.org.org.update("Order", order_id, {"Chronopost_Relay_Point_Id__c": point["id"]})
    # A relay label needs the recipient's e-mail and mobile ([D] §3.2); some seeded e-mails
    # (accented names) are dropped by the address check.
    contact = api_world.order(order_id)["ShipToContactId"]
    api_world.org.org.update("Contact", contact, {"Email": "relay.customer@example.fr"})
    _label_now(api_world, order_id)
    sent = api_world.carrier.requests("shippingMultiParcelV5")[-1].request
    assert f"<idRelais>{point['id']}</idRelais>" in sent
    assert "<productCode>86</productCode>" in sent  # Chrono Relais, as the routing rules say


def test_relay_points_bad_input_and_unknown_order(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    nothing = http.get("/api/v1/relay-points", headers=headers)
    assert nothing.status_code == 422 and nothing.json()["detail"][0]["loc"] == [
        "query",
        "postal_code",
    ]
    limit = http.get("/api/v1/relay-points?postal_code=75008&limit=500", headers=headers)
    assert limit.status_code == 422 and limit.json()["detail"][0]["loc"] == ["query", "limit"]
    unknown = http.get("/api/v1/relay-points?near_order=801000000000999AAA", headers=headers)
    assert unknown.status_code == 404


# --- pickups ------------------------------------------------------------------------------


def _next_weekday(world: ApiWorld) -> dt.date:
    # After the sandbox's day (other tests move its clock forward), on a weekday.
    day = max(dt.date.today(), world.carrier.now().date()) + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _pickup(world: ApiWorld) -> dict[str, str]:
    return {
        "date": _next_weekday(world).isoformat(),
        "ready_time": "14:00",
        "closing_time": "18:00",
        "instructions": "Quai 3, sonner",
    }


def test_pickup_makes_the_label_with_pickup_data_and_writes_the_confirmation(
    api_world: ApiWorld,
) -> None:
    order_id = api_world.take_order()
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/pickup", json=_pickup(api_world), headers=api_world.headers()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pickup_number"] and body["skybill_numbers"] and not body["relabeled"]
    sent = api_world.carrier.requests("shippingMultiParcelV5")[-1].request
    assert "<esdValue>" in sent and "Quai 3, sonner" in sent and "14:00:00" in sent
    api_world.runtime.flush()  # the runner's job: no request flushes the outbox
    order = api_world.order(order_id)
    assert order["Chronopost_Pickup_Number__c"] == body["pickup_number"]
    assert order["Chronopost_Pickup_Date__c"]
    assert order["Chronopost_Tracking_Number__c"] == ",".join(body["skybill_numbers"])


def test_pickup_for_labeled_parcels_books_one_without_a_new_label(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    shipment_id = _label_now(api_world, order_id)
    skybills = [p.skybill_number for p in _parcels(api_world, shipment_id)]
    live = api_world.carrier.live_labels()
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/pickup", json=_pickup(api_world), headers=api_world.headers()
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["relabeled"] is False and body["skybill_numbers"] == skybills
    assert body["pickup_number"].startswith("ESD")
    assert api_world.carrier.live_labels() == live  # no label made, none voided
    [booked] = api_world.carrier.requests("creerEnlevementNational")[-1:]
    assert booked.error_code == 0 and ",".join(skybills) in booked.request
    assert "Quai 3, sonner" in booked.request
    api_world.runtime.flush()
    assert api_world.order(order_id)["Chronopost_Pickup_Number__c"] == body["pickup_number"]


def test_pickup_chronopost_refuses_is_a_400_with_its_code(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    _label_now(api_world, order_id)
    past = {**_pickup(api_world), "date": "2020-01-06"}
    answer = api_world.http.post(
        f"/api/v1/orders/{order_id}/pickup", json=past, headers=api_world.headers()
    )
    assert answer.status_code == 400, answer.text
    body = answer.json()
    # A day in the past is ESD error 910 DATE_PASSE ([D] §4.3.1).
    assert body["code"] == "CHRONOPOST_910" and body["operation"] == "creerEnlevementNational"
    assert "datePassage" in body["message"]


def test_pickup_bad_input_and_unknown_order(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    order_id = api_world.good_orders[0]
    window = http.post(
        f"/api/v1/orders/{order_id}/pickup",
        json={**_pickup(api_world), "closing_time": "09:00"},
        headers=headers,
    )
    assert window.status_code == 422 and "closing_time" in window.json()["detail"][0]["msg"]
    date = http.post(
        f"/api/v1/orders/{order_id}/pickup",
        json={**_pickup(api_world), "date": "soon"},
        headers=headers,
    )
    assert date.status_code == 422 and date.json()["detail"][0]["loc"] == ["body", "date"]
    unknown = http.post(
        "/api/v1/orders/801000000000999AAA/pickup", json=_pickup(api_world), headers=headers
    )
    assert unknown.status_code == 404


def test_pickup_when_chronopost_fails_is_a_503_and_nothing_is_lost(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    api_world.carrier.set_faults(
        kind="system_error", rate=1.0, operations=["shippingMultiParcelV5"]
    )
    try:
        answer = api_world.http.post(
            f"/api/v1/orders/{order_id}/pickup",
            json=_pickup(api_world),
            headers=api_world.headers(),
        )
    finally:
        api_world.carrier.clear_faults()
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "CHRONOPOST_1"
    [shipment] = api_world.runtime.shipments([order_id])
    assert shipment.state in ("retry", "calling")  # the pipeline retries it; no label lost


# --- returns ------------------------------------------------------------------------------


def test_return_label_is_attached_to_the_case_and_the_order(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    case_id = api_world.org.org.create(
        "Case", {"Subject": "Return please", "Type": "Problem", "Chronopost_Order__c": order_id}
    )
    http, headers = api_world.http, api_world.headers()
    answer = http.post(f"/api/v1/cases/{case_id}/return-label", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["created"] and body["case_id"] == case_id and body["status"] == "label_created"
    [skybill] = body["skybill_numbers"][:1]
    parcel = api_world.carrier.parcel(skybill)
    assert parcel is not None and parcel.is_return
    sent = api_world.carrier.requests("shippingMultiParcelV5")[-1].request
    assert "<modeRetour>2</modeRetour>" in sent
    assert f"<customerSkybillNumber>{body['returns_reference']}</customerSkybillNumber>" in sent
    # The file: published on the Case, linked to the Order (once the runner flushed).
    api_world.runtime.flush()
    version = next(
        v for v in api_world.org.records("ContentVersion") if v["FirstPublishLocationId"] == case_id
    )
    linked = {
        link["LinkedEntityId"]
        for link in api_world.org.records("ContentDocumentLink")
        if link["ContentDocumentId"] == version["ContentDocumentId"]
    }
    assert {case_id, order_id} <= linked
    assert api_world.order(order_id)["Chronopost_Return_Tracking_Number__c"] == skybill
    case = next(c for c in api_world.org.records("Case") if c["Id"] == case_id)
    assert case["Chronopost_Return_Tracking_Number__c"] == skybill
    # Tracked like any other parcel: a `return` shipment row due for polling.
    with api_world.runtime.store.session() as session:
        row = session.get_one(Shipment, body["shipment_id"])
        assert (row.intent, row.next_poll_at is not None) == ("return", True)
    # Asking again gives the same label, not a second one.
    again = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["skybill_numbers"] == body["skybill_numbers"]


def test_a_return_is_tracked_as_returning_then_returned(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    made = api_world.http.post(
        f"/api/v1/orders/{order_id}/return-label", json={}, headers=api_world.headers()
    ).json()
    [skybill] = made["skybill_numbers"]
    runtime = api_world.runtime

    def track(hours: float) -> str:
        api_world.carrier.advance_clock(dt.timedelta(hours=hours))
        runtime.tracking.ingest(runtime.carrier.track(skybill))
        with runtime.store.session() as session:
            return session.get_one(Shipment, made["shipment_id"]).status

    assert track(13) == "returning"  # picked up from the customer, on its way back
    assert track(12) == "returned"  # "delivered" to us
    runtime.flush()
    assert api_world.order(order_id)["Chronopost_Status__c"] == "returned"


def test_return_label_refusals(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    order_id = api_world.good_orders[0]
    question = api_world.org.org.create(
        "Case", {"Subject": "Where is it?", "Type": "Question", "Chronopost_Order__c": order_id}
    )
    wrong_type = http.post(f"/api/v1/cases/{question}/return-label", headers=headers)
    assert wrong_type.status_code == 400 and wrong_type.json()["field"] == "Type"
    unknown = http.post("/api/v1/orders/801000000000999AAA/return-label", json={}, headers=headers)
    assert unknown.status_code == 404
    bad = http.post(
        f"/api/v1/orders/{order_id}/return-label",
        json={"returns_reference": "far too long for chronopost"},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == [
        "body",
        "returns_reference",
    ]
    api_world.carrier.set_faults(
        kind="system_error", rate=1.0, operations=["shippingMultiParcelV5"]
    )
    try:
        down = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers)
    finally:
        api_world.carrier.clear_faults()
    assert down.status_code == 503 and down.json()["code"] == "CHRONOPOST_1"


def test_two_return_requests_at_once_make_one_label(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    before = len(api_world.carrier.requests("shippingMultiParcelV5"))

    def ask(_: int) -> httpx.Response:
        with httpx.Client(base_url=api_world.url, timeout=30) as http:
            return http.post(
                f"/api/v1/orders/{order_id}/return-label", json={}, headers=api_world.headers()
            )

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    created = [a.json() for a in answers if a.status_code == 200 and a.json()["created"]]
    assert len(created) == 1
    assert len(api_world.carrier.requests("shippingMultiParcelV5")) - before == 1


# --- cancel -------------------------------------------------------------------------------


def _label_now(world: ApiWorld, order_id: str) -> int:
    """Label the order through the ordinary pipeline (no pickup), written back."""
    runtime = world.runtime
    read = world.service.read_order(order_id)
    [shipment_id] = runtime.record([read.record], None)
    assert runtime.labels.process(shipment_id) == "labeled"
    runtime.flush()
    return shipment_id


def test_cancel_before_pickup_voids_the_labels(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    shipment_id = _label_now(api_world, order_id)
    skybills = [p.skybill_number for p in _parcels(api_world, shipment_id)]
    answer = api_world.http.post(
        f"/api/v1/shipments/{shipment_id}/cancel", headers=api_world.headers()
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "shipment_id": shipment_id,
        "cancelled": skybills,
        "status": "cancelled",
    }
    assert all(api_world.carrier.parcel(s).cancelled_at is not None for s in skybills)
    api_world.runtime.flush()
    order = api_world.order(order_id)
    assert (order["Chronopost_Label_Status__c"], order["Chronopost_Status__c"]) == (
        "Cancelled",
        "cancelled",
    )
    again = api_world.http.post(
        f"/api/v1/shipments/{shipment_id}/cancel", headers=api_world.headers()
    )
    assert again.status_code == 200 and again.json()["cancelled"] == []


def test_cancel_by_order_id_finds_the_outbound_or_the_return(api_world: ApiWorld) -> None:
    order_id = api_world.take_order()
    http, headers = api_world.http, api_world.headers()
    assert http.post(f"/api/v1/orders/{order_id}/cancel", headers=headers).status_code == 404
    outbound = _label_now(api_world, order_id)
    made = http.post(f"/api/v1/orders/{order_id}/return-label", json={}, headers=headers).json()
    back = http.post(f"/api/v1/orders/{order_id}/cancel?intent=return", headers=headers)
    assert back.status_code == 200, back.text
    assert back.json()["shipment_id"] == made["shipment_id"]
    assert back.json()["cancelled"] == made["skybill_numbers"]
    api_world.runtime.flush()
    assert api_world.order(order_id)["Chronopost_Return_Tracking_Number__c"] is None
    out = http.post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
    assert out.status_code == 200 and out.json()["shipment_id"] == outbound
    wrong = http.post(f"/api/v1/orders/{order_id}/cancel?intent=both", headers=headers)
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["query", "intent"]


def test_cancel_after_pickup_is_a_409(api_world: ApiWorld) -> None:
    # Known picked up here: refused without asking Chronopost.
    order_id = api_world.take_order()
    shipment_id = _label_now(api_world, order_id)
    with api_world.runtime.store.session() as session:
        session.get_one(Shipment, shipment_id).status = "in_transit"
    ours = api_world.http.post(
        f"/api/v1/shipments/{shipment_id}/cancel", headers=api_world.headers()
    )
    assert ours.status_code == 409 and ours.json()["code"] == "ALREADY_PICKED_UP"
    # Picked up at Chronopost before our tracking saw it: the carrier's refusal, as a 409.
    other = _label_now(api_world, api_world.take_order())
    api_world.carrier.advance_clock(dt.timedelta(hours=5))
    with api_world.runtime.store.session() as session:  # five hours for us too: past the window
        for parcel in session.get_one(Shipment, other).parcels:
            parcel.created_at -= dt.timedelta(hours=5)
    theirs = api_world.http.post(f"/api/v1/shipments/{other}/cancel", headers=api_world.headers())
    assert theirs.status_code == 409, theirs.text
    assert theirs.json()["code"].startswith("CHRONOPOST_")
    assert api_world.carrier.live_labels() >= 1


def test_cancel_an_unknown_shipment_or_a_bad_id(api_world: ApiWorld) -> None:
    http, headers = api_world.http, api_world.headers()
    assert http.post("/api/v1/shipments/999999/cancel", headers=headers).status_code == 404
    bad = http.post("/api/v1/shipments/abc/cancel", headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "shipment_id"]


def _parcels(world: ApiWorld, shipment_id: int) -> list[Parcel]:
    with world.runtime.store.session() as session:
        return list(
            session.scalars(select(Parcel).where(Parcel.shipment_id == shipment_id, Parcel.live))
        )


# --- the OpenAPI contract (runs last: it may cancel shipments earlier tests made) -----------

SCHEMA_CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                 "response_schema_conformance")  # fmt: skip


def test_schemathesis_finds_no_5xx_and_no_schema_violation(api_world: ApiWorld) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import checks

    spec = api_world.http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    wanted = [getattr(checks, name) for name in SCHEMA_CHECKS]
    operations = [result.ok() for result in schema.get_all_operations()]
    api_operations = [op for op in operations if op.path.startswith("/api/v1/")]
    # 9, the 4 agent endpoints of web/api_agent.py, the re-print endpoint, the 2 slip endpoints
    # of web/api_manifest.py, and the 6 Chrono Precise ones (issue 23)
    assert len(api_operations) == 22
    seen: dict[str, set[int]] = {}
    for operation in api_operations:

        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            # A valid API key, so the cases reach the handlers (auth is tested above).
            response = case.call_and_validate(
                base_url=api_world.url, headers=api_world.headers(), checks=wanted, timeout=30
            )
            seen.setdefault(operation.label, set()).add(response.status_code)

        run()
    assert set(seen) == {op.label for op in api_operations}
    assert not any(code >= 500 for codes in seen.values() for code in codes), seen


def test_relay_points_near_an_order_whose_postal_code_is_another_city_name_the_field(
    api_world: ApiWorld,
) -> None:
    """Issue 20: the relay search starts from the order's address, checked like a label's."""
    order_id = api_world.take_order()
    api_world.org.org.update(
        "Order", order_id,
        {"ShippingPostalCode": "69001", "ShippingCity": "Paris", "ShippingCountry": "France"},
    )  # fmt: skip
    answer = api_world.http.get(
        f"/api/v1/relay-points?near_order={order_id}", headers=api_world.headers()
    )
    assert answer.status_code == 400, answer.text  # the API's status for a permanent error
    body = answer.json()
    assert body["code"] == "POSTAL_CODE_CITY_MISMATCH" and body["field"] == "postal_code"
    assert "75001" in body["message"]


def test_an_accented_email_reaches_chronopost_for_the_delivery_notice(api_world: ApiWorld) -> None:
    """Issue 17 (item 10): "josé@…" was dropped, so the customer got no delivery notice."""
    order_id = api_world.take_order()
    contact_id = api_world.order(order_id)["ShipToContactId"]
    api_world.org.org.update("Contact", contact_id, {"Email": "josé.müller@example.fr"})
    _label_now(api_world, order_id)
    sent = api_world.carrier.requests("shippingMultiParcelV5")[-1].request
    assert "<recipientEmail>josé.müller@example.fr</recipientEmail>" in sent


def _spare_order(world: ApiWorld) -> str:
    """An order outside the French pool (its address is replaced anyway), not used before."""
    contacts = {c["Id"]: c for c in world.org.records("Contact")}
    for order in world.org.records("Order"):
        contact = contacts.get(order.get("ShipToContactId") or "", {})
        if (
            order.get("ShippingCountryCode") != "FR"
            and order["Id"] not in _SPARE_USED
            and len(order.get("ShippingStreet") or "") <= 38
            and (order.get("Chronopost_Weight_Kg__c") or 99) <= 20
            and contact.get("Phone")
        ):
            _SPARE_USED.add(order["Id"])
            return str(order["Id"])
    raise AssertionError("no spare order left in the seed")


_SPARE_USED: set[str] = set()


@pytest.mark.parametrize(
    ("country", "postal_code", "city", "sent_country", "sent_code"),
    [("Holland", "1012 ab", "Amsterdam", "NL", "1012AB"),
     ("Northern Ireland", "bt1 5gs", "Belfast", "GB", "BT1 5GS")],
)  # fmt: skip
def test_holland_and_northern_ireland_are_labeled_in_chronopost_format(
    api_world: ApiWorld,
    country: str,
    postal_code: str,
    city: str,
    sent_country: str,
    sent_code: str,
) -> None:
    """Issue 17 (item 10): both were unknown countries; issue 20: codes in the annex's form."""
    order_id = _spare_order(api_world)
    api_world.org.org.update(
        "Order", order_id,
        {"ShippingCountry": country, "ShippingPostalCode": postal_code, "ShippingCity": city,
         "ShippingState": None},
    )  # fmt: skip
    _label_now(api_world, order_id)
    sent = api_world.carrier.requests("shippingMultiParcelV5")[-1].request
    assert f"<recipientCountry>{sent_country}</recipientCountry>" in sent
    assert f"<recipientZipCode>{sent_code}</recipientZipCode>" in sent
