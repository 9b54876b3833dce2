"""trackSearch through the official-schema client over HTTP: the window, the parcel states, the
sub-accounts, the filters, the sandbox clock, and never another account's parcels (issue 21)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from chronoforce.sandbox.chronopost import ChronopostSandbox

DEMO = {"accountNumber": "19869502", "password": "255562"}


def _skybill(ship: Callable[..., Any], **overrides: Any) -> str:
    result = ship(**overrides)
    assert result.errorCode == 0, result.errorMessage
    return str(result.resultMultiParcelValue[0].skybillNumber)


def _search(official: Callable[[str], Any], sandbox: ChronopostSandbox, **overrides: Any) -> Any:
    today = sandbox.now().strftime("%d/%m/%Y")
    values = {
        **DEMO,
        "language": "en_GB",
        "dateDeposit": today,
        "dateEndDeposit": today,
        "parcelState": "ANY",
        "serviceCode": "ALL",
        **overrides,
    }
    client = official("tracking")
    result = client.service.trackSearch(**values)
    client.assert_valid_response()
    return result


def _found(result: Any) -> dict[str, Any]:
    assert result.errorCode == 0, result.errorMessage
    return {p.skybillNumber: p for p in result.listInfosPOD or []}


def test_every_parcel_of_the_day_comes_with_its_significant_event_on_the_clock(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    first = _skybill(ship, ref={"shipperRef": "SO-1"})
    second = _skybill(ship, ref={"shipperRef": "SO-2"})
    found = _found(_search(official, sandbox))
    assert set(found) == {first, second}
    event = found[first].significantEvent
    assert (event.code, event.highPriority) == ("DC", True)
    assert found[first].shipperRef == "SO-1" and found[first].recipientZipCode == "06500"
    assert found[first].dateDeposit.date() == sandbox.now().date()
    sandbox.advance_clock(timedelta(hours=23, minutes=30))  # the delivered scenario: D at 23 h
    later = _found(
        _search(
            official, sandbox, dateDeposit=(sandbox.now() - timedelta(days=1)).strftime("%d/%m/%Y")
        )
    )
    assert later[first].significantEvent.code == "D"


def test_parcel_states_split_delivered_from_not_delivered_and_incidents(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    delivered = _skybill(ship)
    incident = _skybill(ship, recipient={"recipientName2": "[scenario:damaged]"})
    sandbox.advance_clock(timedelta(hours=23, minutes=30))
    since = (sandbox.now() - timedelta(days=1)).strftime("%d/%m/%Y")
    assert set(_found(_search(official, sandbox, dateDeposit=since, parcelState="DISTRIBUES"))) == {
        delivered
    }
    undelivered = _found(_search(official, sandbox, dateDeposit=since, parcelState="NONDISTRIBUES"))
    assert set(undelivered) == {incident}
    assert undelivered[incident].significantEvent.code == "KC"
    assert set(_found(_search(official, sandbox, dateDeposit=since, parcelState="INCIDENT"))) == {
        incident
    }
    assert not _found(_search(official, sandbox, dateDeposit=since, parcelState="INSTANCE"))
    assert not _found(_search(official, sandbox, dateDeposit=since, parcelState="INTERNATIONAL"))


def test_cancelled_parcel_answers_an_as_significant_event(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    sandbox.advance_clock(timedelta(minutes=10))
    client = official("tracking")
    assert (
        client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill).errorCode == 0
    )
    assert _found(_search(official, sandbox))[skybill].significantEvent.code == "AN"


def test_service_code_all_every_sub_account_empty_000_else_that_one(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    main = _skybill(ship)  # subAccount 0
    header = {"accountNumber": 19869502, "idEmit": "CHRFR", "subAccount": 7}
    sub = _skybill(ship, headerValue=header)
    assert set(_found(_search(official, sandbox, serviceCode="ALL"))) == {main, sub}
    assert set(_found(_search(official, sandbox, serviceCode=""))) == {main}
    assert set(_found(_search(official, sandbox, serviceCode="007"))) == {sub}
    assert not _found(_search(official, sandbox, serviceCode="8"))


def test_optional_filters_narrow_the_answer(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    mine = _skybill(ship, ref={"shipperRef": "SO-77", "recipientRef": "CUST-9"})
    _skybill(
        ship,
        ref={"shipperRef": "SO-78"},
        recipient={"recipientZipCode": "75001", "recipientCity": "Paris"},
    )
    assert set(_found(_search(official, sandbox, sendersRef="SO-77"))) == {mine}
    assert set(_found(_search(official, sandbox, consigneesRef="CUST-9"))) == {mine}
    assert set(_found(_search(official, sandbox, consigneesZipCode="06500"))) == {mine}
    assert len(_found(_search(official, sandbox, consigneesCountry="FR"))) == 2


def test_window_outside_the_deposit_day_finds_nothing(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    _skybill(ship)
    tomorrow = (sandbox.now() + timedelta(days=1)).strftime("%d/%m/%Y")
    assert not _found(_search(official, sandbox, dateDeposit=tomorrow, dateEndDeposit=tomorrow))


def test_another_account_never_sees_my_parcels(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    sandbox.accounts["11111111"] = "999999"
    _skybill(ship)
    other = {"accountNumber": "11111111", "password": "999999"}
    assert not _found(_search(official, sandbox, **other))


def test_bad_credentials_are_refused_like_the_other_tracking_operations(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    _skybill(ship)
    result = _search(official, sandbox, password="000000")
    assert result.errorCode == 2 and not result.listInfosPOD


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dateDeposit": "2026-12-03"}, "dateDeposit"),
        ({"dateDeposit": None}, "dateDeposit"),
        ({"dateEndDeposit": "31/02/2026"}, "dateEndDeposit"),
        ({"dateDeposit": "01/01/2026", "dateEndDeposit": "01/03/2026"}, "dateEndDeposit"),
        ({"parcelState": None}, "parcelState"),
        ({"parcelState": "LOST"}, "parcelState"),
    ],
)
def test_a_bad_or_missing_date_or_state_is_a_clear_refusal(
    official: Callable[[str], Any],
    sandbox: ChronopostSandbox,
    overrides: dict[str, Any],
    field: str,
) -> None:
    result = _search(official, sandbox, **overrides)
    assert result.errorCode == 33  # unconfirmed choice (docs/sandbox-chronopost.md)
    assert field in result.errorMessage and not result.listInfosPOD
