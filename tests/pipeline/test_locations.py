"""Shipper locations (issue 23), through both sandboxes over HTTP: two warehouses, two accounts.

Orders name their location in Order.Chronopost_Location__c, or a rule picks it (postal prefix
69), or they go to the default; labels, pickups, rates and returns carry the location's address
and are made under its contract, as the Chronopost sandbox stored and logged them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.cli.common import run_until
from chronoforce.cli.demo import demo_settings
from chronoforce.config import ConfigError, load_settings
from chronoforce.config.sections import LocationsConfig
from chronoforce.domain.errors import RefusedError
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import ExceptionRow, Parcel, Shipment
from chronoforce.web.api_config import api_config
from chronoforce.web.api_models import PickupRequest, RatesRequest, ReturnRequest
from chronoforce.web.api_service import ApiService

LYON_ACCOUNT = "20011111"  # the Lyon warehouse's own contract (the sandbox knows it)
FIELD = "Chronopost_Location__c"
LOCATIONS = {
    "default": "paris",
    "sites": {
        "paris": {
            "name": "Entrepot Paris Sud", "line1": "3 avenue Gallieni", "postal_code": "94250",
            "city": "Gentilly", "phone": "0145000000", "email": "paris@example.com",
        },
        "lyon": {
            "name": "Entrepot Lyon Gerland", "line1": "10 rue de Gerland", "postal_code": "69007",
            "city": "Lyon", "phone": "0472000000", "email": "lyon@example.com",
            "aliases": ["WH-LYON"], "account_number": LYON_ACCOUNT,
            "pickup": {"ready_time": "09:30", "closing_time": "12:00", "instructions": "Quai B"},
        },
    },
    "rules": [{"location": "lyon", "postal_prefixes": ["69"]}],
}  # fmt: skip
GOOD_ADDRESS = {"ShippingStreet": "12 rue de Rivoli", "ShippingPostalCode": "75001",
                "ShippingCity": "Paris", "ShippingCountry": "France", "ShippingCountryCode": "FR"}  # fmt: skip
LYON_ADDRESS = {**GOOD_ADDRESS, "ShippingStreet": "5 rue de la Republique",
                "ShippingPostalCode": "69002", "ShippingCity": "Lyon"}  # fmt: skip


@dataclass
class World:
    carrier: ChronopostSandbox
    org: SalesforceSandbox
    runtime: Runtime
    service: ApiService
    by_field: list[str]  # orders whose field says lyon
    by_rule: str  # an order to 69002 with no field
    by_default: list[str]
    unknown: str  # an order whose field names no location

    def order(self, record_id: str) -> dict[str, Any]:
        return next(o for o in self.org.records("Order") if o["Id"] == record_id)

    def shipment(self, record_id: str) -> tuple[Shipment, list[str]]:
        """The order's outbound shipment and its live skybill numbers."""
        with self.runtime.store.session() as session:
            row = session.scalars(
                select(Shipment).where(Shipment.sf_id == record_id, Shipment.intent == "outbound")
            ).one()
            return row, [p.skybill_number for p in row.parcels if p.live]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("locations")
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(
        db_path=":memory:", cancel_window=dt.timedelta(0), accounts={LYON_ACCOUNT: DEMO_PASSWORD}
    )
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=9, seed=7, location="lyon")  # orders 2, 5, 8 name lyon
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp, cp.url, sf.url, tls.ca_cert).model_copy(
        update={
            "mapping": {"location": FIELD},
            "locations": LocationsConfig.model_validate(LOCATIONS),
        }
    )
    runtime = build_runtime(settings, cluster=True)  # run_until takes the cluster's gates
    service = ApiService(settings, api_config(settings.api), runtime)
    orders = [o["Id"] for o in sorted(org.records("Order"), key=lambda o: o["OrderNumber"])]
    by_field = [o for i, o in enumerate(orders) if i % 3 == 1]
    others = [o for i, o in enumerate(orders) if i % 3 != 1]
    by_rule, unknown, by_default = others[0], others[1], others[2:]
    # Well-formed addresses, so only the location decides what happens to them.
    fixes = [{"Id": o, **GOOD_ADDRESS} for o in [*by_field, unknown, *by_default]]
    fixes += [{"Id": by_rule, **LYON_ADDRESS}]
    fixes[len(by_field)][FIELD] = "marseille"
    fixes[0][FIELD] = "wh-lyon"  # an alias, in another case
    results = runtime.salesforce.collection("update", "Order", fixes)
    assert all(r.success for r in results)
    try:
        yield World(carrier, org, runtime, service, by_field, by_rule, by_default, unknown)
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _labels_made(world: World) -> None:
    with world.runtime.store.session() as session:
        done = session.scalars(select(Shipment).where(Shipment.state == "labeled")).all()
    if not done:
        run_until(world.runtime, workers=2, until_idle=True, max_seconds=60)


def _label_request(world: World, order_number: str) -> Any:
    return next(
        r
        for r in world.carrier.requests("shippingMultiParcelV5")
        if f"<shipperRef>{order_number}</shipperRef>" in r.request
    )


def test_each_order_is_labeled_from_its_location_under_its_account(world: World) -> None:
    _labels_made(world)
    expected = {
        **{o: ("lyon", f"field {FIELD} = lyon") for o in world.by_field},
        world.by_rule: ("lyon", "rule 1: postal code 69002 starts with 69"),
        **{o: ("paris", "default: no location field, no rule matched") for o in world.by_default},
    }
    for record_id, (location, reason) in expected.items():
        shipment, skybills = world.shipment(record_id)
        assert shipment.state == "labeled", (record_id, shipment.last_error)
        assert (shipment.location, shipment.location_reason) == (location, reason)
        account, zip_code = (
            (LYON_ACCOUNT, "69007") if location == "lyon" else (DEMO_ACCOUNT, "94250")
        )
        assert skybills
        for skybill in skybills:
            stored = world.carrier.parcel(skybill)
            assert stored is not None and stored.account == account
        sent = _label_request(world, shipment.order_number)
        assert sent.account == account
        assert f"<shipperZipCode>{zip_code}</shipperZipCode>" in sent.request
    from chronoforce.cli.status import collect  # `chronoforce status` counts them per location

    by_location = collect(world.runtime.settings, world.runtime.store)["labeled_by_location"]
    assert by_location["lyon"] >= len(world.by_field) + 1 and by_location["paris"] >= 4


def test_an_unknown_location_is_held_for_review_with_the_known_ones(world: World) -> None:
    _labels_made(world)
    shipment, skybills = world.shipment(world.unknown)
    assert shipment.state == "exception" and not skybills
    with world.runtime.store.session() as session:
        [problem] = session.scalars(
            select(ExceptionRow).where(ExceptionRow.shipment_id == shipment.id)
        ).all()
    assert (problem.code, problem.field, problem.sf_id) == (
        "UNKNOWN_LOCATION",
        FIELD,
        world.unknown,
    )
    assert "'marseille'" in problem.message and "lyon, paris" in problem.message
    with pytest.raises(StopIteration):  # never sent to Chronopost under some guessed location
        _label_request(world, shipment.order_number)


def _next_weekday(world: World) -> dt.date:
    day = max(dt.date.today(), world.carrier.now().date()) + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def test_pickups_come_to_each_location_under_its_account(world: World) -> None:
    _labels_made(world)
    ask = PickupRequest(date=_next_weekday(world), ready_time=dt.time(14), closing_time=dt.time(18))
    for record_id, account, zip_code in (
        (world.by_field[0], LYON_ACCOUNT, "69007"),
        (world.by_default[0], DEMO_ACCOUNT, "94250"),
    ):
        answer = world.service.book_pickup(record_id, ask)
        assert answer.booked and answer.pickup_number
        [sent] = world.carrier.requests("creerEnlevementNational")[-1:]
        assert sent.error_code == 0 and sent.account == account
        assert zip_code in sent.request and ",".join(answer.skybill_numbers) in sent.request


def test_a_pickup_without_times_takes_its_locations_window(world: World) -> None:
    _labels_made(world)
    answer = world.service.book_pickup(world.by_field[2], PickupRequest(date=_next_weekday(world)))
    assert answer.booked
    [sent] = world.carrier.requests("creerEnlevementNational")[-1:]
    assert sent.account == LYON_ACCOUNT and "09:30:00" in sent.request and "Quai B" in sent.request
    with pytest.raises(RefusedError) as refused:  # Paris has no defaults: the caller must say
        world.service.book_pickup(world.by_default[1], PickupRequest(date=_next_weekday(world)))
    assert (refused.value.code, refused.value.field) == ("PICKUP_TIME_MISSING", "ready_time")
    assert "location paris" in refused.value.message


def test_rates_and_returns_follow_the_location(world: World) -> None:
    _labels_made(world)
    lyon = world.by_field[1]
    quote = world.service.rates(RatesRequest(order_id=lyon))
    assert quote.departure.postal_code == "69007"
    assert world.carrier.requests("calculateProducts")[-1].account == LYON_ACCOUNT
    made = world.service.return_label(lyon, ReturnRequest())
    assert made.skybill_numbers
    sent = world.carrier.requests("shippingMultiParcelV5")[-1]
    assert sent.account == LYON_ACCOUNT  # no returns contract of its own: the location's
    assert "<recipientZipCode>69007</recipientZipCode>" in sent.request  # back to Lyon


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("locations:\n  default: nantes\n  sites:\n    lyon: {name: L, line1: a, "
         "postal_code: '69007', city: Lyon, phone: '0472000000'}\n", "locations"),
        ("locations:\n  sites:\n    lyon: {name: L, postal_code: '69007', city: Lyon, "
         "phone: '0472000000'}\n", "locations.sites.lyon.line1"),
        ("locations:\n  sites:\n    lyon: {name: L, line1: a, postal_code: '69007', city: Lyon, "
         "phone: '0472000000', account_number: abc}\n", "locations.sites.lyon.account_number"),
        ("locations:\n  sites:\n    lyon: {name: L, line1: a, postal_code: '69007', city: Lyon, "
         "phone: '0472000000', cutoff: 15:30}\n", "locations.sites.lyon.cutoff"),
        ("locations:\n  rules:\n    - {location: lyon}\n", "locations"),
        ("locations:\n  sites:\n    Lyon Gerland: {name: L, line1: a, postal_code: '69007', "
         "city: Lyon, phone: '0472000000'}\n", "locations.sites"),
    ],
)  # fmt: skip
def test_location_mistakes_name_the_key_and_the_file(
    tmp_path: Path, yaml_text: str, key: str
) -> None:
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert f"key '{key}'" in str(err.value) and str(cfg) in str(err.value)


def test_without_locations_the_shipper_is_the_one_default_location(tmp_path: Path) -> None:
    from chronoforce.domain.routing import RoutingFacts
    from chronoforce.pipeline.locations import Locations
    from chronoforce.salesforce.mapping import MappingConfig

    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text("chronopost:\n  shipper: {name: Shop, postal_code: '75011', city: Paris}\n")
    settings = load_settings(cfg, {})
    locations = Locations.from_settings(settings, MappingConfig.from_settings({}))
    choice = locations.choose({"Id": "801"}, RoutingFacts(country="FR", postal_code="13001"))
    assert (choice.key, choice.reason) == ("main", "default: no location field")
    assert choice.site.party().address.postal_code == "75011"


def test_a_locations_cutoff_decides_the_ship_date(tmp_path: Path) -> None:
    from decimal import Decimal

    from chronoforce.domain.models import Parcel
    from chronoforce.domain.routing import RoutingFacts, route
    from chronoforce.pipeline.locations import Locations
    from chronoforce.salesforce.mapping import MappingConfig

    sites = {k: dict(v) for k, v in LOCATIONS["sites"].items()}  # type: ignore[attr-defined]
    sites["lyon"]["cutoffs"] = {"16": "10:00"}
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text(json.dumps({"locations": {**LOCATIONS, "sites": sites}}))  # JSON is YAML
    settings = load_settings(cfg, {})
    locations = Locations.from_settings(settings, MappingConfig.from_settings({}))
    facts = RoutingFacts(country="FR", postal_code="75011", parcels=(Parcel(Decimal(1)),))
    tuesday_11h = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)  # 11:00 in Paris
    ships = {
        key: route(facts, tuesday_11h, locations.routing(locations.site(key), settings.routing))
        for key in ("paris", "lyon")
    }
    assert ships["paris"].ship_date == dt.date(2026, 12, 1)  # Chrono 18's 17:00 default
    assert ships["lyon"].ship_date == dt.date(2026, 12, 2)
    assert "past the 10:00 cutoff" in ships["lyon"].reason


def test_each_location_gets_its_own_end_of_day_slip_under_its_account(world: World) -> None:
    """Issue 23: the slip follows the place parcels leave from and that place's contract."""
    from pypdf import PdfReader

    from chronoforce.pipeline.manifest import Manifests, pickup_day

    _labels_made(world)
    runtime = world.runtime
    manifests = Manifests.from_settings(runtime.settings, runtime.store, runtime.mapping)
    with runtime.store.session() as session:
        live = session.scalars(select(Parcel).where(Parcel.live)).all()
        where = {
            p.skybill_number: (p.shipment.location, pickup_day(p.shipment, p, manifests.zone))
            for p in live
            if p.shipment.intent == "outbound"
        }  # fmt: skip (returns: no slip)
    printed: dict[tuple[str, str], str] = {}
    for day in sorted({d for _, d in where.values()}):
        for slip in manifests.build(day):
            _, pdf = manifests.pdf(slip.id)
            text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
            key = (slip.location, slip.account_number)
            printed[key] = printed.get(key, "") + text
    assert set(printed) == {("lyon", LYON_ACCOUNT), ("paris", DEMO_ACCOUNT)}
    # Each slip's header is its own location's address, where the driver signs it.
    assert "10 rue de Gerland" in printed[("lyon", LYON_ACCOUNT)]
    assert "3 avenue Gallieni" in printed[("paris", DEMO_ACCOUNT)]
    for skybill, (location, _) in where.items():
        account = LYON_ACCOUNT if location == "lyon" else DEMO_ACCOUNT
        assert skybill in printed[(location, account)]
        other = ("paris", DEMO_ACCOUNT) if location == "lyon" else ("lyon", LYON_ACCOUNT)
        assert skybill not in printed[other]


# --- product-bound rules: one location for everything one order does (issue 23) -------------

# Chrono 18 ("16", what the demo routing picks for a French home) and Chrono Precise's own
# ("2O", productType RDV) leave from Lyon; every other product, and a return's 4T, from Paris.
BOUND_RULES = [{"location": "lyon", "products": ["16", "2O"]}]
BOUND_REASON = "rule 1: product 16"


@pytest.fixture(scope="module")
def bound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Orders with no location field and well-formed French home addresses; nothing labeled
    until a test makes it (`_label`), so each test decides what the order has done before."""
    tmp = tmp_path_factory.mktemp("bound")
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(
        db_path=":memory:", cancel_window=dt.timedelta(0), accounts={LYON_ACCOUNT: DEMO_PASSWORD}
    )
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=8, seed=11)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp, cp.url, sf.url, tls.ca_cert).model_copy(
        update={
            "mapping": {"location": FIELD},
            "locations": LocationsConfig.model_validate({**LOCATIONS, "rules": BOUND_RULES}),
        }
    )
    runtime = build_runtime(settings)
    service = ApiService(settings, api_config(settings.api), runtime)
    orders = [o["Id"] for o in sorted(org.records("Order"), key=lambda o: o["OrderNumber"])]
    fixes = [{"Id": o, **GOOD_ADDRESS, FIELD: ""} for o in orders]
    assert all(r.success for r in runtime.salesforce.collection("update", "Order", fixes))
    try:
        yield World(carrier, org, runtime, service, orders, "", [], "")
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _home_order(world: World) -> str:
    """An order (not used yet) the routing sends as Chrono 18 (no relay point, no override)."""
    while world.by_field:
        record_id = world.by_field.pop(0)
        order = world.service.read_order(record_id).order
        if not order.product_override and not order.relay_point_id:
            return record_id
    raise AssertionError("the seed has no plain home order left")


def _label(world: World, record_id: str) -> Shipment:
    [shipment_id] = world.runtime.record([world.service.read_order(record_id).record], None)
    assert world.runtime.labels.process(shipment_id) == "labeled"
    return world.shipment(record_id)[0]


def _return_row(world: World, record_id: str) -> Shipment:
    with world.runtime.store.session() as session:
        return session.scalars(
            select(Shipment).where(Shipment.sf_id == record_id, Shipment.intent == "return")
        ).one()


def test_a_product_rule_gives_one_location_to_the_label_rate_pickup_and_return(
    bound: World,
) -> None:
    record_id = _home_order(bound)
    # The rate before the label: Chrono 18 from Lyon, as its label will be.
    quote = bound.service.rates(RatesRequest(order_id=record_id))
    assert quote.chosen is not None and quote.chosen.product_code == "16"
    assert quote.departure.postal_code == "69007"
    by_code = {p.product_code: p for p in quote.products}
    assert "priced from" not in by_code["16"].note
    # Another product of the same order is priced where its own label would leave from: Paris.
    others = [p for p in quote.products if p.product_code not in ("16", "2O")]
    assert others and all("priced from location paris (default:" in p.note for p in others)
    asked = {r.account for r in bound.carrier.requests("calculateProducts")}
    assert asked == {LYON_ACCOUNT, DEMO_ACCOUNT}

    shipment = _label(bound, record_id)
    assert (shipment.product_code, shipment.location) == ("16", "lyon")
    assert shipment.location_reason == BOUND_REASON
    sent = _label_request(bound, shipment.order_number)
    assert sent.account == LYON_ACCOUNT and "<shipperZipCode>69007</shipperZipCode>" in sent.request

    ask = PickupRequest(date=_next_weekday(bound), ready_time=dt.time(14), closing_time=dt.time(18))
    assert bound.service.book_pickup(record_id, ask).booked
    [pickup] = bound.carrier.requests("creerEnlevementNational")[-1:]
    assert pickup.account == LYON_ACCOUNT and "69007" in pickup.request

    # Re-quoted once labeled: every product from Lyon, where the parcel already is.
    again = bound.service.rates(RatesRequest(order_id=record_id))
    assert again.departure.postal_code == "69007"
    assert not any("priced from" in p.note for p in again.products)

    made = bound.service.return_label(record_id, ReturnRequest())
    assert made.skybill_numbers
    back = _return_row(bound, record_id)
    assert back.location == "lyon"
    assert (
        back.location_reason == f"outbound shipment {shipment.id} left from lyon ({BOUND_REASON})"
    )
    sent = bound.carrier.requests("shippingMultiParcelV5")[-1]
    assert (
        sent.account == LYON_ACCOUNT
        and "<recipientZipCode>69007</recipientZipCode>" in sent.request
    )


def test_a_return_goes_back_to_its_labels_location_after_a_config_change(bound: World) -> None:
    from chronoforce.pipeline.facts import order_facts

    locations = bound.runtime.locations
    assert locations is not None
    record_id = _home_order(bound)
    shipment = _label(bound, record_id)
    assert shipment.location == "lyon"
    read = bound.service.read_order(record_id)
    rules = locations.rules
    locations.rules = ()  # the product rule taken out of the configuration since the label
    try:
        facts = order_facts(read.order, read.order.recipient)
        assert locations.choose(read.record, facts, lambda: "16").key == "paris"  # today's rules
        bound.service.return_label(record_id, ReturnRequest())
    finally:
        locations.rules = rules
    back = _return_row(bound, record_id)
    assert back.location == "lyon"
    assert back.location_reason.startswith(f"outbound shipment {shipment.id} left from lyon")
    sent = bound.carrier.requests("shippingMultiParcelV5")[-1]
    assert (
        sent.account == LYON_ACCOUNT
        and "<recipientZipCode>69007</recipientZipCode>" in sent.request
    )


def test_a_return_without_an_outbound_row_takes_the_rules_with_its_own_product(
    bound: World,
) -> None:
    record_id = _home_order(bound)  # never labeled here: no outbound row
    bound.service.return_label(record_id, ReturnRequest())
    back = _return_row(bound, record_id)
    # Chrono Reverse 13 (4T) is not in the rule's products: the default, as its label would say.
    assert (back.product_code, back.location) == ("4T", "paris")
    assert back.location_reason == "default: no location field, no rule matched"
    sent = bound.carrier.requests("shippingMultiParcelV5")[-1]
    assert (
        sent.account == DEMO_ACCOUNT
        and "<recipientZipCode>94250</recipientZipCode>" in sent.request
    )


def test_precise_searches_and_labels_from_the_location_of_its_product(bound: World) -> None:
    """A rule bound to Chrono Precise's 2O alone: the slots are searched from Lyon, and the label
    the confirmed slot makes (2O, not the routed 16) is prepared from Lyon too."""
    from chronoforce.config.sections import LocationRule
    from chronoforce.pipeline.facts import order_facts
    from chronoforce.pipeline.precise import Precise
    from chronoforce.pipeline.runtime import shipper_party

    runtime = bound.runtime
    locations = runtime.locations
    assert locations is not None
    record_id = _home_order(bound)
    read = bound.service.read_order(record_id)
    rules = locations.rules
    locations.rules = (LocationRule.model_validate({"location": "lyon", "products": ["2O"]}),)
    try:
        # Without its product the order would leave from Paris: only 2O's rule says Lyon.
        facts = order_facts(read.order, read.order.recipient)
        assert locations.choose(read.record, facts).key == "paris"
        [shipment_id] = runtime.record([read.record], None)
        precise = Precise(
            runtime.store, runtime.carrier, runtime.labels.gates,
            shipper_party(runtime.settings), runtime.now, runtime.mapping, locations=locations,
        )  # fmt: skip
        offer = precise.offer(shipment_id)
        assert offer.product_type == "RDV"
        [search] = bound.carrier.requests("searchDeliverySlot")[-1:]
        assert "69007" in search.request and "94250" not in search.request
        slot = next(s for s in offer.slots if s.open and s.date.isoweekday() < 6)
        assert precise.confirm(shipment_id, slot.date, slot.code).confirmed.product_code == "2O"
        # Searched and confirmed under Lyon's contract, where its label is made: the sandbox
        # keeps a confirmed slot for the contract that confirmed it (a label under another is
        # refused with error 33).
        for operation in ("searchDeliverySlot", "confirmDeliverySlotV2"):
            [asked] = bound.carrier.requests(operation)[-1:]
            assert asked.account == LYON_ACCOUNT, operation
        # The label's preparation (what labels.py sends) chooses with the slot's 2O.
        with runtime.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            prepared = runtime.labels.prepare(row)
        assert runtime.labels.process(shipment_id) == "labeled"
        [made] = bound.carrier.requests("shippingMultiParcelV5")[-1:]
        assert made.account == LYON_ACCOUNT
    finally:
        locations.rules = rules
    assert (prepared.location, prepared.location_reason) == ("lyon", "rule 1: product 2O")
    assert prepared.request.shipper.address.postal_code == "69007"
