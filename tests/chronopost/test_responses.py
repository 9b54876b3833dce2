"""The adapter reads Chronopost's real-shaped answers (reference samples): successes become
domain objects, errorCodes become the right typed errors (every code of the reference table),
truncated answers are transient and answers of the wrong shape fail once, permanently.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from chronoforce.chronopost import ERROR_CODES, error_for, rates, shipping, tracking
from chronoforce.chronopost.codes import ERROR_TABLE, KINDS, OPERATION_SERVICES, cancel_error_for
from chronoforce.domain.errors import (
    CancelConflictError,
    CancelTooEarlyError,
    CarrierAccountError,
    CarrierAnswerError,
    CarrierRefusedError,
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


def test_cancel_error_2_after_the_window_is_a_parcel_of_another_contract(sample: Sample) -> None:
    # [D] §2.6.4.b: 2 = the parcel does not belong to the contract (error_codes.csv: account)
    made = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    answer = sample("shipment_ShipmentCancelErrorResponse")
    with pytest.raises(CarrierAccountError) as caught:
        tracking.parse_cancel(answer, created_at=made, now=made + dt.timedelta(hours=2))
    assert caught.value.code == "CHRONOPOST_2"
    # Without the label's age it may be "not yet in tracking" ([S] §3.14.5): retried, not final.
    with pytest.raises(CancelTooEarlyError):
        tracking.parse_cancel(answer)


def test_cancel_error_2_or_3_inside_the_window_is_too_early_and_says_when_it_opens(
    sample: Sample,
) -> None:
    made = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    now = made + dt.timedelta(minutes=3)
    with pytest.raises(CancelTooEarlyError) as caught:
        tracking.parse_cancel(
            sample("shipment_ShipmentCancelErrorResponse"), created_at=made, now=now
        )
    assert caught.value.transient and caught.value.opens_at == made + dt.timedelta(minutes=10)
    assert caught.value.retry_after == 7 * 60
    late = cancel_error_for(3, "x", "cancelSkybill", created_at=made, now=now)
    assert isinstance(late, CancelTooEarlyError)


def test_cancel_error_3_is_a_conflict_not_an_account_error() -> None:
    made = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    later = cancel_error_for(
        3, "", "cancelSkybill", created_at=made, now=made + dt.timedelta(hours=6)
    )
    assert isinstance(later, CancelConflictError) and not isinstance(later, CarrierAccountError)
    assert "taken over" in later.message
    assert isinstance(error_for(3, "", "cancelSkybill"), CancelConflictError)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"<html><body>502 Bad Gateway", "CARRIER_BAD_XML"),
        (
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>boom</faultstring></soap:Fault></soap:Body></soap:Envelope>',
            "CARRIER_SOAP_FAULT",
        ),
    ],
    ids=["not-xml", "soap-fault"],
)
def test_truncated_answers_and_faults_are_transient_errors(content: bytes, code: str) -> None:
    with pytest.raises(CarrierUnavailableError) as caught:
        tracking.parse_track(content, "XP1")
    assert caught.value.code == code


def test_an_answer_of_the_wrong_shape_fails_once_permanently() -> None:
    wrong = b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x/></soap:Body></soap:Envelope>'
    with pytest.raises(CarrierAnswerError) as caught:
        tracking.parse_track(wrong, "XP1")
    assert not caught.value.transient and caught.value.code == "CARRIER_BAD_ANSWER"


def test_an_unexpected_element_in_a_zeep_read_answer_is_ignored(sample: Sample) -> None:
    answer = sample("rate_RateResponse")
    extra = answer.replace(b"<errorCode>", b"<newField>surprise</newField><errorCode>", 1)
    assert extra != answer
    assert rates.parse_calculate_products(extra) == rates.parse_calculate_products(answer)


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
    assert isinstance(error_for(3, "invalid account or password", "quickCost"), CarrierAccountError)
    assert isinstance(error_for(33, "Invalid accesColis account number"), CarrierAccountError)
    invalid = error_for(33, "Invalid data: recipientZipCode")
    assert type(invalid) is CarrierValidationError
    assert type(error_for(32, "Incorrect data length: shipperName")) is CarrierValidationError
    unknown = error_for(999, "")
    assert type(unknown) is CarrierValidationError and unknown.code == "CHRONOPOST_999"
    assert all(entry.source for entry in ERROR_CODES.values())


# --- the reference table -------------------------------------------------------------------

# error_codes.csv services the project calls, and one operation of each (slots: not called).
CALLED = {
    "shipping": "shippingMultiParcelV5",
    "esd": "creerEnlevementNational",
    "relay": "recherchePointChronopost",
    "quickcost": "quickCost",
    "tracking": "trackSkybillV2",
    "cancel": "cancelSkybill",
    "pod": "searchPOD",
}


def reference_errors(reference_dir: Path) -> list[dict[str, str]]:
    with (reference_dir / "chronopost" / "error_codes.csv").open(encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["code"].lstrip("-").isdigit()]


def test_every_documented_error_code_of_a_called_service_is_in_the_table_with_its_class(
    reference_dir: Path,
) -> None:
    ours = {(e.service, e.code, e.kind) for e in ERROR_TABLE}
    rows = [r for r in reference_errors(reference_dir) if r["service"] in CALLED]
    assert len(rows) > 90
    missing = [
        (r["service"], r["code"], r["kind"])
        for r in rows
        if (r["service"], int(r["code"]), r["kind"]) not in ours
    ]
    assert missing == []
    assert {s for s in OPERATION_SERVICES.values()} == set(CALLED)
    assert all(e.source for e in ERROR_TABLE)


def test_each_documented_code_becomes_its_class_for_its_service(reference_dir: Path) -> None:
    for row in reference_errors(reference_dir):
        if row["service"] not in CALLED:
            continue
        code, operation = int(row["code"]), CALLED[row["service"]]
        if (row["service"], code) in (("relay", 601),):
            continue  # an empty answer, not an error (next test)
        default = ERROR_CODES[(row["service"], code)]
        error = error_for(code, "", operation)
        assert isinstance(error, KINDS[default.kind]), row
        assert error.code == f"CHRONOPOST_{code}"


def test_code_33_tells_bad_credentials_from_bad_data_by_its_message() -> None:
    for text in ("Invalid accesColis account number", "Invalid accesColis password",
                 "Invalid identWebPro password"):  # fmt: skip
        assert isinstance(error_for(33, text, "shippingMultiParcelV5"), CarrierAccountError)
    data = error_for(
        33, "Validation error - Field length SkybillValue.Service must be equal 3",
        "shippingMultiParcelV5",
    )  # fmt: skip
    assert type(data) is CarrierValidationError and data.field == "SkybillValue.Service"


def test_shipping_30_is_a_contract_error_and_35_38_are_refusals_not_bad_data() -> None:
    assert isinstance(error_for(30, "Invalid contract number"), CarrierAccountError)
    for code in (35, 38):
        refused = error_for(code, "Code Service GeoPost not found")
        assert isinstance(refused, CarrierRefusedError) and refused.field == ""


def test_relay_700_is_transient_and_1500_is_the_account() -> None:
    assert isinstance(error_for(700, "System error", "recherchePointChronopost"),
                      CarrierUnavailableError)  # fmt: skip
    assert isinstance(error_for(1500, "", "recherchePointChronopost"), CarrierAccountError)
