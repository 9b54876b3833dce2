"""Where chronoforce reads the time: a `Clock` passed in wherever time matters (cutoffs, polling).

Every instant it hands out is timezone-aware UTC. It must never return a naive datetime, and the
test clocks never sleep: `ManualClock.advance` moves time forward instantly.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol, runtime_checkable

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "ClockError",
    "FixedClock",
    "ManualClock",
    "SystemClock",
    "as_utc",
]


class ClockError(ValueError):
    """A naive datetime was given where an instant is needed, or time was asked to go back."""


def as_utc(value: dt.datetime, *, name: str = "time") -> dt.datetime:
    """`value` as aware UTC; a naive value is refused because its zone would be a guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ClockError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(dt.UTC)


@runtime_checkable
class Clock(Protocol):
    """Anything with `now()`; `clock.now` also fits where a `Callable[[], datetime]` is wanted."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """Always the same instant: for tests and for replaying a decision made at a known time."""

    __slots__ = ("_at",)

    def __init__(self, at: dt.datetime) -> None:
        self._at = as_utc(at, name="FixedClock time")

    def now(self) -> dt.datetime:
        return self._at

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


class ManualClock:
    """A clock that moves only when told to; safe to advance from another thread (sandboxes).

    Time never goes back: code using a clock may rely on `now()` never decreasing.
    """

    def __init__(self, start: dt.datetime) -> None:
        self._now = as_utc(start, name="ManualClock start")
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta | None = None, **units: float) -> dt.datetime:
        """Move forward by `delta` or by timedelta keywords (`hours=2`); returns the new time."""
        step = (delta or dt.timedelta()) + dt.timedelta(**units)
        if step < dt.timedelta():
            raise ClockError(f"a ManualClock only moves forward, not by {step}")
        with self._lock:
            self._now += step
            return self._now

    def set(self, at: dt.datetime) -> dt.datetime:
        """Jump to `at` (aware, not earlier than the current time)."""
        target = as_utc(at, name="ManualClock time")
        with self._lock:
            if target < self._now:
                raise ClockError(
                    f"a ManualClock only moves forward: {target.isoformat()} is before "
                    f"{self._now.isoformat()}"
                )
            self._now = target
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


# The clock used where none is passed in (column defaults, a use case built without one).
SYSTEM_CLOCK: Clock = SystemClock()
