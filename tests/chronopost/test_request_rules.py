"""Every case of the documents' §2.5 (home B2C/B2B, relay France and Europe, Shop2Shop,
international EU and non-EU, Saturday, Monday, multi-parcel with and without pickup,
Chronofresh, money) builds a request that fits the official XSD and meets the per-case rules,
checked here independently of the builder (SPEC-FACTS §2.3-§2.5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal

import pytest
import xmlschema
from lxml import etree

from chronoforce.chronopost import shipping
from chronoforce.domain.models import (
    Address,
    LabelFormat,
    ObjectType,
    Parcel,
    Pickup,
    RelayPoint,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.products import product_info

from .conftest import CREDENTIALS, assert_valid, make_request

RELAY_FR = RelayPoint(
    "0601R", "TABAC DU PORT", Address("TABAC DU PORT", "", "1 QUAI BONAPARTE", "", "06500",
                                      "MENTON", "FR"),
)  # fmt: skip
RELAY_BE = RelayPoint(
    "1001B", "LIBRAIRIE DE LA LOI", Address("LIBRAIRIE DE LA LOI", "", "RUE DE LA LOI 20", "",
                                            "1000", "BRUXELLES", "BE"),
)  # fmt: skip
PICKUP = Pickup(dt.date(2024, 3, 4), dt.time(14, 30), dt.time(18, 0), "Quai 3")
GOODS = ShipmentOptions(contents=("Cotton T-shirts", "Leather belt"), declared_value=Decimal("80"))
COMPANY = Address(
    "Schmidt GmbH", "Anna Schmidt", "Invalidenstrasse 117", "", "10115", "BERLIN", "DE"
)


def _parcels(request: ShipmentRequest, count: int) -> ShipmentRequest:
    return dataclasses.replace(request, parcels=(Parcel(Decimal("1.5")),) * count)


CASES: dict[str, ShipmentRequest] = {
    "home-b2c": make_request("01"),
    "home-b2b": make_request("16", recipient=Address("Dupont SARL", "Marc Dupont",
                                                     "3 rue Neuve", "", "06500", "MENTON", "FR")),
    "monaco": make_request("01", "MC"),
    "relay-france": make_request("86", options=ShipmentOptions(relay_point=RELAY_FR)),
    "relay-europe": make_request("49", "BE", options=dataclasses.replace(
        GOODS, relay_point=RELAY_BE)),
    "shop2shop-france": make_request("5E", options=ShipmentOptions(
        relay_point=RELAY_FR, label_format=LabelFormat.PPR)),
    "shop2shop-europe": make_request("5E", "BE", options=dataclasses.replace(
        GOODS, relay_point=RELAY_BE, label_format=LabelFormat.PPR)),
    "international-eu-goods": make_request("44", "DE", options=GOODS),
    "international-eu-company": make_request("17", "DE", options=GOODS, recipient=COMPANY),
    "international-eu-documents": make_request("17", "BE", options=ShipmentOptions(
        object_type=ObjectType.DOCUMENTS, contents=("Signed contracts",))),
    "international-world": make_request("17", "US", 3, options=GOODS),
    "international-uk": make_request("17", "GB", options=GOODS),
    "saturday": make_request("01", options=ShipmentOptions(saturday_delivery=True)),
    "monday": make_request("16", options=ShipmentOptions(monday_delivery=True)),
    "multi-parcel": make_request("01", parcels=3),
    "multi-parcel-100": _parcels(make_request("01"), 100),
    "pickup-50": _parcels(make_request("01", options=ShipmentOptions(pickup=PICKUP)), 50),
    "chronofresh": make_request("2R", options=ShipmentOptions(expiry_date=dt.date(2024, 3, 8))),
    "insured-cod": make_request("01", options=ShipmentOptions(
        insured_value=Decimal("89.20"), cod_value=Decimal("12.50"))),
    "zpl": make_request("02", options=ShipmentOptions(label_format=LabelFormat.ZPL300)),
}  # fmt: skip
_CENTS = re.compile(r"^\d+$")
_RELAY_ID = re.compile(r"^[0-9]{4}[A-Za-z]$")  # [D] §2.3.2.b6


def check_rules(operation: etree._Element) -> None:
    """SPEC-FACTS §2.3-§2.5, read straight from the request."""
    skybills = operation.findall("skybillValue")
    count = len(skybills)
    assert operation.findtext("numberOfParcel") == str(count)
    pickup = operation.find("esdValue") is not None
    assert 1 <= count <= (50 if pickup else 100)
    assert len(operation.findall("recipientValue")) == 1  # one recipient, multiParcel or not
    assert operation.findtext("multiParcel") == ("Y" if count > 1 else "N")
    assert operation.findtext("modeRetour") == "2"  # we print our labels
    assert operation.findtext("headerValue/idEmit") == "CHRFR"
    recipient = operation.find("recipientValue")
    assert recipient is not None
    country = recipient.findtext("recipientCountry")
    abroad = country not in ("FR", "MC")
    for rank, skybill in enumerate(skybills, start=1):
        code = skybill.findtext("productCode") or ""
        product = product_info(code)
        assert len(code) == 2 and product is not None
        assert (skybill.findtext("bulkNumber"), skybill.findtext("skybillRank")) == (
            str(count), str(rank),
        )  # fmt: skip
        assert skybill.findtext("evtCode") == "DC" and skybill.findtext("weightUnit") == "KGM"
        assert Decimal(skybill.findtext("weight") or "0") <= product.max_weight_kg
        for money in ("insuredValue", "codValue", "customsValue"):
            value = skybill.findtext(money)
            assert value is None or _CENTS.match(value), f"{money} {value} is not in cents"
        service = skybill.findtext("service")
        if abroad:
            assert service not in ("1", "6"), "Saturday and Monday are for France only"
            contents = [skybill.findtext(f"content{i}") for i in range(1, 6)]
            assert contents[0], "international parcels describe their contents"
            assert all(len(c) <= 45 for c in contents if c)
            if skybill.findtext("objectType") == "MAR" and rank == 1:
                assert skybill.findtext("customsValue")
        if product.expiry_required:
            assert operation.findtext("scheduledValue/expirationDate")
        if product.relay:
            refs = operation.find("refValue")
            assert refs is not None and count == 1  # no multi-parcel to a relay point
            assert _RELAY_ID.match(refs.findtext("idRelais") or "")
            assert refs.findtext("idRelais") == refs.findtext("recipientRef")
            assert recipient.findtext("recipientName2"), "who collects"
            assert recipient.findtext("recipientEmail") and recipient.findtext("recipientPhone")


@pytest.mark.parametrize("case", CASES)
def test_every_documented_case_fits_the_xsd_and_the_rules(
    official_schemas: dict[str, xmlschema.XMLSchema], case: str
) -> None:
    operation = assert_valid(
        official_schemas["shipping"], shipping.build_shipment(CASES[case], CREDENTIALS)
    )
    check_rules(operation)


def test_the_relay_recipient_is_the_point_and_shop2shop_europe_is_service_345_a15() -> None:
    envelope = shipping.build_shipment(CASES["shop2shop-europe"], CREDENTIALS)
    operation = etree.fromstring(envelope).find(".//{*}shippingMultiParcelV5")
    assert operation is not None
    assert operation.findtext("recipientValue/recipientName") == "LIBRAIRIE DE LA LOI"
    assert operation.findtext("recipientValue/recipientAdress1") == "RUE DE LA LOI 20"
    assert operation.findtext("recipientValue/recipientName2") == "Jan Peeters"
    assert (operation.findtext("skybillValue/service"), operation.findtext("skybillValue/as")) == (
        "345", "A15",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_parcels(make_request("01"), 101), "parcels"),
        (_parcels(make_request("01", options=ShipmentOptions(pickup=PICKUP)), 51), "parcels"),
        (make_request("86"), "relay_point_id"),
        (make_request("86", options=ShipmentOptions(relay_point_id="0601R")), "relay_point_id"),
        (make_request("86", options=ShipmentOptions(relay_point=RELAY_FR, saturday_delivery=True,
                                                       monday_delivery=True)), "saturday_delivery"),
        (make_request("44", "DE", options=dataclasses.replace(GOODS, contents=("a",) * 6)),
         "contents"),
        (make_request("2S"), "expiry_date"),
        (make_request("17", options=ShipmentOptions(saturday_delivery=True)), "saturday_delivery"),
    ],
)  # fmt: skip
def test_requests_the_documents_forbid_are_refused_naming_the_field(
    request_: ShipmentRequest, field: str
) -> None:
    from chronoforce.domain.errors import CarrierValidationError

    with pytest.raises(CarrierValidationError) as refused:
        shipping.build_shipment(request_, CREDENTIALS)
    assert refused.value.field == field


@pytest.mark.parametrize("case", CASES)
def test_every_documented_case_is_what_zeep_writes_from_our_wsdl(case: str) -> None:
    def c14n(envelope: bytes) -> str:
        return etree.canonicalize(
            etree.fromstring(envelope), strip_text=True, rewrite_prefixes=True
        )

    request = CASES[case]
    assert c14n(shipping.build_shipment(request, CREDENTIALS)) == c14n(
        shipping.build_shipment_zeep(request, CREDENTIALS)
    )
