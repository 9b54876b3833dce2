"""The parts that keep C carrier calls in flight during a burst (bench/bench_label_burst.py):
slots handed between threads, rate-limit grants taken in batches, SQLite writers queued in the
process, detection that hands each page over as soon as it is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from chronoforce.pipeline import cluster
from chronoforce.pipeline.ratelimit import DatabaseWindows, RateLimiter
from chronoforce.pipeline.runner import Runner
from chronoforce.store.db import Store
from chronoforce.store.models import ClusterState, Watermark


@pytest.fixture()
def store(backend: Any) -> Iterator[Store]:
    s = Store(backend.database_url)
    yield s
    s.dispose()


def _hammer(
    slots: Any, threads: int, calls: int, hold_s: float, after_s: float = 0.0
) -> tuple[int, int]:
    """`threads` threads each make `calls` "calls" through the slots; the most seen at once.
    `after_s`: work between two calls (storing a label), outside the slot."""
    lock = threading.Lock()
    state = {"now": 0, "most": 0, "done": 0}

    def work() -> None:
        for _ in range(calls):
            with slots.held(deadline=time.monotonic() + 30):
                with lock:
                    state["now"] += 1
                    state["most"] = max(state["most"], state["now"])
                time.sleep(hold_s)  # the carrier call
                with lock:
                    state["now"] -= 1
                    state["done"] += 1
            time.sleep(after_s)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return state["most"], state["done"]


def test_slots_never_pass_the_limit_while_threads_hand_them_over(
    store: Store, backend: Any
) -> None:
    calls = {"acquire": 0}
    slots = cluster.Slots(
        store, f"burst-{backend.queue_name}", 3, hold=30, redis_url=backend.queue_url
    )
    plain = slots.try_acquire

    def counted() -> str | None:
        calls["acquire"] += 1
        return plain()

    slots.try_acquire = counted  # type: ignore[method-assign]
    most, done = _hammer(slots, threads=8, calls=10, hold_s=0.01)
    assert done == 80 and most == 3
    # Handed from thread to thread: far fewer round trips to the shared store than calls.
    assert calls["acquire"] < 40
    slots.close()
    # Everything was given back: another process gets all three at once.
    other = cluster.Slots(
        store, f"burst-{backend.queue_name}", 3, hold=30, redis_url=backend.queue_url
    )
    tokens = [other.try_acquire() for _ in range(3)]
    assert all(tokens)
    for token in tokens:
        other.release(str(token))


def test_a_slot_is_handed_over_a_bounded_number_of_times(store: Store, backend: Any) -> None:
    slots = cluster.Slots(
        store, f"reuse-{backend.queue_name}", 1, hold=30, redis_url=backend.queue_url, reuse=3
    )
    released: list[str] = []
    plain = slots.release

    def counted(token: str) -> None:
        released.append(token)
        plain(token)

    slots.release = counted  # type: ignore[method-assign]
    _hammer(slots, threads=4, calls=6, hold_s=0.005)
    # 24 calls on one slot, each token used 3 times at most: other processes get their turn.
    assert len(released) >= 24 // 3


def test_local_slots_cap_this_process() -> None:
    most, done = _hammer(cluster.LocalSlots(4), threads=10, calls=5, hold_s=0.01)
    assert (most, done) == (4, 50)
    with pytest.raises(TimeoutError):
        gate = cluster.LocalSlots(1)
        with gate.held(), gate.held(deadline=time.monotonic() + 0.05):
            pass


def test_batched_rate_grants_never_pass_the_limit(store: Store) -> None:
    """Two processes' limiters, taking 4 grants per round trip, in one frozen window."""
    clock = [1000.0]
    limiters = [
        RateLimiter(DatabaseWindows(store), "acct:labels:s", 10, clock=lambda: clock[0], batch=4)
        for _ in range(2)
    ]
    granted = 0
    for _ in range(20):
        for limiter in limiters:
            granted += limiter._one()
    assert granted == 10
    clock[0] += 1.0  # the next window: grants again
    assert limiters[0]._one() and limiters[1]._one()


def test_sqlite_writers_of_one_process_queue_instead_of_failing(tmp_path: Path) -> None:
    """Many threads writing at once, with no busy timeout at all: none gets 'database is
    locked' (the next writer is let in only once the COMMIT has run, not when SQLAlchemy
    announces it), and a rolled-back write gives the queue back."""
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(60):
                with store.session() as session:
                    session.execute(text("PRAGMA busy_timeout=0"))  # the database gives up
                    session.add(Watermark(source=f"t{n}-{k}", value="x"))
                    session.flush()
                    if k % 3 == 0:
                        time.sleep(0.001)  # Python work inside the write transaction
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(ClusterState(name="x", state="turn"))
        session.flush()
        raise RuntimeError("rolled back")
    with store.session() as session:  # not blocked: the failed writer gave the queue back
        assert session.scalar(select(func.count()).select_from(Watermark)) == 480
        session.add(ClusterState(name="y", state="turn"))
    store.dispose()


class _PagedRuntime:
    """Detection of three pages, the second one slow: what the runner queues, and when."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queued_at: dict[int, float] = {}
        self.page_done: list[float] = []

    def detect(self, on_ids: Any = None) -> list[int]:
        ids: list[int] = []
        for page in ([1, 2], [3], [4, 5]):
            time.sleep(0.2)
            self.page_done.append(time.monotonic())
            if on_ids is not None:
                on_ids(page)
            ids.extend(page)
        return ids

    def flush(self) -> Any:
        return None


def test_detection_queues_each_page_as_soon_as_it_is_recorded(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    runtime = _PagedRuntime(store)
    runner = Runner(runtime, lambda i: runtime.queued_at.setdefault(i, time.monotonic()))
    assert runner.detect() == 5
    assert runtime.queued_at[1] < runtime.page_done[1]  # page 1 queued before page 2 was read
    assert runtime.queued_at[3] < runtime.page_done[2]
    store.dispose()


def test_what_is_left_is_a_workable_shipment_a_verification_or_a_pending_write(
    store: Store,
) -> None:
    """`run --until-idle` asks this every quarter second: one indexed row, no count."""
    import datetime as dt

    from chronoforce.pipeline.runner import labels_left, writes_left
    from chronoforce.store.models import Outbox, Shipment

    with store.session() as session:
        session.add(Shipment(sf_object="Order", sf_id="801000000000001AAA", state="labeled"))
    assert not labels_left(store) and not writes_left(store)
    for state, verify_at, left in (
        ("retry", None, True),
        ("labeled", dt.datetime.now(dt.UTC), True),  # a recovered label still to verify
        ("exception", None, False),
    ):
        with store.session() as session:
            row = session.scalars(select(Shipment)).one()
            row.state, row.verify_at = state, verify_at
        assert labels_left(store) is left, state
    with store.session() as session:
        outbox = Outbox(
            dedup_key="k", sf_object="Order", sf_id="801000000000001AAA", operation="update",
            payload={}, next_attempt_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )  # fmt: skip
        session.add(outbox)
    assert writes_left(store), "a write backing off is still a write left"
    with store.session() as session:
        session.scalars(select(Outbox)).one().state = "sent"
    assert not writes_left(store)


def test_a_slot_goes_to_a_thread_of_this_process_waiting_on_the_shared_store(
    store: Store, backend: Any
) -> None:
    """Another process holds half the slots: this one's threads pass its local cap and wait on
    the shared store. A finishing thread hands its slot to one of them, not back to the store."""
    key = f"shared-{backend.queue_name}"
    other = cluster.Slots(store, key, 4, hold=30, redis_url=backend.queue_url)
    theirs = [other.try_acquire(), other.try_acquire()]
    assert all(theirs)
    ours = cluster.Slots(store, key, 4, hold=30, redis_url=backend.queue_url)
    calls = {"acquire": 0, "release": 0}
    plain_acquire, plain_release = ours.try_acquire, ours.release

    def acquire() -> str | None:
        calls["acquire"] += 1
        return plain_acquire()

    def release(token: str) -> None:
        calls["release"] += 1
        plain_release(token)

    ours.try_acquire, ours.release = acquire, release  # type: ignore[method-assign]
    most, done = _hammer(ours, threads=4, calls=10, hold_s=0.02, after_s=0.005)
    assert done == 40 and most == 2, "never more than the two slots the other left"
    # 40 calls on 2 slots handed over (20 uses each at most): a few round trips, not one or
    # more per call as when every slot went back to the store and waiters polled for it.
    assert calls["release"] <= 8, calls
    ours.close()
    for token in theirs:
        other.release(str(token))


def test_a_newcomer_whose_clock_read_came_first_does_not_pass_the_limit(
    backend: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads read the clock, the later one reaches the store first: with slots ranked by
    expiry the earlier reading ranked ahead of it and both got in. The count decides."""
    if not backend.queue_url.startswith("redis://"):
        pytest.skip("the database slots are rows taken one conditional UPDATE at a time")
    slots = cluster.Slots(
        store, f"clock-{backend.queue_name}", 1, hold=30, redis_url=backend.queue_url
    )
    now = time.time()
    monkeypatch.setattr(cluster.time, "time", lambda: now + 1.0)
    first = slots.try_acquire()
    monkeypatch.setattr(cluster.time, "time", lambda: now)
    assert first is not None
    assert slots.try_acquire() is None
    slots.release(first)
