"""One machine's loop: detect orders, keep the queue fed, flush the outbox — until told to stop.

Workers (huey consumer threads) label shipments; this loop only decides *what* is due. The
sweep re-enqueues any workable shipment whose lease is free, so a task lost in a crash delays
work by one sweep at most.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, or_, select

from chronoforce.logs import get_logger
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Shipment

log = get_logger(component="runner")


class RuntimeLike(Protocol):
    store: Store

    def detect(self) -> list[int]: ...

    def flush(self) -> Any: ...


def due_shipments(store: Store, now: dt.datetime, limit: int = 5000) -> list[int]:
    """Workable shipments nobody holds: new, due for retry, or interrupted mid-call."""
    with store.session() as session:
        statement = (
            select(Shipment.id)
            .where(
                Shipment.state.in_(("pending", "retry", "calling")),
                or_(Shipment.next_attempt_at.is_(None), Shipment.next_attempt_at <= now),
                or_(Shipment.lease_expires_at.is_(None), Shipment.lease_expires_at < now),
            )
            .order_by(Shipment.id)
            .limit(limit)
        )
        return list(session.scalars(statement))


def work_left(store: Store, now: dt.datetime) -> dict[str, int]:
    """What still has to happen: labels to make and Salesforce writes to send."""
    with store.session() as session:
        labels = session.scalar(
            select(func.count())
            .select_from(Shipment)
            .where(Shipment.state.in_(("pending", "retry", "calling")))
        )
        writes = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.state == "pending")
        )
    return {"labels": int(labels or 0), "writes": int(writes or 0)}


@dataclass
class Runner:
    runtime: RuntimeLike
    enqueue: Callable[[int], Any]
    detect_every: float = 5.0
    flush_every: float = 2.0
    sweep_every: float = 3.0
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    stop_event: threading.Event = field(default_factory=threading.Event)
    _enqueued: dict[int, float] = field(default_factory=dict)

    def sweep(self) -> int:
        """Enqueue due shipments not enqueued in the last minute (duplicates are harmless)."""
        fresh = 0
        clock = time.monotonic()
        for shipment_id in due_shipments(self.runtime.store, self.now()):
            if clock - self._enqueued.get(shipment_id, -1e9) > 60:
                self.enqueue(shipment_id)
                self._enqueued[shipment_id] = clock
                fresh += 1
        return fresh

    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> None:
        started = time.monotonic()
        next_detect = next_flush = next_sweep = 0.0
        idle_since: float | None = None
        while not self.stop_event.is_set():
            clock = time.monotonic()
            if max_seconds is not None and clock - started > max_seconds:
                log.warning("runner stopped: time limit", seconds=max_seconds)
                return
            if clock >= next_detect:
                for shipment_id in self.runtime.detect():
                    self.enqueue(shipment_id)
                    self._enqueued[shipment_id] = clock
                next_detect = clock + self.detect_every
            if clock >= next_sweep:
                self.sweep()
                next_sweep = clock + self.sweep_every
            if clock >= next_flush:
                self.runtime.flush()
                next_flush = clock + self.flush_every
            if until_idle:
                left = work_left(self.runtime.store, self.now())
                if left["labels"] == 0 and left["writes"] == 0:
                    idle_since = idle_since or clock
                    if clock - idle_since >= 0.5:
                        return
                else:
                    idle_since = None
            self.stop_event.wait(0.2)
