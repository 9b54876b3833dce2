"""Bad input: hypothesis-made Salesforce records never crash chronoforce nor get stuck.

Two layers. The pure one throws thousands of generated records (any field null, too long, of the
wrong type, unicode, control characters…) at mapping → address → routing (`Preparation`) and
checks that only our typed errors come out, each naming its field. The end-to-end one seeds
generated orders into the Salesforce sandbox and runs the whole pipeline over HTTP against both
sandboxes: every order ends as a label or an exception row naming the record and the field,
with nothing left pending and no outbox row unsent.
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronoforce.demo import demo_settings
from chronoforce.domain.errors import ChronoforceError, PermanentError
from chronoforce.domain.models import LabelFormat
from chronoforce.domain.routing import RoutingRules
from chronoforce.pipeline.runtime import Preparation, shipper_party
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.store.models import Shipment

NOW = dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC)  # a Tuesday morning: every product open

# --- values: plausible ones (so the deeper layers are reached) and hostile ones --------------

_RTL = "שלום مرحبا"
_EMOJI = "📦🚚👩‍👩‍👧‍👦🇫🇷"
_COMBINING = "e\u0301\u0302\u0303a\u0308\u20dd"
_CONTROL = "".join(chr(c) for c in (*range(0, 0x20), 0x7F, 0x85, 0x2028, 0x2029, 0x200B, 0xFEFF))
_SPECIAL = _RTL + _EMOJI + _COMBINING + _CONTROL + "'\"\\%_<>&;\u202e\ufffd"

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(_SPECIAL), max_size=20),
    st.text(alphabet=string.printable + _SPECIAL, min_size=200, max_size=2000),
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
        "OrderNumber": draw(st.from_regex(r"\A0000\d{4}\Z")),
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
    return Shipment(
        sf_object="Order",
        sf_id=str(record.get("Id") or "")[:18],
        source={"record": record, "items": items, "shipment_id": ""},
    )


OUTCOMES: dict[str, int] = {}


@settings(
    max_examples=1000,
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
