"""Orgs of other shapes end to end (issue 19, items 1 and 2), over both sandboxes on loopback.

An Order-only org (no Shipment object: INVALID_TYPE, describe 404) and an Order Management org
whose Shipments reach their Order through OrderSummary / FulfillmentOrder both get labels, label
files, tracking statuses and Cases written back — and the Order-only org is never asked a query
that names Shipment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.cli.demo import demo_settings
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Shipment

TRACKING = {"calls_per_second": 1000, "case": {"origin": "Web"}}


@pytest.fixture()
def make_world(tmp_path: Path) -> Iterator[Any]:
    """`make_world(org, mapping=None)`: the org served over HTTPS, a runtime on it."""
    stop: list[Any] = []

    def make(org: SalesforceSandbox, mapping: dict[str, Any] | None = None) -> Runtime:
        tls = ensure_tls(tmp_path / "tls")
        carrier = ChronopostSandbox(db_path=":memory:")
        cp = carrier.start()
        sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
        settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert).model_copy(
            update={"tracking": TRACKING, "mapping": mapping or {}}
        )
        runtime = build_runtime(settings)
        runtime.now = carrier.now
        runtime.carrier_sandbox = carrier  # type: ignore[attr-defined]
        stop.extend([runtime.close, sf.stop, cp.stop])
        return runtime

    yield make
    for fn in stop:
        fn()


def _record_queries(org: SalesforceSandbox) -> list[str]:
    seen: list[str] = []
    real = org.org.query

    def recording(soql: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(soql)
        return real(soql, *args, **kwargs)

    org.org.query = recording  # type: ignore[method-assign]
    return seen


def _label_and_follow(runtime: Runtime, hours: float = 96) -> list[Shipment]:
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    assert runtime.flush().failed == 0
    carrier: ChronopostSandbox = runtime.carrier_sandbox  # type: ignore[attr-defined]
    for _ in range(int(hours / 4)):
        carrier.advance_clock(dt.timedelta(hours=4))
        runtime.poll_once()
        runtime.flush_tracking()
    with runtime.store.session() as session:
        return list(session.scalars(select(Shipment)))


def _linked(org: SalesforceSandbox, record_id: str) -> bool:
    return any(link["LinkedEntityId"] == record_id for link in org.records("ContentDocumentLink"))


def test_an_order_only_org_ships_orders_without_ever_naming_shipment(make_world: Any) -> None:
    org = SalesforceSandbox(db_path=":memory:", order_only=True)
    orders = org.seed(orders=6, seed=7)["Order"]
    french = [o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR")][:2]
    for order, scenario in zip(french, ("delivered", "refused"), strict=True):
        street = f"{order['ShippingStreet']}\n[scenario:{scenario}]"
        org.org.update("Order", order["Id"], {"ShippingStreet": street})
    queries = _record_queries(org)
    runtime = make_world(org)

    shipments = _label_and_follow(runtime)

    assert not [q for q in queries if "shipment" in q.lower()], queries
    labeled = {s.sf_id for s in shipments if s.state == "labeled"}
    assert {o["Id"] for o in french} <= labeled <= set(orders)
    by_id = {o["Id"]: o for o in org.records("Order")}
    for order_id in labeled:
        assert by_id[order_id]["Chronopost_Tracking_Number__c"]
        assert by_id[order_id]["Chronopost_Tracking_Url__c"]
        assert _linked(org, order_id), "the label file hangs from the Order"
    delivered, refused = (by_id[o["Id"]] for o in french)
    assert delivered["Chronopost_Status__c"] == "delivered"
    assert refused["Chronopost_Status__c"] == "returned"
    cases = [c for c in org.records("Case") if c.get("Chronopost_Order__c") == refused["Id"]]
    assert len(cases) == 1 and "Chronopost_Shipment__c" not in cases[0]
    assert runtime.shape is not None and runtime.shape.order_only


def _order_management_shipment(
    org: SalesforceSandbox, order: dict[str, Any], via: str, scenario: str
) -> str:
    """A Shipment as Order Management makes it: no Order lookup, an OrderSummary (or a
    FulfillmentOrder of one) made from the Order."""
    summary = org.org.create(
        "OrderSummary",
        {"OriginalOrderId": order["Id"], "AccountId": order["AccountId"], "OrderNumber": "OS-1"},
    )
    link = {"OrderSummaryId": summary}
    if via == "FulfillmentOrder":
        fulfilment = org.org.create("FulfillmentOrder", {"OrderSummaryId": summary})
        link = {"FulfillmentOrderId": fulfilment}
    contact = next(c for c in org.records("Contact") if c["Id"] == order["ShipToContactId"])
    return org.org.create(
        "Shipment",
        {
            **link,
            "ShipToName": contact["Name"],
            "ShipToStreet": f"{order['ShippingStreet']}\n[scenario:{scenario}]",
            "ShipToPostalCode": order["ShippingPostalCode"],
            "ShipToCity": order["ShippingCity"],
            "ShipToCountry": order["ShippingCountry"],
            "Chronopost_Label_Status__c": "Requested",
        },
    )


def test_shipment_trigger_in_an_order_management_org_writes_back_to_shipment_and_order(
    make_world: Any,
) -> None:
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=8, seed=7)
    for seeded in org.records("Shipment"):  # the seed's Shipments use the package lookup
        org.org.delete("Shipment", seeded["Id"])
    french = [o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR")][:2]
    made = {
        _order_management_shipment(org, french[0], "OrderSummary", "delivered"): french[0]["Id"],
        _order_management_shipment(org, french[1], "FulfillmentOrder", "refused"): french[1]["Id"],
    }
    mapping = {
        "trigger_object": "Shipment",
        "contact": {"phone": "", "mobile": "", "email": ""},  # OM Shipments carry none
    }
    runtime = make_world(org, mapping)

    shipments = _label_and_follow(runtime)

    assert {s.sf_id: s.state for s in shipments} == dict.fromkeys(made, "labeled")
    for row in shipments:
        assert row.source["order_id"] == made[row.sf_id]
    on_org = {s["Id"]: s for s in org.records("Shipment")}
    orders = {o["Id"]: o for o in org.records("Order")}
    for shipment_id, order_id in made.items():
        assert on_org[shipment_id]["TrackingNumber"]
        assert on_org[shipment_id]["Provider"] == "Chronopost"
        assert orders[order_id]["Chronopost_Tracking_Number__c"]
        assert _linked(org, shipment_id) and _linked(org, order_id)
    delivered, refused = made
    assert on_org[delivered]["Status"] == "Delivered"
    assert orders[made[delivered]]["Chronopost_Status__c"] == "delivered"
    assert orders[made[refused]]["Chronopost_Status__c"] == "returned"
    cases = [c for c in org.records("Case") if c.get("Chronopost_Shipment__c") == refused]
    assert len(cases) == 1 and cases[0]["Chronopost_Order__c"] == made[refused]


def test_order_management_paths_the_org_lacks_are_dropped_at_start_up(make_world: Any) -> None:
    """A Shipment org without Order Management (Field Service): only the package lookup."""
    org = SalesforceSandbox(db_path=":memory:", hidden_objects={"OrderSummary", "FulfillmentOrder"})
    org.seed(orders=3, seed=7)
    runtime = make_world(org, {"trigger_object": "Shipment"})
    assert runtime.mapping.order_id == ("Order__c",)
    ids = runtime.detect()  # the trigger query names no missing relationship
    assert len(ids) == len(org.records("Shipment"))


def test_a_shipment_triggers_rate_and_return_fields_land_on_the_order_it_reaches(
    make_world: Any,
) -> None:
    """Shipment has no Chronopost_Product__c / Shipping_Cost / Return fields (issue 19 item 4):
    with a Shipment trigger they are written on the Order, never sent to Shipment."""
    from chronoforce.web.api_config import api_config
    from chronoforce.web.api_models import RateChoice, RatesRequest, ReturnRequest
    from chronoforce.web.api_service import ApiService

    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=6, seed=7)
    runtime = make_world(org, {"trigger_object": "Shipment"})
    labeled = [s for s in _label_and_follow(runtime, hours=0) if s.state == "labeled"]
    assert labeled
    row = labeled[0]
    order_id = row.source["order_id"]
    assert order_id
    service = ApiService(runtime.settings, api_config(runtime.settings.api), runtime)
    rates = service.rates(RatesRequest(order_id=row.sf_id))
    written = service.write_rate(row.sf_id, RateChoice(product_code=rates.products[0].product_code))
    made = service.return_label(row.sf_id, ReturnRequest())
    assert runtime.flush().failed == 0
    order = {o["Id"]: o for o in org.records("Order")}[order_id]
    assert order["Chronopost_Product__c"] == written.product_code
    assert order["Chronopost_Shipping_Cost__c"] == float(written.shipping_cost)
    assert order["Chronopost_Return_Tracking_Number__c"] == ",".join(made.skybill_numbers)
    shipment = {s["Id"]: s for s in org.records("Shipment")}[row.sf_id]
    assert (
        "Chronopost_Shipping_Cost__c" not in shipment or not shipment["Chronopost_Shipping_Cost__c"]
    )
