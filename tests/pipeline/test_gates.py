"""The gates every carrier call passes (pipeline/gates.py), on both backends: the shared
breaker refuses before any call, the shared slots cap calls in flight across processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chronoforce.domain.errors import CarrierUnavailableError, CircuitOpenError
from chronoforce.pipeline.breaker import CircuitBreaker
from chronoforce.pipeline.cluster import Slots
from chronoforce.pipeline.gates import Gates
from chronoforce.store.db import Store


@pytest.fixture()
def store(backend: Any) -> Iterator[Store]:
    s = Store(backend.database_url)
    yield s
    s.dispose()


def test_an_open_breaker_refuses_before_the_call_with_its_retry_time(store: Store) -> None:
    calls: list[int] = []
    gates = Gates(breaker=CircuitBreaker(store, refresh_s=0))
    elsewhere = CircuitBreaker(store, failures_to_open=1, open_s=30, refresh_s=0)
    elsewhere.on_failure()  # another process saw Chronopost fail
    with pytest.raises(CircuitOpenError) as refused:
        gates.call(lambda: calls.append(1))
    assert calls == [] and 0 < (refused.value.retry_after or 0) <= 30
    elsewhere.on_success()
    assert gates.call(lambda: calls.append(1) or "ok") == "ok" and calls == [1]


def test_a_failed_call_is_counted_by_the_shared_breaker(store: Store) -> None:
    gates = Gates(breaker=CircuitBreaker(store, failures_to_open=1, open_s=30, refresh_s=0))

    def down() -> None:
        raise CarrierUnavailableError("503")

    with pytest.raises(CarrierUnavailableError):
        gates.call(down)
    assert CircuitBreaker(store, refresh_s=0).state()[0] == "open"


def test_slots_shared_by_two_processes_cap_the_calls_in_flight(store: Store, backend: Any) -> None:
    redis_url = backend.queue_url
    name = f"{backend.queue_name}:chronopost"
    two = [Gates(slots=Slots(store, name, 2, 10.0, redis_url), wait_s=5.0) for _ in range(2)]
    lock, now, high = threading.Lock(), [0], [0]

    def call() -> None:
        with lock:
            now[0] += 1
            high[0] = max(high[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1

    threads = [threading.Thread(target=two[i % 2].call, args=(call,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for gates in two:
        gates.close()
    assert high[0] == 2


def test_no_slot_within_the_wait_is_carrier_busy(store: Store) -> None:
    gates = Gates(slots=Slots(store, "busy:chronopost", 1, 10.0, ""), wait_s=0.2)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gates.passage():
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(CircuitOpenError) as busy:
            gates.call(lambda: None)
        assert busy.value.code == "CARRIER_BUSY"
    finally:
        release.set()
        holder.join()
        gates.close()
