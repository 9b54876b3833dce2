"""The sandbox clock: real time plus an offset that only moves forward through the admin API.

Tracking shows the events whose time is at or before this clock. It must never go backwards
(a client would see events disappear).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chronoforce.sandbox.chronopost.store import Store


class ClockError(ValueError):
    """An attempt to move the sandbox clock backwards."""


class SandboxClock:
    def __init__(self, store: Store, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._wall = wall
        # The offset lives in SQLite so a restarted sandbox keeps its notion of "now".
        self._offset = float(store.get_meta("clock_offset", "0"))

    @property
    def offset(self) -> timedelta:
        return timedelta(seconds=self._offset)

    def timestamp(self) -> float:
        return self._wall() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ClockError("the sandbox clock only moves forward")
        self._offset += delta.total_seconds()
        self._store.set_meta("clock_offset", repr(self._offset))
        return self.now()

    def reset(self) -> None:
        self._offset = 0.0
        self._store.set_meta("clock_offset", "0")
