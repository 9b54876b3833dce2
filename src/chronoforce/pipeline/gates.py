"""The gates every Chronopost call of every use case passes: breaker, cluster slots, rate limit.

One `Gates` per process, shared by labels, returns, cancels, pickups, rates and relay searches,
so the cluster never sends more than `chronopost.concurrency` calls at once, never more than
`chronopost.calls_per_second`, and none while the shared circuit breaker is open. It never
calls the carrier itself and never retries: the use case decides what a refusal means.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chronoforce.domain.errors import CircuitOpenError

if TYPE_CHECKING:
    from chronoforce.config import Settings
    from chronoforce.store.db import Store

T = TypeVar("T")


class SlotsLike(Protocol):
    """cluster.Slots (shared) or cluster.LocalSlots (this process): a cap on calls in flight."""

    def held(self, deadline: float | None = None) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


@dataclass
class Gates:
    """The breaker (pipeline/breaker.py), the slots (pipeline/cluster.py) and the calls-per-second
    limiter (pipeline/ratelimit.py); each may be None (nothing to pass)."""

    breaker: Any = None  # CircuitBreaker shared by the cluster
    slots: SlotsLike | None = None
    limiter: Any = None  # RateLimiter shared by the cluster
    wait_s: float = 30.0  # the longest wait for a slot or a share of the calls per second

    def before_call(self) -> bool:
        """Pass the breaker or raise CircuitOpenError; True when this call is its probe."""
        if self.breaker is None:
            return False
        self.breaker.before_call()
        return bool(self.breaker.state()[0] != "closed")

    def watch(self) -> AbstractContextManager[None]:
        """Tell the breaker how the call made inside the block went."""
        return self.breaker.watch() if self.breaker is not None else nullcontext()

    @contextmanager
    def passage(self, wait: float | None = None) -> Iterator[None]:
        """A cluster-wide slot and a share of the calls per second, or CARRIER_BUSY."""
        wait = self.wait_s if wait is None else wait
        slot = (
            self.slots.held(deadline=time.monotonic() + wait)
            if self.slots is not None
            else nullcontext()
        )
        try:
            with slot:
                if self.limiter is not None and not self.limiter.acquire(time.time() + wait):
                    raise TimeoutError("rate limit")
                yield
        except TimeoutError as exc:
            busy = CircuitOpenError(
                f"carrier capacity in use by the cluster ({exc}); trying again shortly",
                code="CARRIER_BUSY",
            )
            busy.retry_after = 1.0
            raise busy from exc

    def call(self, call: Callable[[], T], *, wait: float | None = None) -> T:
        """One carrier call through every gate: breaker, slot, rate limit; outcome counted."""
        self.before_call()
        with self.passage(wait), self.watch():
            return call()

    def close(self) -> None:
        if self.slots is not None:
            self.slots.close()


class GateSettings(Protocol):
    """The `worker:` keys the shared gates take (worker.WorkerConfig has them)."""

    @property
    def queue_name(self) -> str: ...

    @property
    def breaker_failures(self) -> int: ...

    @property
    def breaker_window_s(self) -> float: ...

    @property
    def breaker_open_s(self) -> float: ...

    @property
    def breaker_max_open_s(self) -> float: ...

    @property
    def global_carrier_limits(self) -> bool: ...


def local_gates(settings: Settings) -> Gates:
    """This process's own cap on carrier calls in flight, no breaker, no rate limit: what a
    one-off command or a test driving one step by hand composes (pipeline/runtime.py)."""
    from chronoforce.pipeline.cluster import LocalSlots

    return Gates(
        slots=LocalSlots(settings.chronopost.concurrency),
        wait_s=settings.pipeline.lease_seconds / 4,
    )


def cluster_gates(settings: Settings, store: Store, config: GateSettings) -> Gates:
    """The cluster's gates: the breaker in the database, slots and calls per second in Redis
    (when the queue runs on Redis) or the database. Every process that shares the database
    shares them, workers and web app alike. Built once, at composition; never attached later."""
    from chronoforce.pipeline.breaker import CircuitBreaker
    from chronoforce.pipeline.cluster import Slots
    from chronoforce.pipeline.ratelimit import RateLimiter, windows_for
    from chronoforce.queue import is_redis, queue_location

    gates = local_gates(settings)
    gates.breaker = CircuitBreaker(
        store,
        failures_to_open=config.breaker_failures,
        window_s=config.breaker_window_s,
        open_s=config.breaker_open_s,
        max_open_s=config.breaker_max_open_s,
        probe_timeout_s=settings.pipeline.lease_seconds,
    )
    if not config.global_carrier_limits:
        return gates
    location = queue_location(settings.queue_url, settings.database_url)
    redis_url = location if is_redis(location) else ""
    call = settings.chronopost.connect_timeout_s + settings.chronopost.read_timeout_s
    # Keyed by the queue's name too: deployments (and test runs) sharing a Redis stay apart.
    gates.slots = Slots(
        store,
        f"{config.queue_name}:chronopost",
        settings.chronopost.concurrency,
        call + 5,
        redis_url,
    )
    per_second = max(1, int(settings.chronopost.calls_per_second))
    gates.limiter = RateLimiter(
        windows_for(store, redis_url),
        f"{settings.chronopost.account_number}:labels:s",
        per_second,
        batch=max(1, per_second // 4),  # a quarter second's calls per round trip
    )
    return gates


def carrier_side(settings: Settings, config: GateSettings) -> tuple[Any, Store, Gates]:
    """The Chronopost client, the store and the shared gates, without Salesforce: what rates
    and relay searches need (the web app serves them before any Salesforce login)."""
    from chronoforce.chronopost import ChronopostClient
    from chronoforce.store.db import Store

    store = Store(settings.database_url)
    return ChronopostClient.from_settings(settings), store, cluster_gates(settings, store, config)
