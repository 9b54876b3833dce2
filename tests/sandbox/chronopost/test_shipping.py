"""Shipping through a zeep client built from the official XSD: labels, validation, recovery."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from typing import Any

import pypdf
import pypdfium2
import pytest
import zxingcpp

from chronoforce.sandbox.chronopost import ChronopostSandbox

SKYBILL = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")


def _s10_ok(number: str) -> bool:
    digits = [int(d) for d in number[2:10]]
    check = 11 - sum(d * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7))) % 11
    return int(number[10]) == {10: 0, 11: 5}.get(check, check)


def test_shipping_v5_creates_one_parcel_with_a_chronopost_skybill_number(
    ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    result = ship()
    assert result.errorCode == 0
    (parcel,) = result.resultMultiParcelValue
    assert SKYBILL.match(parcel.skybillNumber) and _s10_ok(parcel.skybillNumber)
    assert parcel.skybillNumber.endswith("FR")
    assert result.reservationNumber
    assert parcel.signaletiqueProduit == "13H" and parcel.serviceName == "Chrono 13"
    assert sandbox.live_labels() == 1
    stored = sandbox.parcel(parcel.skybillNumber)
    assert stored is not None and stored.shipper_ref == "SO-0001"


def test_pdf_label_shows_the_skybill_number_and_a_scannable_code128(
    ship: Callable[..., Any],
) -> None:
    parcel = ship(ref={"shipperRef": "SO-LABEL", "recipientRef": "CUST-9"}).resultMultiParcelValue[
        0
    ]
    pdf = parcel.pdfEtiquette
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (
        parcel.skybillNumber,
        "Chef Royale",
        "HautSide",
        "Chrono 13",
        "2.50 kg",
        "SO-LABEL",
        "CUST-9",
    ):
        assert expected in text
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=3).to_pil()
    codes = zxingcpp.read_barcodes(image)
    assert [(c.text, c.format) for c in codes] == [
        (parcel.skybillNumber, zxingcpp.BarcodeFormat.Code128)
    ]


def test_zpl_modes_answer_zpl_text(ship: Callable[..., Any]) -> None:
    parcel = ship(mode="Z2D").resultMultiParcelValue[0]
    zpl = parcel.pdfEtiquette.decode()
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    assert f"^FD{parcel.skybillNumber}^FS" in zpl


def test_multi_parcel_shipment_gets_distinct_numbers_under_one_reservation(
    ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    result = ship(parcels=3)
    numbers = [p.skybillNumber for p in result.resultMultiParcelValue]
    assert len(set(numbers)) == 3
    assert {p.reservation for p in sandbox.parcels()} == {result.reservationNumber}


def test_shipping_v4_is_still_served(ship: Callable[..., Any]) -> None:
    result = ship("shippingMultiParcelV4")
    assert result.errorCode == 0 and len(result.resultMultiParcelValue) == 1


def test_pickup_on_demand_is_reflected_with_an_esd_number(ship: Callable[..., Any]) -> None:
    esd = {
        "retrievalDateTime": "2026-06-02T09:00:00",
        "closingDateTime": "2026-06-02T18:00:00",
        "height": 10, "length": 20, "width": 15,
        "ltAImprimerParChronopost": False, "nombreDePassageMaximum": 1,
    }  # fmt: skip
    result = ship(esdValue=esd)
    assert result.ESDNumber and result.ESDFullNumber.startswith(result.ESDNumber)
    assert result.pickupDate.date().isoformat() == "2026-06-02"


def test_relay_delivery_needs_a_known_relay_point_and_is_reflected(
    ship: Callable[..., Any],
) -> None:
    missing = ship(skybill={"productCode": "86"})
    assert (missing.errorCode, missing.errorMessage) == (31, "Empty data: idRelais")
    unknown = ship(skybill={"productCode": "86"}, ref={"idRelais": "9999X"})
    assert unknown.errorCode == 33 and "idRelais" in unknown.errorMessage
    ok = ship(skybill={"productCode": "86"}, ref={"idRelais": "0601R"})
    assert ok.errorCode == 0 and ok.resultMultiParcelValue[0].serviceMark == "REL 0601R"


def test_mode_retour_says_how_the_label_travels_and_a_return_is_a_return_product(
    ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    # modeRetour 2 = "not sent" ([D] §2.3.2.b9): an ordinary outbound label, not a return.
    plain = ship(modeRetour="2").resultMultiParcelValue[0]
    assert plain.serviceMark != "RETOUR"
    stored = sandbox.parcel(plain.skybillNumber)
    assert stored is not None and not stored.is_return
    assert stored.label_data["mode_retour"] == "2"
    # A return product is sent as Chronopost documents a return: label mode PPR (returns.py).
    back = ship(skybill={"productCode": "4T"}, mode="PPR", modeRetour="2")
    assert back.resultMultiParcelValue[0].serviceMark == "RETOUR"


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"password": "000000"}, 33, "Invalid accesColis account number"),
        ({"account": 12345678}, 33, "Invalid accesColis account number"),
        ({"recipient": {"recipientName": None}}, 31, "Empty data: recipientName"),
        ({"recipient": {"recipientZipCode": None}}, 31, "Empty data: recipientZipCode"),
        (
            {"recipient": {"recipientAdress1": "x" * 39}},
            32,
            "Incorrect data length: recipientAdress1 (max 38)",
        ),
        ({"ref": {"shipperRef": "R" * 36}}, 32, "Incorrect data length: shipperRef (max 35)"),
        ({"skybill": {"productCode": "ZZ"}}, 33, "Invalid data: productCode (unknown product ZZ)"),
        (
            {"skybill": {"productCode": "44"}},
            33,
            "Invalid data: productCode (Chrono Classic does not deliver to FR)",
        ),
        (
            {"skybill": {"weight": 31.0}},
            33,
            "Invalid data: weight (0 < weight <= 30 kg for Chrono 13)",
        ),
        (
            {"skybill": {"weight": 0.0}},
            33,
            "Invalid data: weight (0 < weight <= 30 kg for Chrono 13)",
        ),
        ({"skybill": {"weightUnit": "LBS"}}, 33, "Invalid data: weightUnit (KGM)"),
        ({"skybill": {"service": "9"}}, 33, "Invalid data: service (0, 1 or 6)"),
        (
            {"recipient": {"recipientCity": "Nice"}},
            33,
            "Invalid data: recipientCity (Nice does not match postal code 06500)",
        ),
        (
            {"recipient": {"recipientZipCode": "99999"}},
            33,
            "Invalid data: recipientZipCode (99999 is not a French postal code)",
        ),
        (
            {"recipient": {"recipientCountry": "France"}},
            32,
            "Incorrect data length: recipientCountry (max 2)",
        ),
        ({"recipient": {"recipientPreAlert": 5}}, 33, "Invalid data: recipientPreAlert (0 or 22)"),
        (
            {"mode": "XML"},
            33,
            "Invalid data: mode (label mode XML is not available in the sandbox)",
        ),
        (
            {"recipient": {"recipientName2": "[scenario:nope]"}},
            33,
            "Invalid data: recipientName2 (unknown sandbox scenario nope)",
        ),
        ({"numberOfParcel": 2}, 33, "Size of skybillValue must be 1 or 2"),
    ],
)
def test_invalid_shipments_answer_chronopost_error_codes_and_create_nothing(
    ship: Callable[..., Any],
    sandbox: ChronopostSandbox,
    overrides: dict[str, Any],
    code: int,
    message: str,
) -> None:
    result = ship(**overrides)
    assert (result.errorCode, result.errorMessage) == (code, message)
    assert not result.resultMultiParcelValue
    assert sandbox.live_labels() == 0


def test_accented_city_spelling_matches_the_postal_code(ship: Callable[..., Any]) -> None:
    result = ship(recipient={"recipientCity": "la seyne sur mer", "recipientZipCode": "83500"})
    assert result.errorCode == 0


def test_international_product_ships_abroad(ship: Callable[..., Any]) -> None:
    recipient = {"recipientCountry": "DE", "recipientZipCode": "10115", "recipientCity": "Berlin"}
    goods = {"productCode": "44", "content1": "Cotton T-shirts", "customsValue": 4990}
    assert ship(recipient=recipient, skybill=goods).errorCode == 0


def test_reserved_label_is_recovered_by_reservation_number(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    created = ship(parcels=2)
    client = official("shipping")
    again = client.service.getReservedSkybill(reservationNumber=created.reservationNumber)
    client.assert_valid_response()
    assert again.errorCode == 0
    pdf = base64.b64decode(again.skybill)
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    assert [
        p.skybillNumber in page.extract_text()
        for p, page in zip(created.resultMultiParcelValue, pages)
    ] == [True, True]


def test_reserved_label_can_be_rendered_in_another_mode(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    created = ship()
    client = official("shipping")
    result = client.service.getReservedSkybillWithTypeAndMode(
        reservationNumber=created.reservationNumber, mode="ZPL300"
    )
    client.assert_valid_response()
    assert result.type == "ZPL300"
    assert base64.b64decode(result.skybill).decode().startswith("^XA")


def test_unknown_reservation_answers_error_29(official: Callable[[str], Any]) -> None:
    # [D] §2.3.3.b: 29 = reservation number not found or inconsistent (36 is a shipping error).
    client = official("shipping")
    result = client.service.getReservedSkybillWithTypeAndMode(reservationNumber="0", mode="PDF")
    client.assert_valid_response()
    assert result.errorCode == 29 and not result.skybill


def test_skybill_numbers_are_unique_and_deterministic_under_a_seed() -> None:
    first = ChronopostSandbox(seed=42)
    second = ChronopostSandbox(seed=42)
    a = first.context.skybill_numbers("XP", 500)
    assert len(set(a)) == 500
    assert second.context.skybill_numbers("XP", 500) == a
    assert ChronopostSandbox(seed=43).context.skybill_numbers("XP", 3) != a[:3]


# --- the documented per-case rules (SPEC-FACTS §2.3-§2.5; docs/sandbox-chronopost.md) ---------

_PLAIN_SKYBILL = {
    "objectType": "MAR", "productCode": "01", "service": "0", "shipHour": 10, "weight": 2.5,
    "weightUnit": "KGM", "height": 10, "length": 20, "width": 15,
}  # fmt: skip
_BERLIN = {"recipientCountry": "DE", "recipientZipCode": "10115", "recipientCity": "Berlin"}
_GOODS = {"productCode": "44", "content1": "Cotton T-shirts", "customsValue": 4990}
_ESD = {
    "retrievalDateTime": "2026-06-02T09:00:00", "closingDateTime": "2026-06-02T18:00:00",
    "height": 0, "length": 0, "width": 0,
    "ltAImprimerParChronopost": False, "nombreDePassageMaximum": 1,
}  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"skybill": {"productCode": "1"}}, 33,
         "Validation error - Field length SkybillValue.ProductCode must be equal 2"),
        ({"skybill": {"bulkNumber": "1"}}, 31, "Empty data: skybillRank"),
        ({"parcels": 2, "skybillValue": [_PLAIN_SKYBILL, _PLAIN_SKYBILL]}, 31,
         "Empty data: bulkNumber"),
        ({"parcels": 101}, 33, "Invalid data: numberOfParcel (at most 100 parcels a call)"),
        ({"parcels": 51, "esdValue": _ESD}, 33,
         "Invalid data: numberOfParcel (at most 50 parcels a call with a pickup (esdValue))"),
        ({"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R", "recipientRef": "C-1"}},
         33, "Invalid data: recipientRef (the relay point code 0601R is expected)"),
        ({"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R"},
          "recipient": {"recipientAdress1": "72 rue Reine Elisabeth"}}, 33,
         "Invalid data: recipientAdress1 (the address of relay point 0601R is expected)"),
        ({"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R"},
          "recipient": {"recipientPhone": "0493000000"}}, 33,
         "Invalid data: recipientPhone (a mobile number is expected)"),
        ({"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R"},
          "recipient": {"recipientEmail": None}}, 31, "Empty data: recipientEmail"),
        ({"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R"},
          "recipient": {"recipientName2": None}}, 31, "Empty data: recipientName2"),
        ({"recipient": _BERLIN, "skybill": {**_GOODS, "service": "6"}}, 33,
         "Invalid data: service (6 is for deliveries in France only)"),
        ({"recipient": _BERLIN, "skybill": {**_GOODS, "service": "1"}}, 33,
         "Invalid data: service (1 is for deliveries in France only)"),
        ({"recipient": _BERLIN, "skybill": {**_GOODS, "content1": None}}, 31,
         "Empty data: content1"),
        ({"recipient": _BERLIN, "skybill": {**_GOODS, "content2": "x" * 46}}, 32,
         "Incorrect data length: content2 (max 45)"),
        ({"recipient": _BERLIN, "skybill": {**_GOODS, "customsValue": None}}, 31,
         "Empty data: customsValue"),
        ({"skybill": {"insuredValue": 250.5}}, 33,
         "Invalid data: insuredValue (integer euro cents expected)"),
        ({"skybill": {"productCode": "2R"}}, 31, "Empty data: expirationDate"),
        ({"modeRetour": "5"}, 33, "Invalid data: modeRetour (1, 2, 3 or 4)"),
        ({"modeRetour": "1"}, 31, "Empty data: shipperEmail"),
        ({"recipient": {"recipientEmail": "c" * 70 + "@example.fr"}}, 32,
         "Incorrect data length: recipientEmail (max 80)"),
    ],
)  # fmt: skip
def test_documented_rules_are_refused_with_their_error_codes(
    ship: Callable[..., Any],
    sandbox: ChronopostSandbox,
    overrides: dict[str, Any],
    code: int,
    message: str,
) -> None:
    result = ship(**overrides)
    assert (result.errorCode, result.errorMessage) == (code, message)
    assert sandbox.live_labels() == 0


def test_documented_cases_are_accepted(ship: Callable[..., Any]) -> None:
    fresh = ship(skybill={"productCode": "2R"},
                 scheduledValue=[{"expirationDate": "2026-06-05T00:00:00"}])  # fmt: skip
    assert fresh.errorCode == 0
    europe = ship(recipient=_BERLIN, skybill={"productCode": "49"}, ref={"idRelais": "1011D"})
    assert (europe.errorCode, europe.errorMessage) == (31, "Empty data: content1")
    relay_eu = ship(skybill={"productCode": "49", "content1": "Books", "customsValue": 1200},
                    ref={"idRelais": "1011D"}, recipient={"recipientPhone": "+49 151 2345678"})  # fmt: skip
    assert relay_eu.errorCode == 0
    assert ship(recipient={"recipientEmail": "c" * 69 + "@example.fr"}).errorCode == 0
    assert (
        ship(skybill={"service": "6"}).errorCode == 0
        and ship(skybill={"service": "1"}).errorCode == 0
    )
