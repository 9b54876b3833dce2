"""The client against the sandbox over HTTP, on the rows of issue 18 the documents settle:
error codes read per service (errors come in the body with HTTP 200), the cancel window, and
answers that grew an element the WSDL does not know.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chronoforce.chronopost import ChronopostClient
from chronoforce.domain.errors import (
    CancelConflictError,
    CancelTooEarlyError,
    CarrierAccountError,
    CarrierRefusedError,
    CarrierUnavailableError,
    CarrierValidationError,
)
from chronoforce.domain.models import Parcel
from chronoforce.sandbox.chronopost import ChronopostSandbox

from .conftest import Calls, make_request

# --- the cancel window ([D] §2.6.4; SPEC-FACTS §9) -------------------------------------------


def test_a_cancel_in_the_first_ten_minutes_is_too_early_and_says_when_it_opens(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    made_at = sandbox.now()
    (skybill,) = client.create_shipment(make_request()).skybill_numbers
    with pytest.raises(CancelTooEarlyError) as early:
        client.cancel(skybill, created_at=made_at, now=sandbox.now())
    assert early.value.transient and early.value.code == "CHRONOPOST_2"
    assert early.value.opens_at == made_at + dt.timedelta(minutes=10)
    assert 0 < (early.value.retry_after or 0) <= 600
    assert sandbox.live_labels() == 1
    sandbox.advance_clock(dt.timedelta(minutes=10))
    assert client.cancel(skybill, created_at=made_at, now=sandbox.now()) == 0
    assert sandbox.live_labels() == 0


def test_a_parcel_chronopost_has_taken_over_cannot_be_cancelled_a_conflict(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    made_at = sandbox.now()
    (skybill,) = client.create_shipment(make_request()).skybill_numbers
    sandbox.advance_clock(dt.timedelta(hours=5))  # DB: handed over to Chronopost
    with pytest.raises(CancelConflictError) as taken:
        client.cancel(skybill, created_at=made_at, now=sandbox.now())
    assert taken.value.code == "CHRONOPOST_3" and "taken over" in taken.value.message
    assert not isinstance(taken.value, CarrierAccountError)  # cancel's 3 is not the account
    assert "<errorCode>3</errorCode>" in taken.value.response_payload


def test_errors_come_in_the_body_with_http_200(client: ChronopostClient, calls: Calls) -> None:
    with pytest.raises(CarrierAccountError):
        client.cancel("XP000000000FR", created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    assert calls[-1].http_status == 200 and calls[-1].error_code == "CHRONOPOST_2"


# --- error codes per service, as the sandbox answers them ------------------------------------


def test_relay_601_no_point_found_is_an_empty_answer_not_an_error(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    sandbox.set_faults(
        kind="business_error", error_code=601, error_message="No relay point found",
        operations=["recherchePointChronopostInter"],
    )  # fmt: skip
    assert client.relay_points("75001") == ()


def test_relay_700_system_error_is_retried_and_1500_is_the_account(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    sandbox.set_faults(kind="business_error", error_code=700, error_message="System error")
    with pytest.raises(CarrierUnavailableError) as system:
        client.relay_points("75001")
    assert system.value.transient and system.value.code == "CHRONOPOST_700"
    sandbox.set_faults(kind="business_error", error_code=1500, error_message="Wrong contract")
    with pytest.raises(CarrierAccountError):
        client.relay_points("75001")


def test_the_relay_search_answers_its_own_system_error_700(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    sandbox.set_faults(kind="system_error")
    with pytest.raises(CarrierUnavailableError) as caught:
        client.relay_points("75001")
    assert caught.value.code == "CHRONOPOST_700"


def test_shipping_30_is_the_contract_and_33_is_told_apart_by_its_message(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    faults = {"kind": "business_error", "operations": ["shippingMultiParcelV5"]}
    sandbox.set_faults(**faults, error_code=30, error_message="Invalid contract number")
    with pytest.raises(CarrierAccountError):
        client.create_shipment(make_request())
    sandbox.set_faults(**faults, error_code=33, error_message="Invalid accesColis password")
    with pytest.raises(CarrierAccountError):
        client.create_shipment(make_request())
    message = "Validation error - Field length SkybillValue.ProductCode must be equal 2"
    sandbox.set_faults(**faults, error_code=33, error_message=message)
    with pytest.raises(CarrierValidationError) as data:
        client.create_shipment(make_request())
    assert type(data.value) is CarrierValidationError
    assert data.value.field == "SkybillValue.ProductCode"


def test_a_business_rule_refusal_is_a_clear_refusal_not_bad_data(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    sandbox.set_faults(
        kind="business_error", error_code=4,
        error_message="Invalid product code for this destination", operations=["quickCost"],
    )  # fmt: skip
    with pytest.raises(CarrierRefusedError) as refused:
        client.quick_cost("44", "75001", "06500", Decimal("2"))
    assert "destination" in refused.value.message and refused.value.field == ""


# --- answers with an element the WSDL does not know --------------------------------------------


def test_answers_with_an_unexpected_element_are_read_leniently(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    made = client.create_shipment(make_request(order_number="SO-EXTRA-1"))
    sandbox.advance_clock(dt.timedelta(minutes=10))
    sandbox.set_faults(kind="extra_element")
    assert client.relay_points("75001")  # zeep-read
    assert client.quick_cost("01", "75001", "06500", Decimal("2")).amount_incl_vat > 0
    assert client.calculate_products("75001", "06500", Parcel(Decimal("2")))
    assert [p.skybill_number for p in client.find_by_reference("SO-EXTRA-1")] == list(
        made.skybill_numbers
    )
    assert client.track(made.skybill_numbers[0])  # the fast lxml path
    assert client.create_shipment(make_request(order_number="SO-EXTRA-2")).skybill_numbers
    assert client.cancel(made.skybill_numbers[0]) == 0
    assert any(r.injected == "extra_element" for r in sandbox.requests())
