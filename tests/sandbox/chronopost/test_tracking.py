"""Tracking through the official-schema client: scenarios on the sandbox clock, search by our
reference, cancellation and proof of delivery."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.chronopost.tables import EVENT_CODES, SCENARIOS

DEMO = {"accountNumber": "19869502", "password": "255562"}


def _track(official: Callable[[str], Any], skybill: str, language: str = "en_GB") -> list[Any]:
    client = official("tracking")
    result = client.service.trackSkybillV2(language=language, skybillNumber=skybill)
    client.assert_valid_response()
    assert result.errorCode == 0
    return list(result.listEventInfoComp.events or [])


def _skybill(ship: Callable[..., Any], **overrides: Any) -> str:
    result = ship(**overrides)
    assert result.errorCode == 0, result.errorMessage
    return str(result.resultMultiParcelValue[0].skybillNumber)


def test_new_parcel_shows_only_the_label_created_event(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    events = _track(official, _skybill(ship))
    assert [e.code for e in events] == ["DC"]
    assert events[0].eventLabel.startswith("Label created")
    assert events[0].highPriority is True  # the one event, hence the last


def test_the_sandbox_knows_every_documented_event_code_and_emits_each_in_a_scenario(
    reference_dir: Path,
) -> None:
    path = reference_dir / "chronopost" / "tracking_events.csv"
    with path.open(encoding="utf-8") as f:
        documented = {row["code"]: row for row in csv.DictReader(f)}
    assert set(EVENT_CODES) == set(documented)
    assert all(EVENT_CODES[c].label_fr == row["label_fr"] for c, row in documented.items())
    emitted = {code for steps in SCENARIOS.values() for code, _ in steps} | {"AN"}  # AN: cancel
    assert emitted == set(documented)


def test_delivered_scenario_advances_with_the_sandbox_clock(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    sandbox.advance_clock(timedelta(hours=10))
    assert [e.code for e in _track(official, skybill)] == ["DC", "DB", "DY", "SC"]
    sandbox.advance_clock(timedelta(hours=20))
    events = _track(official, skybill)
    assert [e.code for e in events] == ["DC", "DB", "DY", "SC", "TS", "SD", "TA", "D"]
    assert [e.highPriority for e in events] == [False] * 7 + [True]  # [D] §2.6.3.b: the last
    assert events[-1].infoCompList[0].value == "HautSide"
    assert [e.eventDate for e in events] == sorted(e.eventDate for e in events)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_is_reachable_from_a_recipient_marker(
    official: Callable[[str], Any],
    ship: Callable[..., Any],
    sandbox: ChronopostSandbox,
    scenario: str,
) -> None:
    skybill = _skybill(ship, recipient={"recipientName2": f"Bât. B [scenario:{scenario}]"})
    sandbox.advance_clock(timedelta(days=10))
    codes = [e.code for e in _track(official, skybill)]
    assert codes == [code for code, _ in SCENARIOS[scenario]]


def test_absent_parcel_is_delivered_on_the_next_working_day(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship, recipient={"recipientAdress2": "[scenario:absent]"})
    sandbox.advance_clock(timedelta(days=10))
    events = _track(official, skybill)
    notice, retry, delivered = events[-3], events[-2], events[-1]
    assert (notice.code, retry.code, delivered.code) == ("P", "TA", "D")
    assert retry.eventDate.date() > notice.eventDate.date()
    assert retry.eventDate.weekday() < 5 and retry.eventDate.hour == 8


def test_relay_point_parcels_default_to_the_relay_scenario(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship, skybill={"productCode": "86"}, ref={"idRelais": "2001R"})
    sandbox.advance_clock(timedelta(days=3))
    assert [e.code for e in _track(official, skybill)][-2:] == ["MD", "RI"]


def test_events_speak_french_when_asked(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    assert _track(official, _skybill(ship), "fr_FR")[0].eventLabel == "Envoi prêt chez l'expéditeur"


def test_unknown_skybill_has_no_events(official: Callable[[str], Any]) -> None:
    assert _track(official, "XX000000000FR") == []


def test_track_with_sender_ref_recovers_the_parcels_of_an_order(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    first = ship(ref={"shipperRef": "SO-42"}, parcels=2)
    _skybill(ship, ref={"shipperRef": "SO-43"})
    client = official("tracking")
    result = client.service.trackWithSenderRef(**DEMO, language="en_GB", sendersRef="SO-42")
    client.assert_valid_response()
    assert result.errorCode == 0
    assert [p.skybillNumber for p in result.listParcel] == [
        p.skybillNumber for p in first.resultMultiParcelValue
    ]
    assert [e.code for e in result.listParcel[0].events] == ["DC"]


def test_another_account_cannot_find_or_cancel_my_parcels(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    sandbox.accounts["11111111"] = "999999"
    skybill = _skybill(ship, ref={"shipperRef": "SO-SECRET"})
    client = official("tracking")
    other = {"accountNumber": "11111111", "password": "999999"}
    found = client.service.trackWithSenderRef(**other, language="en_GB", sendersRef="SO-SECRET")
    assert found.errorCode == 0 and not found.listParcel
    cancel = client.service.cancelSkybill(**other, language="en_GB", skybillNumber=skybill)
    assert cancel.errorCode == 2


@pytest.mark.parametrize(
    "operation", ["trackWithSenderRef", "cancelSkybill", "searchPOD", "searchPODWithSenderRef"]
)
def test_wrong_password_answers_error_code_2_not_a_cancel_or_rates_code_3(
    official: Callable[[str], Any], operation: str
) -> None:
    # In cancel, 3 means "taken over" ([S] §3.14.5); no tracking code for bad credentials is
    # documented, so the sandbox answers like searchPOD's "not in this contract" (unconfirmed).
    client = official("tracking")
    args: dict[str, Any] = {"accountNumber": "19869502", "password": "nope", "language": "en_GB"}
    if operation in ("trackWithSenderRef", "searchPODWithSenderRef"):
        args["sendersRef"] = "SO-1"
    else:
        args["skybillNumber"] = "XX000000000FR"
    if operation.startswith("searchPOD"):
        args["pdf"] = True
    result = getattr(client.service, operation)(**args)
    client.assert_valid_response()
    assert (result.errorCode, result.errorMessage) == (
        2,
        "the parcel doesn't match account or parcel information not found",
    )


def test_cancel_before_pickup_voids_the_label(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    sandbox.advance_clock(timedelta(minutes=10))
    client = official("tracking")
    result = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill)
    client.assert_valid_response()
    assert (result.errorCode, result.statusCode) == (0, 0)
    assert sandbox.live_labels() == 0
    sandbox.advance_clock(timedelta(days=5))
    assert [e.code for e in _track(official, skybill)] == ["DC", "AN"]
    again = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill)
    assert again.errorCode == 0


def test_cancel_after_pickup_is_refused(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    sandbox.advance_clock(timedelta(hours=5))
    client = official("tracking")
    result = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill)
    client.assert_valid_response()
    assert result.errorCode == 3  # [S] §3.14.5: already taken over
    assert sandbox.live_labels() == 1


def test_cancel_in_the_first_ten_minutes_is_refused_as_not_yet_in_tracking(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    client = official("tracking")
    sandbox.advance_clock(timedelta(minutes=9, seconds=50))
    early = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill)
    client.assert_valid_response()
    assert (early.errorCode, early.statusCode) == (2, 0)
    assert "not yet registered" in early.errorMessage
    assert sandbox.live_labels() == 1
    sandbox.advance_clock(timedelta(seconds=10))
    opened = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber=skybill)
    assert opened.errorCode == 0 and sandbox.live_labels() == 0


def test_cancel_unknown_parcel_answers_error_code_2(official: Callable[[str], Any]) -> None:
    client = official("tracking")
    result = client.service.cancelSkybill(**DEMO, language="en_GB", skybillNumber="XP000000000FR")
    client.assert_valid_response()
    assert (result.errorCode, result.statusCode) == (2, 0)
    assert result.errorMessage == "the parcel doesn't match account or parcel information not found"
