"""The periodic jobs of a cluster — detect, poll, flush, sweep — each run once per period.

Whichever process wins a job's `cluster_state` turn runs it (cluster.Turns), so `chronoforce
run` on one machine and any number of `chronoforce worker` processes share the same loop. Workers
(huey consumer threads) label shipments; this loop only decides *what* is due. The sweep
re-enqueues workable shipments nobody holds, so a task lost with a killed worker delays work by
`requeue_after` at most, and runs the due post-recovery lookups (`LabelPipeline.verify`).

Detection paces itself: each detection that finds nothing doubles the wait before the cluster's
next one (the `periodic:detect` turn is held that long), up to `detect_idle_max`; the first
change brings it back to `detect_every`. With a live Pub/Sub subscription (free of API calls)
it stays at `detect_every`, and the runtime slows the SOQL safety net instead.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import or_, select, update

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.shipment_state import WORKABLE, ShipmentState
from chronoforce.logs import get_logger
from chronoforce.pipeline import cluster, writeback
from chronoforce.pipeline.cadence import next_interval
from chronoforce.store.db import Store
from chronoforce.store.models import ClusterState, Outbox, Shipment

log = get_logger(component="runner")

IDLE_CHECK_S = 0.25  # how often `run --until-idle` looks whether anything is left
API_NOTE = "note:salesforce_api"  # cluster_state row: the org's API usage last seen
DETECT_TURN = "periodic:detect"  # cluster_state row of the detect job's turn (cluster.Turns)


class RuntimeLike(Protocol):
    store: Store

    def detect(self, on_ids: Callable[[list[int]], None] | None = None) -> list[int]: ...

    def flush(self) -> Any: ...


def due_shipments(
    store: Store,
    now: dt.datetime,
    limit: int = 5000,
    queued_before: dt.datetime | None = None,
) -> list[int]:
    """Workable shipments nobody holds: new, due for retry, or interrupted mid-call.

    With `queued_before`, only those not put on the queue since then (a queued task is on its
    way; queueing it again would only make the queue longer)."""
    conditions = [
        Shipment.state.in_(WORKABLE),
        or_(Shipment.next_attempt_at.is_(None), Shipment.next_attempt_at <= now),
        or_(Shipment.lease_expires_at.is_(None), Shipment.lease_expires_at < now),
    ]
    if queued_before is not None:
        conditions.append(or_(Shipment.queued_at.is_(None), Shipment.queued_at < queued_before))
    with store.session() as session:
        statement = select(Shipment.id).where(*conditions).order_by(Shipment.id).limit(limit)
        return list(session.scalars(statement))


def due_verifications(store: Store, now: dt.datetime, limit: int = 50) -> list[int]:
    with store.session() as session:
        statement = (
            select(Shipment.id)
            .where(Shipment.state == ShipmentState.LABELED, Shipment.verify_at <= now)
            .order_by(Shipment.verify_at)
            .limit(limit)
        )
        return list(session.scalars(statement))


def mark_queued(store: Store, ids: list[int], now: dt.datetime) -> None:
    for start in range(0, len(ids), 500):
        with store.session() as session:
            session.execute(
                update(Shipment)
                .where(Shipment.id.in_(ids[start : start + 500]))
                .values(queued_at=now)
                .execution_options(synchronize_session=False)
            )


def labels_left(store: Store) -> bool:
    """Some label is still to make or to verify (cheaper than counting: `run` asks often)."""
    with store.session() as session:
        found = session.scalar(select(Shipment.id).where(Shipment.state.in_(WORKABLE)).limit(1))
        if found is None:
            found = session.scalar(
                select(Shipment.id).where(Shipment.verify_at.is_not(None)).limit(1)
            )
    return found is not None


def writes_left(store: Store) -> bool:
    """Some Salesforce write is waiting, due or backing off."""
    with store.session() as session:
        found = session.scalar(select(Outbox.id).where(Outbox.state == "pending").limit(1))
    return found is not None


def writes_due(store: Store, now: dt.datetime) -> bool:
    """Some Salesforce write is waiting and due (not backing off, not held: the flusher's own
    claim query)."""
    with store.session() as session:
        return bool(writeback.due_rows(session, now, 1))


def release_turns(store: Store, owner: str) -> None:
    """A stopping process gives its periodic turns back, so the next one need not wait."""
    with store.session() as session:
        session.execute(
            update(ClusterState)
            .where(ClusterState.name.like("periodic:%"), ClusterState.owner == owner)
            .values(owner=None, expires_at=None)
            .execution_options(synchronize_session=False)
        )


@dataclass
class Runner:
    runtime: RuntimeLike
    enqueue: Callable[[int], Any]
    detect_every: float = 5.0
    detect_idle_max: float = 60.0  # the longest wait between idle detections (cadence.py)
    flush_every: float = 2.0
    sweep_every: float = 3.0
    poll_every: float | None = 30.0  # None: no tracking polls from this loop
    requeue_after: float = 60.0  # a queued task not started by then is queued again
    now: Callable[[], dt.datetime] = SYSTEM_CLOCK.now
    stop_event: threading.Event = field(default_factory=threading.Event)
    owner: str = field(default_factory=lambda: f"r-{uuid.uuid4().hex[:8]}")
    _ticked: dict[str, float] = field(default_factory=dict, init=False, repr=False)  # job → start
    # of its last finished tick (monotonic)

    @property
    def store(self) -> Store:
        return self.runtime.store

    def jobs(self) -> dict[str, tuple[float, Callable[[], Any]]]:
        jobs: dict[str, tuple[float, Callable[[], Any]]] = {
            "detect": (self.detect_every, self.detect),
            "sweep": (self.sweep_every, self.sweep),
            "flush": (self.flush_every, self.flush),
        }
        if self.poll_every is not None:
            jobs["poll"] = (self.poll_every, self.poll)
        return jobs

    # --- the jobs ------------------------------------------------------------------------

    def detect(self) -> int:
        """Record new intents and queue them (not while Salesforce calls are paused)."""
        if cluster.paused_until(self.store, writeback.PAUSE, self.now()) is not None:
            return 0
        # Each page is queued as soon as it is recorded: labels start while later pages load.
        found = len(self.runtime.detect(self._enqueue))
        self.pace_detection(changed=found > 0)
        return found

    def pace_detection(self, *, changed: bool) -> float:
        """Hold the cluster's detect turn for the next wait (cadence.next_interval); returns it.

        The wait lives in the turn's row, so every process of the cluster backs off together
        and one process's change brings all of them back to full speed."""
        alive = bool(getattr(self.runtime, "events_alive", False))
        with self.store.session() as session:
            row = session.get(ClusterState, DETECT_TURN)
            if row is None:
                return self.detect_every
            data = dict(row.data or {})
            previous = float(data.get("interval") or self.detect_every)
            interval = next_interval(
                previous, changed or alive, self.detect_every, self.detect_idle_max
            )
            row.data = {**data, "interval": interval}
            if row.owner == self.owner:
                row.expires_at = self.now() + dt.timedelta(seconds=interval)
        return interval

    def sweep(self) -> int:
        """Queue every due shipment nobody holds and nobody queued lately; verify recovered
        labels whose time has come."""
        now = self.now()
        ids = due_shipments(
            self.store, now, queued_before=now - dt.timedelta(seconds=self.requeue_after)
        )
        self._enqueue(ids)
        verify = getattr(getattr(self.runtime, "labels", None), "verify", None)
        if verify is not None:
            for shipment_id in due_verifications(self.store, now):
                verify(shipment_id)
        cancel_due = getattr(self.runtime, "cancel_due", None)
        if cancel_due is not None:
            cancel_due()  # cancels asked inside Chronopost's cancel window, now open
        pod_due = getattr(self.runtime, "pod_due", None)
        if pod_due is not None:
            pod_due()  # proofs of delivery due (pipeline/pod.py, issue 21)
        return len(ids)

    def flush(self) -> Any:
        # Runtime.flush claims rows for the configured lease, so a killed flusher's rows come
        # back that soon; Cases created here are linked by the next poll, sent by the next flush.
        report = self.runtime.flush()
        usage = _api_usage(self.runtime)
        if usage is not None:
            cluster.note(self.store, API_NOTE, usage)
        return report

    def poll(self) -> Any:
        poll_once = getattr(self.runtime, "poll_once", None)
        return poll_once() if poll_once is not None else None

    def _enqueue(self, ids: list[int]) -> None:
        if not ids:
            return
        mark_queued(self.store, ids, self.now())  # before: a fast worker must not see it stale
        for shipment_id in ids:
            self.enqueue(shipment_id)

    # --- the loop ------------------------------------------------------------------------

    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> None:
        """Each periodic job loops on a thread of its own, taking its cluster turns, so a long
        one (detecting a burst of thousands of orders, a tracking round) never holds back the
        others: labels made while detection still reads are written back on time."""
        done = threading.Event()
        self._ticked.clear()

        def stopped() -> bool:
            return self.stop_event.is_set() or done.is_set()

        loops = [
            threading.Thread(
                target=self._loop, args=(name, job, stopped), name=f"cf-{name}", daemon=True
            )
            for name, job in self.jobs().items()
        ]
        started = time.monotonic()
        idle_since: float | None = None
        looked = 0.0
        try:
            for loop in loops:
                loop.start()
            while not self.stop_event.is_set():
                clock = time.monotonic()
                if max_seconds is not None and clock - started > max_seconds:
                    log.warning("runner stopped: time limit", seconds=max_seconds)
                    return
                if until_idle and clock - looked >= IDLE_CHECK_S:
                    looked = clock
                    try:
                        busy = labels_left(self.store) or writes_left(self.store)
                    except Exception as exc:  # the database went away: look again later
                        _log_error("idle check", exc)
                        busy = True
                    if not busy:
                        idle_since = idle_since or clock
                        # Idle once every job has had a full tick since: the first detection
                        # runs on its own thread and may not have recorded anything yet.
                        ticked = [self._ticked.get(name, -1.0) for name in self.jobs()]
                        if clock - idle_since >= 0.5 and min(ticked) >= idle_since:
                            return
                    else:
                        idle_since = None
                self.stop_event.wait(0.1)
        finally:
            done.set()
            for loop in loops:
                loop.join(timeout=60)
            try:
                release_turns(self.store, self.owner)
            except Exception as exc:
                _log_error("release", exc)

    def _loop(
        self, name: str, job: tuple[float, Callable[[], Any]], stopped: Callable[[], bool]
    ) -> None:
        turns = cluster.Turns(
            self.store, {name: job}, owner=self.owner, on_error=_log_error, stopped=stopped
        )
        looked = 0.0
        while not stopped():
            began = time.monotonic()
            try:
                ran = turns.tick()
                if name == "flush" and not ran and began - looked >= 0.5:
                    looked = began
                    self._flush_if_idle()
            except Exception as exc:  # the database went away: try again next tick
                _log_error("tick", exc)
            self._ticked[name] = began
            self.stop_event.wait(0.1)

    def _flush_if_idle(self) -> None:
        """No label left to make but writes due: send them now, not at the period's end (no
        label still to come could share their collections)."""
        now = self.now()
        if not labels_left(self.store) and writes_due(self.store, now):
            self.flush()


def _log_error(job: str, exc: BaseException) -> None:
    log.warning("periodic job failed", job=job, error=str(exc)[:500], type=type(exc).__name__)


def _api_usage(runtime: Any) -> dict[str, Any] | None:
    usage = getattr(getattr(runtime, "salesforce", None), "usage", None)
    if usage is None or not hasattr(usage, "used"):
        return None
    return {"used": int(usage.used), "max": int(usage.max)}
