"""The carrier's circuit breaker, shared by every worker through one `cluster_state` row.

closed → (too many failures in a window) → open → (after `open_s`) → half_open: exactly one
worker in the cluster probes with a real call; success closes it, failure re-opens it for twice
as long (up to `max_open_s`). While open, callers get CircuitOpenError *before* any call, so no
label is attempted and no retry budget is spent. It never sleeps and never makes a call itself.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, update

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import CarrierUnavailableError, CircuitOpenError, PermanentError
from chronoforce.logs import get_logger
from chronoforce.pipeline.cluster import utc
from chronoforce.store.db import Store
from chronoforce.store.models import ClusterState
from chronoforce.store.ops import insert_ignore

log = get_logger(component="breaker")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class CircuitBreaker:
    store: Store
    name: str = "chronopost"
    failures_to_open: int = 5  # failures within `window_s`…
    failure_ratio: float = 0.5  # …that are at least this share of the calls seen
    window_s: float = 10.0
    open_s: float = 5.0
    max_open_s: float = 60.0
    probe_timeout_s: float = 40.0  # a probe that never reports is taken over after this
    refresh_s: float = 0.5  # how old the shared state may be when read from this process
    now: Callable[[], dt.datetime] = SYSTEM_CLOCK.now
    owner: str = field(default_factory=lambda: f"b-{uuid.uuid4().hex[:8]}")
    _seen: deque[tuple[float, bool]] = field(default_factory=deque)
    _cache: tuple[float, str, dt.datetime | None, str | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ready: bool = False

    @property
    def row(self) -> str:
        return f"breaker:{self.name}"

    def state(self) -> tuple[str, dt.datetime | None]:
        """The shared state and when it changes next (re-read at most every `refresh_s`)."""
        state, until, _ = self._read()
        return state, until

    def before_call(self) -> None:
        """Return when a call may go out; raise CircuitOpenError when it must not."""
        state, until, owner = self._read()
        if state == CLOSED:
            return
        now = self.now()
        if state == HALF_OPEN and owner == self.owner:
            return  # we are the probe
        if until is not None and now < until:
            raise self._refusal(state, until - now)
        if self._take_probe(now):
            log.info("circuit half-open: probing", breaker=self.name)
            return
        raise self._refusal(HALF_OPEN, dt.timedelta(seconds=self.refresh_s * 2))

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Count the outcome of the carrier call made inside the block."""
        try:
            yield
        except CircuitOpenError:
            raise
        except CarrierUnavailableError:
            self.on_failure()
            raise
        except PermanentError:
            self.on_success()  # the carrier answered: it is up, the request was wrong
            raise
        self.on_success()

    def on_success(self) -> None:
        self._remember(True)
        state, _, owner = self._read()
        if state == CLOSED:
            return
        with self.store.session() as session:
            session.execute(
                update(ClusterState)
                .where(ClusterState.name == self.row)
                .values(state=CLOSED, owner=None, expires_at=None, data={"opens": 0})
                .execution_options(synchronize_session=False)
            )
        self._cache = None
        log.info("circuit closed", breaker=self.name, probe=owner == self.owner)

    def on_failure(self) -> None:
        failures, total = self._remember(False)
        state, _, owner = self._read()
        now = self.now()
        if state == HALF_OPEN and owner == self.owner:
            self._open(now, reopen=True)
        elif state == CLOSED and (
            failures >= self.failures_to_open and failures >= self.failure_ratio * total
        ):
            self._open(now, reopen=False)

    # --- shared row --------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ready:
            return
        with self.store.session() as session:
            insert_ignore(
                session, ClusterState, [{"name": self.row, "state": CLOSED, "data": {"opens": 0}}]
            )
        self._ready = True

    def _read(self) -> tuple[str, dt.datetime | None, str | None]:
        clock = time.monotonic()
        cached = self._cache
        if cached is not None and clock - cached[0] < self.refresh_s:
            return cached[1], cached[2], cached[3]
        self._ensure()
        with self.store.session() as session:
            row = session.get_one(ClusterState, self.row)
            state, until, owner = row.state or CLOSED, utc(row.expires_at), row.owner
        self._cache = (clock, state, until, owner)
        return state, until, owner

    def _open(self, now: dt.datetime, *, reopen: bool) -> None:
        with self.store.session() as session:
            row = session.get_one(ClusterState, self.row, with_for_update=True)
            if not reopen and row.state != CLOSED:
                return  # another worker opened it first
            opens = int((row.data or {}).get("opens", 0)) + 1
            wait = min(self.max_open_s, self.open_s * 2 ** (opens - 1))
            row.state, row.owner = OPEN, None
            row.expires_at = now + dt.timedelta(seconds=wait)
            row.data = {"opens": opens}
        self._cache = None
        with self._lock:
            self._seen.clear()
        log.warning("circuit open", breaker=self.name, seconds=wait, opens=opens)

    def _take_probe(self, now: dt.datetime) -> bool:
        """Exactly one caller turns an expired `open` (or a dead probe) into our probe."""
        with self.store.session() as session:
            result = session.execute(
                update(ClusterState)
                .where(
                    ClusterState.name == self.row,
                    ClusterState.state.in_((OPEN, HALF_OPEN)),
                    or_(
                        ClusterState.expires_at.is_(None),
                        and_(ClusterState.expires_at <= now),
                    ),
                )
                .values(
                    state=HALF_OPEN,
                    owner=self.owner,
                    expires_at=now + dt.timedelta(seconds=self.probe_timeout_s),
                )
                .execution_options(synchronize_session=False)
            )
            won = bool(getattr(result, "rowcount", 0))
        self._cache = None
        return won

    def _refusal(self, state: str, left: dt.timedelta) -> CircuitOpenError:
        seconds = max(0.1, left.total_seconds())
        error = CircuitOpenError(
            f"Chronopost circuit {state}: calls paused for {seconds:.1f} s after repeated failures",
            operation="carrier",
        )
        error.retry_after = seconds
        return error

    def _remember(self, ok: bool) -> tuple[int, int]:
        clock = time.monotonic()
        with self._lock:
            self._seen.append((clock, ok))
            while self._seen and self._seen[0][0] < clock - self.window_s:
                self._seen.popleft()
            failures = sum(1 for _, good in self._seen if not good)
            return failures, len(self._seen)
