"""ChronopostClient end to end against the Chronopost sandbox on loopback: labels, rates,
tracking, cancel, relay search, recovery by reference, and every error path typed, with the
call's payloads attached and the password nowhere.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest

from chronoforce.chronopost import CarrierCall, ChronopostClient
from chronoforce.domain.errors import (
    CancelTooEarlyError,
    CarrierAccountError,
    CarrierTimeoutError,
    CarrierUnavailableError,
    CarrierValidationError,
    ChronoforceError,
)
from chronoforce.domain.models import Address, LabelFormat, Parcel, Pickup, ShipmentOptions
from chronoforce.sandbox.chronopost import DEMO_PASSWORD, ChronopostSandbox

from .conftest import Calls, client_for, make_request

WRONG_PASSWORD = "424242"


def assert_payloads_without_password(error: ChronoforceError, *secrets: str) -> None:
    assert "<password>" in error.request_payload or "accountNumber" in error.request_payload
    for secret in (DEMO_PASSWORD, *secrets):
        assert secret not in error.request_payload
        assert secret not in error.response_payload


def test_pdf_label_for_one_parcel(client: ChronopostClient, sandbox: ChronopostSandbox) -> None:
    result = client.create_shipment(make_request("01"))
    (label,) = result.labels
    assert label.data.startswith(b"%PDF") and label.label_format is LabelFormat.PDF
    assert result.reservation_number
    parcel = sandbox.parcel(label.skybill_number)
    assert parcel is not None and parcel.shipper_ref == "SO-000123"


def test_zpl_labels_for_three_parcels(client: ChronopostClient, sandbox: ChronopostSandbox) -> None:
    options = ShipmentOptions(label_format=LabelFormat.Z2D)
    result = client.create_shipment(make_request("16", parcels=3, options=options))
    assert len(set(result.skybill_numbers)) == 3
    assert all(label.data.startswith(b"^XA") for label in result.labels)
    assert sandbox.live_labels() == 3


def test_relay_delivery_and_saturday_and_pickup_are_accepted(client: ChronopostClient) -> None:
    pickup = Pickup(dt.date(2024, 3, 4), dt.time(14), dt.time(18))
    near = Address("Claire Martin", "", "150 rue de Rivoli", "", "75001", "PARIS", "FR")
    point = client.relay_point("2004R", near)
    assert point is not None and point.name == "LIBRAIRIE RIVOLI"
    relay = client.create_shipment(
        make_request("86", options=ShipmentOptions(relay_point_id="2004R", relay_point=point))
    )
    booked = client.create_shipment(
        make_request("01", options=ShipmentOptions(saturday_delivery=True, pickup=pickup))
    )
    assert relay.labels[0].skybill_number
    assert booked.pickup_number and booked.pickup_date == dt.datetime(2024, 3, 4, 14)


def test_reserved_label_is_fetched_again_in_another_format(client: ChronopostClient) -> None:
    result = client.create_shipment(make_request(parcels=3))
    again = client.reserved_label(result.reservation_number, LabelFormat.ZPL300)
    assert again.data.count(b"^XA") == 3
    assert again.reservation_number == result.reservation_number


def test_tracking_follows_the_parcel_to_delivery(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    skybill = client.create_shipment(make_request()).labels[0].skybill_number
    assert [e.code for e in client.track(skybill)] == ["DC"]
    sandbox.advance_clock(dt.timedelta(days=4))
    events = client.track(skybill)
    assert events[-1].code == "D" and events[-1].time.tzinfo is not None
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_unknown_parcel_has_no_events(client: ChronopostClient) -> None:
    assert client.track("XP000000000FR") == ()


def test_recovery_finds_parcels_by_order_number_and_sees_cancellation(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    created = client.create_shipment(make_request(parcels=3, order_number="SO-RECOVER-1"))
    found = client.find_by_reference("SO-RECOVER-1")
    assert {p.skybill_number for p in found} == set(created.skybill_numbers)
    sandbox.advance_clock(dt.timedelta(minutes=10))  # cancelling opens 10 min after creation
    assert client.cancel(created.skybill_numbers[0]) == 0
    after = {p.skybill_number: p.cancelled for p in client.find_by_reference("SO-RECOVER-1")}
    assert after[created.skybill_numbers[0]] and not after[created.skybill_numbers[1]]
    assert sandbox.live_labels() == 2
    assert client.find_by_reference("SO-NOTHING") == ()


def test_cancelling_an_unknown_parcel_is_error_2_with_payloads(client: ChronopostClient) -> None:
    # Without the label's age, 2 may be "not yet in tracking" ([S] §3.14.5): retried, not final.
    with pytest.raises(CancelTooEarlyError):
        client.cancel("XP000000000FR")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with pytest.raises(CarrierAccountError) as caught:  # [D] §2.6.4.b: not this contract
        client.cancel("XP000000000FR", created_at=long_ago)
    assert caught.value.code == "CHRONOPOST_2" and caught.value.operation == "cancelSkybill"
    assert "XP000000000FR" in caught.value.request_payload
    assert "<errorCode>2</errorCode>" in caught.value.response_payload
    assert_payloads_without_password(caught.value)


def test_quick_cost_and_calculate_products_give_live_rates(client: ChronopostClient) -> None:
    rate = client.quick_cost("01", "75001", "06500", Decimal("2"))
    assert rate.product_code == "01" and rate.amount_incl_vat > rate.amount_excl_vat > 0
    assert rate.vat == rate.amount_incl_vat - rate.amount_excl_vat
    products = client.calculate_products(
        "75001", "06500", Parcel(Decimal("2")), arrival_city="MENTON", ship_date=dt.date(2024, 3, 4)
    )
    assert {"01", "16"} <= {r.product_code for r in products}


def test_relay_search_returns_nearby_points_with_hours(client: ChronopostClient) -> None:
    points = client.relay_points("75001", "FR", "PARIS", limit=3)
    assert 1 <= len(points) <= 3
    first = points[0]
    assert first.id == "2004R" and first.address.postal_code == "75001"
    assert first.opening_hours[0].startswith("Mon ") and first.distance_m is not None


def test_wrong_password_on_labels_is_an_account_error_without_any_password(
    sandbox_url: str,
) -> None:
    with (
        client_for(sandbox_url, WRONG_PASSWORD) as wrong,
        pytest.raises(CarrierAccountError) as caught,
    ):
        wrong.create_shipment(make_request())
    assert caught.value.code == "CHRONOPOST_33"
    assert "<password>***</password>" in caught.value.request_payload
    assert_payloads_without_password(caught.value, WRONG_PASSWORD)


def test_wrong_password_on_rates_answers_error_code_3(sandbox_url: str) -> None:
    with (
        client_for(sandbox_url, WRONG_PASSWORD) as wrong,
        pytest.raises(CarrierAccountError) as caught,
    ):
        wrong.quick_cost("01", "75001", "06500", Decimal("2"))
    assert caught.value.code == "CHRONOPOST_3"
    assert_payloads_without_password(caught.value, WRONG_PASSWORD)


def test_refused_data_is_a_validation_error_with_chronopost_message(
    client: ChronopostClient,
) -> None:
    with pytest.raises(CarrierValidationError) as caught:
        client.create_shipment(make_request("44", "FR"))  # Chrono Classic does not serve France
    assert caught.value.code == "CHRONOPOST_33" and "productCode" in caught.value.message
    assert_payloads_without_password(caught.value)


def test_injected_timeout_raises_timeout_error_within_the_read_timeout(
    sandbox: ChronopostSandbox, sandbox_url: str
) -> None:
    sandbox.set_faults(kind="timeout", hang_seconds=5.0)
    with client_for(sandbox_url, read_timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(CarrierTimeoutError) as caught:
            impatient.create_shipment(make_request())
        assert time.monotonic() - started < 2.0
        assert caught.value.transient and caught.value.response_payload == ""
        assert_payloads_without_password(caught.value)
        assert impatient.last_call is not None and impatient.last_call.http_status == 0


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("http_500", "CARRIER_HTTP_500"),
        ("http_503", "CARRIER_HTTP_503"),
        ("soap_fault", "CARRIER_SOAP_FAULT"),
        ("malformed", "CARRIER_BAD_XML"),
        ("system_error", "CHRONOPOST_1"),
    ],
)
def test_server_failures_are_transient_unavailable_errors(
    client: ChronopostClient, sandbox: ChronopostSandbox, kind: str, code: str
) -> None:
    sandbox.set_faults(kind=kind)
    with pytest.raises(CarrierUnavailableError) as caught:
        client.create_shipment(make_request())
    assert caught.value.code == code and caught.value.transient
    assert_payloads_without_password(caught.value)


def test_every_call_is_reported_once_redacted_with_status_and_duration(
    client: ChronopostClient, calls: Calls
) -> None:
    client.create_shipment(make_request())
    with pytest.raises(CarrierAccountError):
        client.cancel("XP000000000FR", created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert [c.operation for c in calls] == ["shippingMultiParcelV5", "cancelSkybill"]
    assert all(isinstance(c, CarrierCall) and c.http_status == 200 for c in calls)
    assert [c.error_code for c in calls] == ["", "CHRONOPOST_2"]
    assert all(0 < c.duration_s < 5 for c in calls)
    assert all(DEMO_PASSWORD not in c.request_xml + c.response_xml for c in calls)
    assert client.last_call is calls[-1]


def test_client_is_built_from_settings_with_the_secret_password(sandbox_url: str) -> None:
    from chronoforce.config import ChronopostConfig, Secrets, Settings

    settings = Settings(
        chronopost=ChronopostConfig(base_url=sandbox_url, read_timeout_s=3.0),
        secrets=Secrets(chronopost_password=DEMO_PASSWORD),
    )
    with ChronopostClient.from_settings(settings) as client:
        assert client.endpoint.read_timeout == 3.0
        assert DEMO_PASSWORD not in repr(client.credentials)
        assert client.relay_points("75001")
