"""Bad input: hypothesis-made Salesforce records never crash chronoforce nor get stuck.

Two layers. The pure one throws thousands of generated records (any field null, too long, of the
wrong type, unicode, control characters…) at mapping → address → routing (`Preparation`) and
checks that only our typed errors come out, each naming its field. The end-to-end one seeds
generated orders into the Salesforce sandbox and runs the whole pipeline over HTTP against both
sandboxes: every order ends as a label or an exception row naming the record and the field,
with nothing left pending and no outbox row unsent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from chronoforce.cli.demo import demo_settings
from chronoforce.domain.errors import ChronoforceError, PermanentError
from chronoforce.domain.models import LabelFormat
from chronoforce.domain.routing import RoutingRules
from chronoforce.pipeline.runtime import Preparation, shipper_party
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.store.models import ExceptionRow, Outbox, Shipment
from tests import secrets_registry

NOW = dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC)  # a Tuesday morning: every product open
# Records per run of the pure property tests: kept small for `make test`; set e.g. 5000 for a
# deeper search (the same seed, so a failure reproduces).
EXAMPLES = int(os.environ.get("CHRONOFORCE_FUZZ_EXAMPLES", "500"))

# --- values: plausible ones (so the deeper layers are reached) and hostile ones --------------

_RTL = "שלום مرحبا"
_EMOJI = "📦🚚👩‍👩‍👧‍👦🇫🇷"
_COMBINING = "e\u0301\u0302\u0303a\u0308\u20dd"
_CONTROL = "".join(chr(c) for c in (*range(0, 0x20), 0x7F, 0x85, 0x2028, 0x2029, 0x200B, 0xFEFF))
_SPECIAL = _RTL + _EMOJI + _COMBINING + _CONTROL + "'\"\\%_<>&;\u202e\ufffd"

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(_SPECIAL), max_size=20),
    # Very long: a short random run repeated (drawing 2,000 characters one by one is slow).
    st.tuples(
        st.text(alphabet=string.printable + _SPECIAL, min_size=1, max_size=8),
        st.integers(min_value=40, max_value=400),
    ).map(lambda run: run[0] * run[1]),
    st.sampled_from(["", " ", "\x00", "NULL", "null", "None", "\n\n", "\t", "0", "-1", "1e309"]),
)
hostile_number = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, -1, 0.0, -0.0, 1e-9, 1e308, 10**30, 99, 100, 30.0001, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),  # numbers as strings
    st.sampled_from(["12,5", "1.000,50", "3 kg", "½", "٣", "1_000", "0x10", " 2 "]),
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    hostile_text,
    hostile_number,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


STREETS = ["12 rue de la Paix", "Friedrichstraße 12", "1 Baker Street", "BP 12, 3 rue Haute"]
places = st.sampled_from(
    [
        ("75002", "Paris", "France"),
        ("69003", "Lyon", "FR"),
        ("20000", "Ajaccio", "France"),
        ("97200", "Fort-de-France", "Martinique"),
        ("98000", "Monaco", "Monaco"),
        ("10117", "Berlin", "Germany"),
        ("NW1 6XE", "London", "United Kingdom"),
        ("1000", "Bruxelles", "BE"),
        ("00000", "Nowhere", "Atlantis"),
        ("7500", "Paris", "France"),
    ]
)
phones = st.sampled_from(["+33 6 12 34 56 78", "0612345678", "+49 151 12345678", "12", "abc"])

# Paths into the record that may be corrupted; nested ones cover the relationship fields.
CORRUPTIBLE = (
    "Id",
    "SystemModstamp",
    "OrderNumber",
    "AccountId",
    "Account",
    "Account.Name",
    "Account.AccountNumber",
    "Account.Type",
    "ShipToContact",
    "ShipToContact.Name",
    "ShipToContact.Salutation",
    "ShipToContact.Phone",
    "ShipToContact.MobilePhone",
    "ShipToContact.Email",
    "ShippingStreet",
    "ShippingPostalCode",
    "ShippingCity",
    "ShippingCountry",
    "ShippingState",
    "Chronopost_Weight_Kg__c",
    "Chronopost_Parcel_Count__c",
    "Chronopost_Product__c",
    "Chronopost_Relay_Point_Id__c",
    "Chronopost_Saturday_Delivery__c",
    "Chronopost_Returns_Reference__c",
    "TotalAmount",
    "Chronopost_Priority__c",
)


def _set(record: dict[str, Any], path: str, value: Any, *, delete: bool = False) -> None:
    head, _, rest = path.partition(".")
    if rest:
        if isinstance(record.get(head), dict):
            _set(record[head], rest, value, delete=delete)
    elif delete:
        record.pop(head, None)
    else:
        record[head] = value


@st.composite
def order_records(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A plausible Order as the default mapping's SOQL returns it (plus items), with a few
    fields replaced by hostile values or removed: each layer is reached, each field abused."""
    postal, city, country = draw(places)
    weight = draw(st.sampled_from([0.4, 2.5, 9.5, 31.0, 75.0, None]))
    record: dict[str, Any] = {
        "Id": draw(st.sampled_from(["801000000000001AAA", "801000000000002"])),
        "SystemModstamp": "2026-03-03T08:00:00.000+0000",
        "OrderNumber": f"0000{draw(st.integers(min_value=0, max_value=9999)):04d}",
        "AccountId": "001000000000001AAA",
        "Account": {
            "Name": draw(st.sampled_from(["Dubois SARL", "Müller GmbH", "Ōsaka Trading"])),
            "AccountNumber": "C-042",
            "Type": "Customer - Direct",
        },
        "ShipToContact": {
            "Name": draw(st.sampled_from(["Léa Martin", "Hugo Petit", None])),
            "Salutation": draw(st.sampled_from(["Ms.", "Mr.", "Dr.", None])),
            "Phone": draw(phones),
            "MobilePhone": draw(st.one_of(st.none(), phones)),
            "Email": "lea.martin@example.fr",
        },
        "ShippingStreet": draw(st.sampled_from(STREETS)),
        "ShippingPostalCode": postal,
        "ShippingCity": city,
        "ShippingCountry": country,
        "ShippingState": None,
        "Chronopost_Weight_Kg__c": weight,
        "Chronopost_Parcel_Count__c": draw(st.sampled_from([1, None])),
        "Chronopost_Product__c": draw(st.sampled_from([None, None, "01", "86", "44"])),
        "Chronopost_Relay_Point_Id__c": None,
        "Chronopost_Saturday_Delivery__c": draw(st.booleans()),
        "Chronopost_Returns_Reference__c": None,
        "TotalAmount": 129.0,
        "Chronopost_Priority__c": draw(st.booleans()),
    }
    for path in draw(st.lists(st.sampled_from(CORRUPTIBLE), max_size=3, unique=True)):
        _set(record, path, draw(anything), delete=draw(st.booleans()) and draw(st.booleans()))
    item = st.fixed_dictionaries(
        {
            "Id": st.just("802000000000001AAA"),
            "OrderId": st.just(record.get("Id")),
            "Quantity": st.one_of(st.sampled_from([1.0, 2.0, 3.0]), anything),
            "Product2": st.one_of(
                st.fixed_dictionaries(
                    {"Chronopost_Weight_Kg__c": st.one_of(st.just(1.2), anything)}
                ),
                st.none(),
            ),
        }
    )
    items = draw(st.lists(item, min_size=0 if weight else 1, max_size=3))
    return record, items


# --- pure layers: mapping → address → routing ------------------------------------------------


@pytest.fixture(scope="module")
def preparation(tmp_path_factory: pytest.TempPathFactory) -> Preparation:
    out = tmp_path_factory.mktemp("prep")
    config = demo_settings(out, "http://127.0.0.1:9", "https://127.0.0.1:9", out / "ca.pem")
    return Preparation(
        mapping=MappingConfig.from_settings(config.mapping),
        rules=RoutingRules.from_mapping(config.routing),
        shipper=shipper_party(config),
        label_format=LabelFormat(config.chronopost.label_format),
        now=lambda: NOW,
    )


def _as_shipment(record: dict[str, Any], items: list[dict[str, Any]]) -> Shipment:
    # Through JSON, as the shipment row's `source` column keeps it.
    source = json.loads(json.dumps({"record": record, "items": items, "shipment_id": ""}))
    return Shipment(sf_object="Order", sf_id=str(record.get("Id") or "")[:18], source=source)


OUTCOMES: dict[str, int] = {}


@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same records on every run and in CI
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(order_records())
def test_generated_records_give_a_request_or_a_typed_error_naming_the_field(
    preparation: Preparation, generated: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    record, items = generated
    try:
        prepared = preparation(_as_shipment(record, items))
    except ChronoforceError as error:
        assert isinstance(error, PermanentError), f"bad input is never transient: {error!r}"
        assert error.field, f"{type(error).__name__} names no field: {error}"
        OUTCOMES[error.code] = OUTCOMES.get(error.code, 0) + 1
        return
    request = prepared.request
    assert request.parcels and all(p.weight_kg > 0 for p in request.parcels)
    assert request.product_code
    for line in (request.recipient.address.line1, request.recipient.address.city):
        assert line and line.isprintable(), f"unprintable text reached the carrier: {line!r}"
    OUTCOMES["labelable"] = OUTCOMES.get("labelable", 0) + 1


@st.composite
def shipment_records(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same orders seen from a Shipment (the other trigger object): its own ship-to
    fields, the order behind its `Order__c` lookup."""
    order, items = draw(order_records())
    record: dict[str, Any] = {
        "Id": draw(st.sampled_from(["0OB000000000001AAA", "0OB000000000002"])),
        "ShipmentNumber": "0000000001",
        "Order__c": order.get("Id"),
        "Order__r": order,
        "ShipToName": draw(st.sampled_from(["Léa Martin", "Müller GmbH", None])),
        "ShipToStreet": order.get("ShippingStreet"),
        "ShipToPostalCode": order.get("ShippingPostalCode"),
        "ShipToCity": order.get("ShippingCity"),
        "ShipToCountry": order.get("ShippingCountry"),
        "Chronopost_Product__c": order.get("Chronopost_Product__c"),
    }
    for name in draw(st.lists(st.sampled_from(sorted(record)), max_size=2, unique=True)):
        record[name] = draw(anything)
    return record, items


@settings(
    max_examples=max(50, EXAMPLES // 3),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(shipment_records())
def test_generated_shipment_records_give_a_request_or_a_typed_error_naming_the_field(
    preparation: Preparation, generated: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    from dataclasses import replace

    record, items = generated
    by_shipment = replace(
        preparation, mapping=MappingConfig.from_settings({"trigger_object": "Shipment"})
    )
    source = json.loads(json.dumps({"record": record, "items": items, "shipment_id": ""}))
    shipment = Shipment(sf_object="Shipment", sf_id=str(record.get("Id") or "")[:18], source=source)
    try:
        prepared = by_shipment(shipment)
    except ChronoforceError as error:
        assert isinstance(error, PermanentError), f"bad input is never transient: {error!r}"
        assert error.field, f"{type(error).__name__} names no field: {error}"
        return
    assert prepared.request.parcels and prepared.request.product_code


def test_the_generated_records_reach_every_outcome() -> None:
    """The property above is only worth something if its records got past every layer."""
    if not OUTCOMES:
        pytest.skip("runs after the property test in the same session")
    assert OUTCOMES.get("labelable", 0) > 50, OUTCOMES
    assert OUTCOMES.get("MAPPING_INVALID", 0) > 50, OUTCOMES
    assert any(code.startswith(("ADDRESS", "POSTAL", "COUNTRY")) for code in OUTCOMES), OUTCOMES


def _plain_order(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Id": "801000000000001AAA",
        "OrderNumber": "00000042",
        "Account": {"Name": "Dubois SARL"},
        "ShipToContact": {"Name": "Léa Martin", "Phone": "+33 6 12 34 56 78"},
        "ShippingStreet": "12 rue de la Paix",
        "ShippingPostalCode": "75002",
        "ShippingCity": "Paris",
        "ShippingCountry": "France",
        "Chronopost_Weight_Kg__c": 2.5,
        "Chronopost_Parcel_Count__c": 1,
    }
    return {**record, **changes}


@pytest.mark.parametrize("weight", [1e30, 10**26, 2971])
def test_a_weight_no_shipment_can_carry_is_a_mapping_error_on_the_weight_field(
    preparation: Preparation, weight: float
) -> None:
    """Found by the property test: 1e27 kg overflowed the split to the gram (InvalidOperation)."""
    record = _plain_order(Chronopost_Weight_Kg__c=weight, Chronopost_Parcel_Count__c=None)
    with pytest.raises(ChronoforceError) as caught:
        preparation(_as_shipment(record, []))
    assert caught.value.code == "MAPPING_INVALID"
    assert caught.value.field == "Chronopost_Weight_Kg__c"
    assert caught.value.record_id == "801000000000001AAA"


def test_a_parcel_too_heavy_for_every_product_names_the_parcels() -> None:
    """Found by the property test: "no product fits" named no field at all."""
    from decimal import Decimal

    from chronoforce.domain.models import Parcel
    from chronoforce.domain.routing import RoutingFacts, route

    heavy = RoutingFacts(country="FR", postal_code="75002", parcels=(Parcel(Decimal(31)),))
    with pytest.raises(ChronoforceError) as caught:
        route(heavy, NOW)
    assert caught.value.field == "parcels"
    nowhere = RoutingFacts(country="AQ", postal_code="", parcels=(Parcel(Decimal(1)),))
    try:
        route(nowhere, NOW)
    except ChronoforceError as error:
        assert error.field


# --- the whole pipeline: Salesforce sandbox → chronoforce → Chronopost sandbox → writeback -----

BATCH = 14  # orders per hypothesis example: the pipeline runs once per batch, not per record

contact_values = st.fixed_dictionaries(
    {
        "LastName": st.one_of(st.sampled_from(["Martin", "Müller", "أحمد"]), hostile_text),
        "FirstName": st.one_of(st.sampled_from(["Léa", "Zoë"]), st.none(), hostile_text),
        "Salutation": st.one_of(st.sampled_from(["Ms.", "Mr."]), st.none(), hostile_text),
        "Phone": st.one_of(phones, st.none(), hostile_text),
        "MobilePhone": st.one_of(phones, st.none(), hostile_text),
        "Email": st.one_of(st.just("lea@example.fr"), st.none(), hostile_text),
    }
)


@st.composite
def sandbox_orders(draw: st.DrawFn) -> dict[str, Any]:
    """An Order, its contact, account and items as the sandbox's Python API creates them.

    Values Salesforce itself refuses (too long for the column, not a number, a bad email) are
    dropped by `_create`, as an org would never hold them; all the rest reaches chronoforce.
    """
    postal, city, country = draw(places)
    plausible = {
        "ShippingStreet": draw(st.sampled_from(STREETS)),
        "ShippingPostalCode": postal,
        "ShippingCity": city,
        "ShippingCountry": country,
        "Chronopost_Weight_Kg__c": draw(st.sampled_from([0.4, 2.5, 9.5, 31.0, None])),
        "Chronopost_Parcel_Count__c": draw(st.sampled_from([1, None])),
    }
    hostile = {
        "ShippingStreet": hostile_text,
        "ShippingPostalCode": hostile_text,
        "ShippingCity": hostile_text,
        "ShippingCountry": hostile_text,
        "ShippingState": hostile_text,
        "Chronopost_Weight_Kg__c": hostile_number,
        "Chronopost_Parcel_Count__c": hostile_number,
        "Chronopost_Product__c": st.one_of(st.sampled_from(["01", "86", "99"]), hostile_text),
        "Chronopost_Relay_Point_Id__c": hostile_text,
        "Chronopost_Returns_Reference__c": hostile_text,
        "Description": st.one_of(hostile_number.map(str), hostile_text),  # weight as text
        "Name": hostile_text,
    }
    order = dict(plausible)
    for name in draw(st.lists(st.sampled_from(sorted(hostile)), max_size=3, unique=True)):
        order[name] = draw(st.one_of(st.none(), hostile[name]))
    items = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from([1.0, 2.0]), hostile_number),
                st.one_of(st.sampled_from([0.35, 1.2]), st.none(), hostile_number),
            ),
            max_size=2,
        )
    )
    return {
        "order": order,
        "contact": draw(contact_values),
        "account": draw(st.one_of(st.sampled_from(["Dubois SARL"]), hostile_text)),
        "items": items,
    }


REQUIRED = {"Name": "Refused name", "LastName": "Refused", "Quantity": 1.0}


def _create(org: Any, sobject: str, values: dict[str, Any]) -> str:
    """Create through the sandbox's validation, dropping the fields Salesforce refuses (a
    required one gets a plain value instead)."""
    from chronoforce.sandbox.salesforce.errors import RecordErrors

    values = dict(values)
    for _ in range(2 * len(values) + 2):
        try:
            return str(org.org.create(sobject, values))
        except RecordErrors as refused:
            named = {f for error in refused.errors for f in error.fields}
            if not named & (set(values) | set(REQUIRED)):
                raise
            for name in named:
                values.pop(name, None)
                if name in REQUIRED:
                    values[name] = REQUIRED[name]
    raise AssertionError(f"the sandbox refused every value of {sobject}")


def seed(org: Any, batch: list[dict[str, Any]]) -> list[str]:
    order_ids = []
    for n, spec in enumerate(batch):
        account = _create(org, "Account", {"Name": spec["account"] or f"Account {n}"})
        contact = dict(spec["contact"])
        contact["LastName"] = contact["LastName"] or f"Contact {n}"
        contact_id = _create(org, "Contact", {**contact, "AccountId": account})
        order_id = _create(
            org,
            "Order",
            {
                **spec["order"],
                "AccountId": account,
                "ShipToContactId": contact_id,
                "EffectiveDate": "2026-03-02",
                "Chronopost_Ship__c": True,
                "Chronopost_Label_Status__c": "Requested",
            },
        )
        for quantity, weight in spec["items"]:
            product = _create(org, "Product2", {"Name": "Item", "Chronopost_Weight_Kg__c": weight})
            _create(
                org,
                "OrderItem",
                {"OrderId": order_id, "Product2Id": product, "Quantity": quantity, "UnitPrice": 1},
            )
        order_ids.append(order_id)
    return order_ids


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    base = tmp_path_factory.mktemp("bad-input")
    tls = ensure_tls(base / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    totals: dict[str, Any] = {"orders": 0, "labels": 0, "exceptions": 0, "codes": {}}
    try:
        yield {
            "carrier": carrier,
            "org": org,
            "cp": cp,
            "sf": sf,
            "tls": tls,
            "base": base,
            "totals": totals,
        }
    finally:
        sf.stop()
        cp.stop()


SETTINGS = {
    "derandomize": True,
    "phases": [Phase.explicit, Phase.generate],  # no shrinking: each is a whole pipeline run
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=3, **SETTINGS)
@given(st.lists(sandbox_orders(), min_size=BATCH, max_size=BATCH))
def test_generated_orders_through_the_whole_pipeline_end_labeled_or_as_named_exceptions(
    sandboxes: dict[str, Any], batch: list[dict[str, Any]]
) -> None:
    run_batch(sandboxes, batch)


def _nul_order(street: str, city: str, name: str) -> dict[str, Any]:
    return {
        "order": {
            "ShippingStreet": street,
            "ShippingPostalCode": "75002",
            "ShippingCity": city,
            "ShippingCountry": "France",
            "Chronopost_Weight_Kg__c": 2.5,
            "Chronopost_Parcel_Count__c": 1,
        },
        "contact": {"LastName": name, "Phone": "+33 6 12 34 56 78"},
        "account": "Dubois SARL",
        "items": [],
    }


# PostgreSQL text cannot hold NUL: these must still end as a label or a named exception.
NUL_BATCH = [
    _nul_order("12 rue de la Paix\x00", "Paris", "Martin"),
    _nul_order("12 rue de la Paix", "Pa\x00ris", "Mar\x00tin"),
    _nul_order("\x00", "\x00", "\x00\x01\x1b[31m"),
]


@pytest.mark.postgres
@pytest.mark.redis
@settings(max_examples=1, **SETTINGS)
@given(st.lists(sandbox_orders(), min_size=2 * BATCH, max_size=2 * BATCH))
@example(NUL_BATCH)
def test_generated_orders_end_the_same_on_postgresql_and_redis(
    sandboxes: dict[str, Any], batch: list[dict[str, Any]]
) -> None:
    """PostgreSQL refuses what SQLite keeps (NUL characters in text, overlong values)."""
    with scaled_backends() as scaled:
        run_batch(sandboxes, batch, scaled)


@contextlib.contextmanager
def scaled_backends() -> Iterator[dict[str, Any]]:
    """A throwaway PostgreSQL database and a Redis queue of our own (never flushed)."""
    import uuid

    import psycopg
    import redis

    from tests.conftest import PG_ADMIN_URL, REDIS_URL, _pg_reachable, _skip_or_fail

    reason = _pg_reachable()
    if reason:
        _skip_or_fail(reason)
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        _skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    name = f"chronoforce_badinput_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        yield {
            "database_url": url,
            "queue_url": REDIS_URL,
            "worker": {"queue_name": f"h4-bad-input-{uuid.uuid4().hex[:8]}"},
        }
        leaks = secrets_registry.scan_postgres(url)
        assert not leaks, "; ".join(str(h) for h in leaks)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_batch(
    sandboxes: dict[str, Any], batch: list[dict[str, Any]], scaled: dict[str, Any] | None = None
) -> None:
    """Seed the batch, run the pipeline until idle, check every order's end state."""
    from chronoforce.cli.common import run_until
    from chronoforce.pipeline.runtime import build_runtime

    org = sandboxes["org"]
    org.reset()
    order_ids = seed(org, batch)
    out = Path(tempfile.mkdtemp(dir=sandboxes["base"]))
    config = demo_settings(out, sandboxes["cp"].url, sandboxes["sf"].url, sandboxes["tls"].ca_cert)
    update: dict[str, Any] = {
        "mapping": {"weight": ["Description", "Chronopost_Weight_Kg__c"]},  # typed as text
        **(scaled or {}),
    }
    runtime = build_runtime(config.model_copy(update=update), cluster=True)
    try:
        run_until(runtime, workers=2, until_idle=True, max_seconds=60)
        with runtime.store.session() as session:
            shipments = {s.sf_id: s for s in session.scalars(select(Shipment))}
            rows = list(session.scalars(select(ExceptionRow).where(ExceptionRow.state == "open")))
            unsent = session.scalars(select(Outbox).where(Outbox.state != "sent")).all()
            unsent_desc = [(o.sf_object, o.state, o.result) for o in unsent]
    finally:
        runtime.close()
    assert set(shipments) == set(order_ids), "every order became a shipment intent"
    stuck = {i: s.state for i, s in shipments.items() if s.state not in ("labeled", "exception")}
    assert not stuck, f"work left behind: {stuck}"
    assert not unsent_desc, f"Salesforce writes never sent: {unsent_desc}"
    orders = {o["Id"]: o for o in org.records("Order")}
    errors = {e["Record_Id__c"]: e for e in org.records("Chronopost_Integration_Error__c")}
    by_order = {r.sf_id: r for r in rows}
    for sf_id, shipment in shipments.items():
        if shipment.state == "labeled":
            assert orders[sf_id]["Chronopost_Tracking_Number__c"], sf_id
            assert orders[sf_id]["Chronopost_Label_Status__c"] == "Created"
            continue
        row = by_order.get(sf_id)
        assert row is not None, f"{sf_id} is an exception without an open exception row"
        assert row.field, f"{sf_id}: {row.code} names no field ({row.message})"
        assert row.message
        mirrored = errors.get(sf_id)
        assert mirrored and mirrored["Field__c"] == row.field and mirrored["Code__c"] == row.code
        assert orders[sf_id]["Chronopost_Label_Status__c"] == "Error"
    totals = sandboxes["totals"]
    totals["orders"] += len(order_ids)
    totals["labels"] += sum(1 for s in shipments.values() if s.state == "labeled")
    totals["exceptions"] += sum(1 for s in shipments.values() if s.state == "exception")
    for row in rows:
        totals["codes"][f"{row.code}:{row.field}"] = (
            totals["codes"].get(f"{row.code}:{row.field}", 0) + 1
        )


def test_bad_input_summary(sandboxes: dict[str, Any], reliability_summary: list[Any]) -> None:
    """One summary row for the end-to-end batches above (they ran first in this module)."""
    from tests.reliability.conftest import SummaryRow

    totals = sandboxes["totals"]
    if not totals["orders"]:
        pytest.skip("the end-to-end property test did not run in this session")
    assert totals["labels"] and totals["exceptions"], totals
    assert totals["labels"] + totals["exceptions"] == totals["orders"]
    reliability_summary.append(
        SummaryRow(
            scenario="bad input",
            orders=totals["orders"],
            labels=totals["labels"],
            exceptions=totals["exceptions"],
            duplicates=0,
            lost=0,
            notes={"codes": totals["codes"]},
        )
    )
    print("bad input exception codes:", totals["codes"])


def test_a_carrier_refusal_of_one_element_names_it_as_the_field() -> None:
    """Found end to end: "Invalid data: recipientCity" became an exception naming no field."""
    from chronoforce.chronopost.codes import error_for

    assert error_for(33, "Invalid data: recipientCity (1E309 is not 20000)").field == (
        "recipientCity"
    )
    assert error_for(32, "Incorrect data length: recipientName (max 35)").field == "recipientName"
    assert error_for(31, "Empty data: recipientZipCode").field == "recipientZipCode"
    assert error_for(33, "Invalid accesColis account number").field == ""
