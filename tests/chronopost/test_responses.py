"""The adapter reads Chronopost's real-shaped answers (reference samples): successes become
domain objects, errorCodes become the right typed errors, broken answers are transient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from chronoforce.chronopost import ERROR_CODES, error_for, rates, shipping, tracking
from chronoforce.domain.errors import (
    CarrierAccountError,
    CarrierUnavailableError,
    CarrierValidationError,
)
from chronoforce.domain.models import LabelFormat

Sample = Callable[[str], bytes]


@pytest.fixture()
def sample(reference_dir: Path) -> Sample:
    def read(name: str) -> bytes:
        return (reference_dir / "chronopost" / "samples" / f"karrio_{name}.xml").read_bytes()

    return read


def test_shipment_response_gives_skybill_number_and_label_bytes(sample: Sample) -> None:
    result = shipping.parse_shipment(sample("shipment_ShipmentResponse"), LabelFormat.PDF)
    assert result.skybill_numbers == ("XP696982485FR",)
    assert result.labels[0].data.startswith(b"\x89PNG")  # the sample's label is a tiny PNG
    assert result.labels[0].label_format is LabelFormat.PDF
    assert result.pickup_number == "" and result.pickup_date is None


def test_zeep_decodes_the_shipment_response_to_the_same_result(sample: Sample) -> None:
    content = sample("shipment_ShipmentResponse")
    assert shipping.parse_shipment_zeep(content, LabelFormat.PDF) == shipping.parse_shipment(
        content, LabelFormat.PDF
    )


def test_shipment_error_33_on_the_account_is_an_account_error(sample: Sample) -> None:
    with pytest.raises(CarrierAccountError) as caught:
        shipping.parse_shipment(sample("shipment_ShipmentErrorResponse"), LabelFormat.PDF)
    assert caught.value.code == "CHRONOPOST_33"
    assert "Invalid accesColis account number" in caught.value.message
    assert caught.value.operation == "shippingMultiParcelV5"


def test_tracking_response_gives_every_event_in_order_with_aware_times(sample: Sample) -> None:
    events = tracking.parse_track(sample("tracking_TrackingResponse"), "89108749065090")
    assert [e.code for e in events] == ["DC", "DB", "DY", "SC", "TS", "TS", "SD", "TA", "D"]
    delivered = events[-1]
    assert delivered.time == dt.datetime(2022, 6, 22, 6, 30, tzinfo=dt.UTC)
    assert (delivered.place, delivered.postal_code) == ("ARRAS CHRONOPOST", "62223")
    assert delivered.high_priority and not events[0].high_priority
    assert {e.skybill_number for e in events} == {"89108749065090"}


def test_zeep_decodes_the_tracking_response_to_the_same_events(sample: Sample) -> None:
    content = sample("tracking_TrackingResponse")
    assert tracking.parse_track_zeep(content, "x") == tracking.parse_track(content, "x")


def test_tracking_system_error_1_is_transient(sample: Sample) -> None:
    with pytest.raises(CarrierUnavailableError) as caught:
        tracking.parse_track(sample("tracking_ErrorResponse"), "89108749065090")
    assert caught.value.code == "CHRONOPOST_1" and caught.value.transient


def test_rates_response_lists_every_product_with_amounts_in_cents(sample: Sample) -> None:
    found = rates.parse_calculate_products(sample("rate_RateResponse"))
    assert len(found) == 13
    by_code = {rate.product_code: rate for rate in found}
    assert by_code["00"].amount_excl_vat == Decimal("6.00")
    assert by_code["00"].amount_incl_vat == Decimal("7.20")
    assert by_code["00"].vat == Decimal("1.20")


def test_rates_error_3_wrong_password_is_an_account_error(sample: Sample) -> None:
    with pytest.raises(CarrierAccountError) as caught:
        rates.parse_calculate_products(sample("rate_RateErrorResponse"))
    assert caught.value.code == "CHRONOPOST_3"


def test_cancel_error_2_parcel_not_ours_is_a_validation_error(sample: Sample) -> None:
    with pytest.raises(CarrierValidationError) as caught:
        tracking.parse_cancel(sample("shipment_ShipmentCancelErrorResponse"))
    assert caught.value.code == "CHRONOPOST_2"
    assert not isinstance(caught.value, CarrierAccountError)  # its message says "account"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"<html><body>502 Bad Gateway", "CARRIER_BAD_XML"),
        (
            b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x/></soap:Body></soap:Envelope>',
            "CARRIER_BAD_XML",
        ),
        (
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>boom</faultstring></soap:Fault></soap:Body></soap:Envelope>',
            "CARRIER_SOAP_FAULT",
        ),
    ],
    ids=["not-xml", "unexpected-element", "soap-fault"],
)
def test_broken_answers_are_transient_errors(content: bytes, code: str) -> None:
    with pytest.raises(CarrierUnavailableError) as caught:
        tracking.parse_track(content, "XP1")
    assert caught.value.code == code


def test_entities_in_an_answer_are_not_expanded() -> None:
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<ns2:trackSkybillV2Response xmlns:ns2="http://cxf.tracking.soap.chronopost.fr/"><return>'
        b"<errorCode>0</errorCode><listEventInfoComp><events><code>DC</code>"
        b"<eventDate>2022-06-19T13:47:53+02:00</eventDate><eventLabel>&e;</eventLabel></events>"
        b"</listEventInfoComp></return></ns2:trackSkybillV2Response></soap:Body></soap:Envelope>"
    )
    (event,) = tracking.parse_track(hostile, "XP1")
    assert "root:" not in event.label


def test_error_code_table_sorts_validation_account_and_transient() -> None:
    assert isinstance(error_for(1, "System Error"), CarrierUnavailableError)
    assert isinstance(error_for(3, "invalid account or password"), CarrierAccountError)
    assert isinstance(error_for(33, "Invalid accesColis account number"), CarrierAccountError)
    invalid = error_for(33, "Invalid data: recipientZipCode")
    assert type(invalid) is CarrierValidationError
    assert type(error_for(32, "Incorrect data length: shipperName")) is CarrierValidationError
    unknown = error_for(999, "")
    assert type(unknown) is CarrierValidationError and unknown.code == "CHRONOPOST_999"
    assert all(entry.source for entry in ERROR_CODES.values())
