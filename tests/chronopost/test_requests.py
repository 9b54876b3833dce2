"""Every request the adapter builds fits the OFFICIAL Chronopost XSDs, and the hand-written
shipment and tracking envelopes are exactly what zeep serializes from our WSDL for the same data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from decimal import Decimal

import pytest
import xmlschema
from lxml import etree

from chronoforce.chronopost import rates, relay, shipping, tracking
from chronoforce.domain.models import (
    Address,
    LabelDelivery,
    LabelFormat,
    ObjectType,
    Parcel,
    Pickup,
    References,
    RelayPoint,
    ShipmentOptions,
)

from .conftest import CREDENTIALS, assert_valid, make_request, operation_element

HOME_PRODUCTS = ("01", "16", "02")
ABROAD_PRODUCTS = ("44", "17")
PICKUP = Pickup(dt.date(2024, 3, 4), dt.time(14, 30), dt.time(18, 0), "Quai 3, sonner")
RELAY_POINT = RelayPoint(
    "0601R", "TABAC DU PORT", Address("TABAC DU PORT", "", "1 QUAI BONAPARTE", "", "06500",
                                      "MENTON", "FR"),
)  # fmt: skip
EU_RELAY_POINT = RelayPoint(
    "1001B", "LIBRAIRIE DE LA LOI", Address("LIBRAIRIE DE LA LOI", "", "RUE DE LA LOI 20", "",
                                            "1000", "BRUXELLES", "BE"),
)  # fmt: skip
SHIRTS, VALUE = ("Cotton T-shirts",), Decimal("49.90")
OPTIONS: dict[str, ShipmentOptions] = {
    "plain": ShipmentOptions(),
    "saturday": ShipmentOptions(saturday_delivery=True),
    "pickup": ShipmentOptions(pickup=PICKUP),
    "return": ShipmentOptions(is_return=True),
    "insured": ShipmentOptions(insured_value=Decimal("250.00"), declared_value=Decimal("199.9")),
    "zpl": ShipmentOptions(label_format=LabelFormat.Z2D),
    "documents": ShipmentOptions(object_type=ObjectType.DOCUMENTS, label_format=LabelFormat.PPR),
}
ABROAD_OPTIONS: dict[str, ShipmentOptions] = {
    "goods": ShipmentOptions(contents=SHIRTS, declared_value=VALUE),
    "pickup": ShipmentOptions(pickup=PICKUP, contents=SHIRTS, declared_value=VALUE),
    "insured": ShipmentOptions(
        insured_value=Decimal("250.00"), contents=SHIRTS, declared_value=VALUE
    ),
    "zpl": ShipmentOptions(label_format=LabelFormat.Z2D, contents=SHIRTS, declared_value=VALUE),
    "documents": ShipmentOptions(object_type=ObjectType.DOCUMENTS, contents=("Contracts",)),
}
# Home products with every domestic country and option, international products with every
# foreign country and option, parcel counts cycling through the list.
MATRIX = [
    (product, country, name, parcels)
    for (product, country), name, parcels in zip(
        itertools.product(HOME_PRODUCTS, ("FR", "MC")),
        itertools.cycle(OPTIONS),
        itertools.cycle((1, 3, 1, 1, 3)),
        strict=False,
    )
] + [("01", "FR", name, parcels) for name in OPTIONS for parcels in (1, 3)]
ABROAD_MATRIX = [
    (product, country, name, parcels)
    for (product, country), name, parcels in zip(
        itertools.product(ABROAD_PRODUCTS, ("BE", "DE", "GB", "US")),
        itertools.cycle(ABROAD_OPTIONS),
        itertools.cycle((1, 3, 1)),
        strict=False,
    )
    if not (product == "44" and country in ("GB", "US"))  # Chrono Classic: Europe
]


def _options(option: str, country: str) -> ShipmentOptions:
    return (ABROAD_OPTIONS if country not in ("FR", "MC") else OPTIONS)[option]


def _c14n(envelope: bytes) -> str:
    return etree.canonicalize(etree.fromstring(envelope), strip_text=True, rewrite_prefixes=True)


@pytest.mark.parametrize(("product", "country", "option", "parcels"), MATRIX + ABROAD_MATRIX)
def test_every_shipment_request_validates_against_the_official_xsd(
    official_schemas: dict[str, xmlschema.XMLSchema],
    product: str,
    country: str,
    option: str,
    parcels: int,
) -> None:
    request = make_request(product, country, parcels, _options(option, country))
    operation = assert_valid(
        official_schemas["shipping"], shipping.build_shipment(request, CREDENTIALS)
    )
    assert operation.tag == "{http://cxf.shipping.soap.chronopost.fr/}shippingMultiParcelV5"
    assert len(operation.findall("skybillValue")) == parcels
    assert operation.findtext("numberOfParcel") == str(parcels)


@pytest.mark.parametrize(("product", "country", "option", "parcels"), (MATRIX + ABROAD_MATRIX)[::3])
def test_hand_built_shipment_request_equals_zeep_serialization(
    product: str, country: str, option: str, parcels: int
) -> None:
    request = make_request(product, country, parcels, _options(option, country))
    fast = shipping.build_shipment(request, CREDENTIALS)
    assert _c14n(fast) == _c14n(shipping.build_shipment_zeep(request, CREDENTIALS))


def test_hand_built_tracking_request_equals_zeep_serialization(
    official_schemas: dict[str, xmlschema.XMLSchema],
) -> None:
    fast = tracking.build_track("XP696982485FR")
    assert _c14n(fast) == _c14n(tracking.build_track_zeep("XP696982485FR"))
    assert_valid(official_schemas["tracking"], fast)


def test_markup_in_values_is_escaped_and_control_characters_dropped(
    official_schemas: dict[str, xmlschema.XMLSchema],
) -> None:
    tricky = Address(
        "Dupont & Fils <SARL>", "", '1 rue "Haute" ]]>', "\x01\x0bétage 2", "06500", "MENTON", "FR"
    )
    request = make_request(recipient=tricky)
    fast = shipping.build_shipment(request, CREDENTIALS)
    recipient = assert_valid(official_schemas["shipping"], fast).find("recipientValue")
    assert recipient is not None
    assert recipient.findtext("recipientName") == "Dupont & Fils <SARL>"
    assert recipient.findtext("recipientAdress1") == '1 rue "Haute" ]]>'
    assert recipient.findtext("recipientAdress2") == "étage 2"
    # zeep refuses control characters outright; without them both write the same document.
    clean = dataclasses.replace(tricky, line2="étage 2")
    same = make_request(recipient=clean)
    assert _c14n(fast) == _c14n(shipping.build_shipment_zeep(same, CREDENTIALS))


def _shipment(options: ShipmentOptions, parcels: int = 1) -> etree._Element:
    return operation_element(
        shipping.build_shipment(make_request(options=options, parcels=parcels), CREDENTIALS)
    )


def test_header_carries_account_chrfr_and_sub_account_zero_when_none() -> None:
    header = _shipment(OPTIONS["plain"]).find("headerValue")
    assert header is not None
    assert [child.tag for child in header] == ["accountNumber", "idEmit", "subAccount"]
    assert [child.text for child in header] == [CREDENTIALS.account_number, "CHRFR", "0"]


def test_references_carry_order_number_customer_id_and_returns_reference() -> None:
    request = dataclasses.replace(
        make_request(options=ShipmentOptions(is_return=True)),
        references=References("SO-9", "C-7", "RMA-77"),
    )
    ref = operation_element(shipping.build_shipment(request, CREDENTIALS)).find("refValue")
    assert ref is not None
    assert (ref.findtext("shipperRef"), ref.findtext("recipientRef")) == ("SO-9", "C-7")
    assert ref.findtext("customerSkybillNumber") == "RMA-77"


def test_saturday_delivery_is_service_6_and_normal_is_service_0() -> None:
    assert _shipment(OPTIONS["saturday"]).findtext("skybillValue/service") == "6"
    assert _shipment(OPTIONS["plain"]).findtext("skybillValue/service") == "0"


def test_relay_point_goes_to_idRelais_and_recipientRef() -> None:
    request = make_request("86", options=ShipmentOptions(relay_point=RELAY_POINT))
    operation = operation_element(shipping.build_shipment(request, CREDENTIALS))
    assert operation.findtext("refValue/idRelais") == "0601R"
    assert operation.findtext("refValue/recipientRef") == "0601R"
    assert _shipment(OPTIONS["plain"]).find("refValue/idRelais") is None


def test_labels_we_print_are_sent_with_mode_retour_2() -> None:
    # modeRetour says how the label travels ([D] §2.3.2.b9): 2 = not sent; 1 e-mailed it.
    assert _shipment(OPTIONS["plain"]).findtext("modeRetour") == "2"
    emailed = ShipmentOptions(label_delivery=LabelDelivery.EMAIL_TO_SHIPPER)
    assert _shipment(emailed).findtext("modeRetour") == "1"


def test_pickup_on_demand_books_esd_with_ready_and_closing_times() -> None:
    operation = _shipment(OPTIONS["pickup"])
    esd = operation.find("esdValue")
    assert esd is not None and operation[0] is esd  # first child, as the XSD orders it
    assert esd.findtext("retrievalDateTime") == "2024-03-04T14:30:00"
    assert esd.findtext("closingDateTime") == "2024-03-04T18:00:00"
    assert esd.findtext("specificInstructions") == "Quai 3, sonner"
    assert operation.findtext("skybillValue/shipHour") == "14"
    assert _shipment(OPTIONS["plain"]).find("esdValue") is None


def test_insured_and_declared_values_travel_on_the_first_parcel_in_euro_cents() -> None:
    # [D] §2.3.2.b7: insuredValue and codValue are integer euro cents (8920 = 89.20 EUR).
    options = ShipmentOptions(insured_value=Decimal("250.00"), declared_value=Decimal("199.9"),
                              cod_value=Decimal("12.5"), contents=("Leather shoes",))  # fmt: skip
    operation = operation_element(
        shipping.build_shipment(make_request("17", "US", 3, options), CREDENTIALS)
    )
    first, *others = operation.findall("skybillValue")
    assert (first.findtext("insuredValue"), first.findtext("insuredCurrency")) == ("25000", "EUR")
    assert (first.findtext("codValue"), first.findtext("codCurrency")) == ("1250", "EUR")
    assert (first.findtext("customsValue"), first.findtext("customsCurrency")) == ("19990", "EUR")
    assert all(p.find("insuredValue") is None for p in others)
    domestic = _shipment(OPTIONS["insured"]).find("skybillValue")
    assert domestic is not None and domestic.findtext("insuredValue") == "25000"
    assert domestic.find("customsValue") is None  # no customs inside France


def test_three_parcels_are_one_multi_parcel_request_with_their_weights_and_sizes() -> None:
    operation = _shipment(OPTIONS["plain"], parcels=3)
    parcels = operation.findall("skybillValue")
    assert [p.findtext("weight") for p in parcels] == ["2.5", "0.75", "12"]
    assert [p.findtext("weightUnit") for p in parcels] == ["KGM"] * 3
    assert [p.findtext("length") for p in parcels] == ["0", "30", "30"]  # 0: not measured
    assert operation.findtext("multiParcel") == "Y"
    assert _shipment(OPTIONS["plain"]).findtext("multiParcel") == "N"
    # bulkNumber and skybillRank together on every parcel ([D] §2.3.2.b7), one recipient.
    assert [(p.findtext("bulkNumber"), p.findtext("skybillRank")) for p in parcels] == [
        ("3", "1"), ("3", "2"), ("3", "3"),
    ]  # fmt: skip
    assert len(operation.findall("recipientValue")) == 1


def test_label_format_is_the_skybill_params_mode() -> None:
    assert _shipment(OPTIONS["zpl"]).findtext("skybillParamsValue/mode") == "Z2D"
    assert _shipment(OPTIONS["plain"]).findtext("skybillParamsValue/mode") == "PDF"


def test_customer_defaults_to_the_shipper_and_recipient_has_no_civility() -> None:
    operation = _shipment(OPTIONS["plain"])
    assert operation.findtext("customerValue/customerName") == "Boutique Lumière"
    assert operation.findtext("customerValue/customerCivility") == "M"
    assert operation.find("recipientValue/recipientCivility") is None
    assert operation.findtext("recipientValue/recipientPreAlert") == "22"  # has an e-mail


def test_other_requests_validate_against_the_official_xsds(
    official_schemas: dict[str, xmlschema.XMLSchema],
) -> None:
    parcel = Parcel(Decimal("4"), Decimal(30), Decimal(20), Decimal(10))
    built = {
        "shipping": [shipping.build_reserved_label("0729300138103893", LabelFormat.ZPL300)],
        "tracking": [
            tracking.build_by_reference(CREDENTIALS, "SO-000123"),
            tracking.build_cancel(CREDENTIALS, "XP696982485FR"),
        ],
        "quickcost": [
            rates.build_quick_cost(CREDENTIALS, "01", "75001", "06500", Decimal("4")),
            rates.build_calculate_products(
                CREDENTIALS,
                ("FR", "75001"),
                ("BE", "1000", "BRUXELLES"),
                parcel,
                dt.date(2024, 3, 4),
            ),
        ],
    }
    for service, envelopes in built.items():
        for envelope in envelopes:
            assert_valid(official_schemas[service], envelope)


def test_relay_search_request_fits_our_wsdl_since_no_official_xsd_is_known() -> None:
    from chronoforce.sandbox.chronopost.soap import service_schema

    operation = operation_element(
        relay.build_search(CREDENTIALS, "75001", "FR", "PARIS", weight_kg=Decimal("2.35"))
    )
    assert service_schema("relay").validate(operation) == "recherchePointChronopostInter"
    assert operation.findtext("zipCode") == "75001"
    # [D] §2.4.2.a: service and weight (grams) mandatory, at most 25 points and 50 km.
    assert (operation.findtext("service"), operation.findtext("weight")) == ("L", "2350")
    wide = operation_element(
        relay.build_search(CREDENTIALS, "75001", "FR", limit=40, max_distance_km=99)
    )
    assert (wide.findtext("maxPointChronopost"), wide.findtext("maxDistanceSearch")) == (
        "25", "50",
    )  # fmt: skip
