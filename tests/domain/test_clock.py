"""Clocks: aware UTC instants only, manual time that moves forward on demand and never back."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from chronoforce.domain.clock import (
    Clock,
    ClockError,
    FixedClock,
    ManualClock,
    SystemClock,
    as_utc,
)

PARIS = ZoneInfo("Europe/Paris")
NOON_UTC = dt.datetime(2025, 7, 14, 12, 0, tzinfo=dt.UTC)


def test_system_clock_returns_aware_utc_close_to_the_real_time() -> None:
    before = dt.datetime.now(dt.UTC)
    now = SystemClock().now()
    after = dt.datetime.now(dt.UTC)
    assert now.tzinfo is dt.UTC
    assert before <= now <= after


def test_fixed_clock_converts_a_paris_time_to_utc() -> None:
    clock = FixedClock(dt.datetime(2025, 7, 14, 14, 0, tzinfo=PARIS))  # CEST, UTC+2
    assert clock.now() == NOON_UTC
    assert clock.now().tzinfo is dt.UTC
    assert clock.now() == clock.now()


@pytest.mark.parametrize("make", [FixedClock, ManualClock])
def test_clocks_refuse_a_naive_start(make: Callable[[dt.datetime], Clock]) -> None:
    with pytest.raises(ClockError, match="timezone-aware"):
        make(dt.datetime(2025, 7, 14, 12, 0))


def test_every_clock_satisfies_the_clock_protocol() -> None:
    for clock in (SystemClock(), FixedClock(NOON_UTC), ManualClock(NOON_UTC)):
        assert isinstance(clock, Clock)


def test_manual_clock_advances_by_timedelta_or_keywords() -> None:
    clock = ManualClock(NOON_UTC)
    assert clock.advance(dt.timedelta(minutes=30)) == NOON_UTC + dt.timedelta(minutes=30)
    assert clock.advance(hours=2, minutes=30) == NOON_UTC + dt.timedelta(hours=3)
    assert clock.now() == NOON_UTC + dt.timedelta(hours=3)


def test_manual_clock_never_goes_back() -> None:
    clock = ManualClock(NOON_UTC)
    with pytest.raises(ClockError, match="forward"):
        clock.advance(seconds=-1)
    with pytest.raises(ClockError, match="forward"):
        clock.set(NOON_UTC - dt.timedelta(days=1))
    assert clock.now() == NOON_UTC


def test_manual_clock_set_jumps_forward_to_an_aware_time() -> None:
    clock = ManualClock(NOON_UTC)
    target = dt.datetime(2025, 12, 24, 18, 0, tzinfo=PARIS)
    assert clock.set(target) == dt.datetime(2025, 12, 24, 17, 0, tzinfo=dt.UTC)
    with pytest.raises(ClockError, match="timezone-aware"):
        clock.set(dt.datetime(2026, 1, 1))


def test_manual_clock_bound_now_works_as_a_plain_callable() -> None:
    clock = ManualClock(NOON_UTC)
    now: Callable[[], dt.datetime] = clock.now
    clock.advance(days=1)
    assert now() == NOON_UTC + dt.timedelta(days=1)


def test_manual_clock_loses_no_step_when_advanced_from_many_threads() -> None:
    clock = ManualClock(NOON_UTC)

    def tick() -> None:
        for _ in range(500):
            clock.advance(seconds=1)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == NOON_UTC + dt.timedelta(seconds=2000)


def test_as_utc_names_the_value_it_refuses() -> None:
    with pytest.raises(ClockError, match="last_event_time"):
        as_utc(dt.datetime(2025, 1, 1), name="last_event_time")
    assert as_utc(dt.datetime(2025, 1, 1, 1, 0, tzinfo=PARIS)) == dt.datetime(
        2025, 1, 1, 0, 0, tzinfo=dt.UTC
    )
