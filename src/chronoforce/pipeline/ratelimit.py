"""Carrier call limits shared by every worker: per-second rate and hourly budget windows.

One of the gates every carrier call passes (pipeline/gates.py); tracking also keeps its hourly
budget with it. Counters live in the database or Redis, never only in memory; it never grants
past the limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select, update

from chronoforce.store.db import Store
from chronoforce.store.models import RateWindow
from chronoforce.store.ops import insert_ignore


class Windows(Protocol):
    """Counts calls per (key, window) somewhere every worker sees: the database or Redis."""

    def take(self, key: str, window: int, wanted: int, limit: int) -> int: ...


@dataclass
class DatabaseWindows:
    store: Store

    def take(self, key: str, window: int, wanted: int, limit: int) -> int:
        """Grant up to `wanted` calls in this window without ever passing `limit`."""
        with self.store.session() as session:
            insert_ignore(session, RateWindow, [{"key": key, "window": window, "count": 0}])
            used = session.scalar(
                select(RateWindow.count)
                .where(RateWindow.key == key, RateWindow.window == window)
                .with_for_update()
            )
            granted = max(0, min(wanted, limit - int(used or 0)))
            if granted:
                session.execute(
                    update(RateWindow)
                    .where(RateWindow.key == key, RateWindow.window == window)
                    .values(count=RateWindow.count + granted)
                )
            if window % 64 == 0:  # now and then, forget old windows
                session.execute(
                    delete(RateWindow).where(RateWindow.key == key, RateWindow.window < window - 4)
                )
        return granted


@dataclass
class RedisWindows:
    url: str
    _client: Any = None

    def take(self, key: str, window: int, wanted: int, limit: int) -> int:
        import redis

        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        name = f"chronoforce:rate:{key}:{window}"
        pipe = self._client.pipeline()
        pipe.incrby(name, wanted)
        pipe.expire(name, 7200)
        total = int(pipe.execute()[0])
        over = max(0, min(wanted, total - limit))
        if over:
            self._client.decrby(name, over)  # give back what we may not use
        return wanted - over


def windows_for(store: Store, url: str = "") -> Windows:
    return (
        RedisWindows(url) if url.startswith(("redis://", "rediss://")) else DatabaseWindows(store)
    )


@dataclass
class RateLimiter:
    """At most `limit` calls per `period` seconds for `key`, shared by every process.

    With `batch` > 1 a process takes that many of a window's calls from the shared counter at
    once and hands them to its threads (one round trip per `batch` calls); what it does not use
    by the window's end is lost to the others, so the shared limit still holds."""

    windows: Windows
    key: str
    limit: int
    period: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    batch: int = 1
    _held: tuple[int, int] = (-1, 0)  # (window, calls taken but not yet handed out)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def window(self) -> int:
        return int(self.clock() // self.period)

    def take(self, wanted: int) -> int:
        return self.windows.take(self.key, self.window(), wanted, self.limit)

    def _one(self) -> bool:
        if self.batch <= 1:
            return bool(self.take(1))
        with self._lock:
            window = self.window()
            held_window, left = self._held
            if held_window != window or left <= 0:
                left = self.windows.take(self.key, window, min(self.batch, self.limit), self.limit)
            if left <= 0:
                self._held = (window, 0)
                return False
            self._held = (window, left - 1)
            return True

    def acquire(self, deadline: float | None = None) -> bool:
        """Wait for one call; False when `deadline` (clock time) passes first."""
        while True:
            if self._one():
                return True
            wake = (self.window() + 1) * self.period
            if deadline is not None and wake > deadline:
                return False
            self.sleep(max(0.001, wake - self.clock()))
