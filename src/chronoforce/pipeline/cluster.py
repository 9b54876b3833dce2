"""State every worker of a cluster shares, kept in the database (`cluster_state` rows).

Turns (a periodic task runs once per period per cluster, whichever worker wins the row), pauses
(Salesforce writes stopped until a time), notes (the last API usage seen, for `status`) and
slots (a cluster-wide cap on concurrent carrier calls). Every grant has an expiry, so a worker
killed while holding one delays the others at most until then; nothing here may wait forever.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select, update

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.store.db import Store
from chronoforce.store.models import ClusterState
from chronoforce.store.ops import insert_ignore

Now = Callable[[], dt.datetime]


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; every time we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _ensure(store: Store, name: str, state: str = "") -> None:
    with store.session() as session:
        insert_ignore(session, ClusterState, [{"name": name, "state": state}])


def take_turn(
    store: Store, name: str, owner: str, period: dt.timedelta, now: dt.datetime | None = None
) -> bool:
    """True for exactly one caller per `period` across every process sharing `store`."""
    now = now or SYSTEM_CLOCK.now()
    _ensure(store, name, "turn")
    with store.session() as session:
        result = session.execute(
            update(ClusterState)
            .where(
                ClusterState.name == name,
                or_(ClusterState.expires_at.is_(None), ClusterState.expires_at <= now),
            )
            .values(owner=owner, expires_at=now + period, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def pause(store: Store, name: str, until: dt.datetime, reason: str) -> None:
    """Stop `name` until `until` (an earlier pause is only ever lengthened, never shortened)."""
    _ensure(store, name, "paused")
    with store.session() as session:
        row = session.get_one(ClusterState, name, with_for_update=True)
        current = utc(row.expires_at)
        if current is None or current < until:
            row.expires_at = until
        row.state, row.data = "paused", {"reason": reason[:300]}


def paused_until(store: Store, name: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the pause on `name` ends, or None when it is not paused."""
    now = now or SYSTEM_CLOCK.now()
    with store.session() as session:
        row = session.get(ClusterState, name)
        until = utc(row.expires_at) if row is not None and row.state == "paused" else None
    return until if until is not None and until > now else None


def note(store: Store, name: str, data: dict[str, Any]) -> None:
    """Remember a fact for `chronoforce status` (last API usage, last periodic run…)."""
    _ensure(store, name, "note")
    with store.session() as session:
        row = session.get_one(ClusterState, name)
        row.data, row.updated_at = data, SYSTEM_CLOCK.now()


def rows(store: Store) -> list[ClusterState]:
    with store.session() as session:
        found = list(session.scalars(select(ClusterState).order_by(ClusterState.name)))
        session.expunge_all()
    return found


# --- a cluster-wide cap on concurrent calls ----------------------------------------------------


class LocalSlots:
    """At most `limit` concurrent holders in this process: the gate when no shared one is set
    (`worker.global_carrier_limits: false`), so label threads may outnumber carrier calls."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def held(self, deadline: float | None = None) -> Iterator[None]:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._semaphore.acquire(timeout=timeout):
            raise TimeoutError("no free carrier slot in this process")
        try:
            yield
        finally:
            self._semaphore.release()

    def close(self) -> None:
        """Nothing shared to give back."""


# KEYS[1] the slots' sorted set (scored by expiry); ARGV: now, expiry, token, limit, ttl.
_REDIS_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class Slots:
    """At most `limit` holders at once across the cluster; a holder's slot expires after `hold`.

    Redis (a sorted set scored by expiry) when the queue runs on Redis, else `cluster_state`
    rows `slot:<key>:<n>`. The expiry must outlive the call it guards (the carrier timeouts).
    """

    def __init__(
        self,
        store: Store,
        key: str,
        limit: int,
        hold: float,
        redis_url: str = "",
        reuse: int = 20,
    ) -> None:
        self.store, self.key, self.limit, self.hold = store, key, limit, hold
        self.redis_url, self.reuse = redis_url, reuse
        self._redis: Any = None
        self._script: Any = None
        self._ready = False
        self._lock = threading.Lock()
        # This process never holds more than `limit` slots, so its own threads wait here, woken
        # at once, instead of polling the shared store for a slot that cannot be free.
        self._local = threading.BoundedSemaphore(limit)
        self._waiting = 0
        # Shared slots handed from a finishing thread to a waiting one without a round trip:
        # (token, uses, monotonic time its shared expiry passes).
        self._idle: list[tuple[str, int, float]] = []
        self._handed = threading.Condition(self._lock)

    def _client(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def try_acquire(self) -> str | None:
        """A token to give back, or None when every slot is held."""
        token = uuid.uuid4().hex
        if self.redis_url:
            return token if self._redis_acquire(token) else None
        return self._db_acquire(token)

    def release(self, token: str) -> None:
        if self.redis_url:
            self._client().zrem(self._zkey, token)
            return
        with self.store.session() as session:
            session.execute(
                update(ClusterState)
                .where(ClusterState.name.like(f"slot:{self.key}:%"), ClusterState.owner == token)
                .values(owner=None, expires_at=None)
                .execution_options(synchronize_session=False)
            )

    @contextmanager
    def held(self, deadline: float | None = None) -> Iterator[None]:
        """Wait for a slot (until `deadline`, monotonic), hold it for the block.

        A thread that finishes while others of this process wait hands its shared slot to the
        next one (at most `reuse` times, and only while its expiry still covers a call), so a
        burst costs the shared store one acquire and one release per `reuse` calls; then the
        slot goes back, and other processes get their turn at it. Waiting counts from the
        local semaphore to the shared slot: when other processes hold the rest, this process's
        threads wait on the shared store too, and a slot handed over wakes one at once."""
        with self._lock:
            self._waiting += 1
        local = False
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._local.acquire(timeout=timeout):
                raise TimeoutError(f"no free {self.key} slot")
            local = True
            token, uses, expires = self._shared(deadline)
        except BaseException:
            if local:
                self._local.release()
            raise
        finally:
            with self._lock:
                self._waiting -= 1
        try:
            yield
        finally:
            try:
                self._give_back(token, uses + 1, expires)
            finally:
                self._local.release()

    def _take_idle(self) -> tuple[str, int, float] | None:
        """A kept slot whose expiry still covers a call; older ones go back to the store."""
        stale: list[str] = []
        found = None
        with self._lock:
            while self._idle and found is None:
                token, uses, expires = self._idle.pop()
                if expires - time.monotonic() > self.hold / 2:
                    found = (token, uses, expires)
                else:
                    stale.append(token)
        for token in stale:
            self.release(token)
        return found

    def _shared(self, deadline: float | None) -> tuple[str, int, float]:
        while True:
            kept = self._take_idle()
            if kept is not None:
                return kept
            token = self.try_acquire()
            if token is not None:
                return token, 0, time.monotonic() + self.hold
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no free {self.key} slot")
            # Until the next look at the shared store, or a slot handed over here.
            with self._lock:
                if not self._idle:
                    self._handed.wait(0.02 + random.random() * 0.05)

    def _give_back(self, token: str, uses: int, expires: float) -> None:
        with self._lock:
            keep = self._waiting > 0 and uses < self.reuse
            # Kept only while the slot outlives another whole call (`hold` covers one).
            keep = keep and expires - time.monotonic() > self.hold / 2
            if keep:
                self._idle.append((token, uses, expires))
                self._handed.notify()
                return
        self.release(token)

    def close(self) -> None:
        """Give back the slots kept for waiters that never came (shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for token, _, _ in idle:
            self.release(token)

    @property
    def _zkey(self) -> str:
        return f"chronoforce:slots:{self.key}"

    def _redis_acquire(self, token: str) -> bool:
        # One script, so the count and the add are one step: holders that died let go first,
        # then the token gets in only below the limit. (Adding first and checking the rank
        # after let a newcomer whose clock read was earlier rank ahead of one already in.)
        client = self._client()
        if self._script is None:
            self._script = client.register_script(_REDIS_ACQUIRE)
        now = time.time()
        ttl = int(self.hold) + 60
        return bool(
            self._script(keys=[self._zkey], args=[now, now + self.hold, token, self.limit, ttl])
        )

    def _db_acquire(self, token: str) -> str | None:
        with self._lock:
            if not self._ready:
                with self.store.session() as session:
                    insert_ignore(
                        session,
                        ClusterState,
                        [
                            {"name": f"slot:{self.key}:{n}", "state": "slot"}
                            for n in range(self.limit)
                        ],
                    )
                self._ready = True
        now = SYSTEM_CLOCK.now()
        start = random.randrange(self.limit)
        with self.store.session() as session:  # one transaction for the whole scan
            for step in range(self.limit):
                name = f"slot:{self.key}:{(start + step) % self.limit}"
                result = session.execute(
                    update(ClusterState)
                    .where(
                        ClusterState.name == name,
                        or_(ClusterState.expires_at.is_(None), ClusterState.expires_at <= now),
                    )
                    .values(owner=token, expires_at=now + dt.timedelta(seconds=self.hold))
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0):
                    return token
        return None


@dataclass
class Turns:
    """Runs each periodic job once per period per cluster; call `tick()` often from any worker."""

    store: Store
    jobs: dict[str, tuple[float, Callable[[], Any]]]  # name → (period seconds, job)
    owner: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:8]}")
    on_error: Callable[[str, BaseException], None] | None = None
    stopped: Callable[[], bool] = lambda: False  # checked between jobs: stop promptly
    _next: dict[str, float] = field(default_factory=dict)
    ran: dict[str, int] = field(default_factory=dict)

    def tick(self) -> list[str]:
        """Run the jobs that are due and whose turn this worker won; their names."""
        done = []
        clock = time.monotonic()
        for name, (period, job) in self.jobs.items():
            if self.stopped():
                break
            if clock < self._next.get(name, 0.0):
                continue
            self._next[name] = clock + period / 4  # look again soon: another may fail to run it
            if not take_turn(self.store, f"periodic:{name}", self.owner, _seconds(period)):
                continue
            self._next[name] = clock + period
            try:
                job()
            except Exception as exc:  # one failing job must not stop the others
                if self.on_error is not None:
                    self.on_error(name, exc)
            self.ran[name] = self.ran.get(name, 0) + 1
            done.append(name)
        return done


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)
