"""Polls due shipments: bounded concurrency, shared rate limit, budget-aware order.

It never calls the carrier faster than the shared limits allow and never loses a due shipment
(a crashed round's shipments come back after the claim expires).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.orm import Session

from chronoforce.domain.errors import ChronoforceError, PermanentError, TransientError
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions
from chronoforce.pipeline.ratelimit import RateLimiter, Windows, windows_for
from chronoforce.pipeline.tracking.config import TrackingConfig
from chronoforce.pipeline.tracking.events import chunks
from chronoforce.pipeline.tracking.ingest import Tracking
from chronoforce.pipeline.tracking.planner import HOUR, URGENCY
from chronoforce.store.models import Parcel, Shipment

log = get_logger(component="tracking")
POLLED_STATES = (ShipmentState.LABELED,)


class TrackingCarrier(Protocol):
    def track(self, skybill_number: str) -> Sequence[TrackingEvent]: ...


@dataclass
class PollReport:
    shipments: int = 0
    calls: int = 0
    failed: int = 0
    new_events: int = 0
    changed: int = 0
    over_budget: bool = False
    webhook_events: int = 0  # pushed events ingested in the same round (Runtime.poll_once)
    # Issue 21 (delta.py): how the round tracked — "delta" (trackSearch, then the poller for the
    # parcels it could not cover) or "poll" (the poller alone: mode poll, or trackSearch failed).
    mode: str = "poll"
    searches: int = 0  # trackSearch calls (also counted in `calls`)
    timelines: int = 0  # trackSkybillV2 calls made because a significant event changed
    search_error: str = ""  # the error code when trackSearch failed and the poller took over


@dataclass
class Poller:
    """Polls due shipments: bounded concurrency, shared rate limit, budget-aware order."""

    tracking: Tracking
    carrier: TrackingCarrier
    account: str = "default"
    windows: Windows | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    calibrate_every: float = 300.0  # seconds of clock time between budget recalibrations
    _calibrated_at: float = -math.inf
    _last_round: float = 0.0
    # Delta tracking (delta.py): shipments a trackSearch answer covered since then are skipped.
    covered_since: dt.datetime | None = None
    _pool: ThreadPoolExecutor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def config(self) -> TrackingConfig:
        return self.tracking.config

    def __post_init__(self) -> None:
        store = self.tracking.store
        self.windows = self.windows or windows_for(store, self.config.rate_limit_url)
        per_second = self.config.calls_per_second
        self.rate = (
            RateLimiter(self.windows, f"{self.account}:s", max(1, int(per_second)), 1.0,
                        self.clock, self.sleep)
            if per_second else None
        )  # fmt: skip
        budget = self.config.calls_per_hour
        self.hourly = (
            RateLimiter(self.windows, f"{self.account}:h", budget, HOUR, self.clock, self.sleep)
            if budget else None
        )  # fmt: skip

    def poll_once(self) -> PollReport:
        """One round: the most urgent due shipments the budget allows, tracked and ingested."""
        report = PollReport()
        now = self.tracking.now()
        self._maybe_calibrate()
        due = self._due(now)
        due = self._within_budget(due, report)
        claimed = self._claim(due, now)
        if not claimed:
            return report
        skybills = [s for _, numbers in claimed for s in numbers]
        results = list(self._executor().map(self._track, skybills))
        events = [e for found in results if not isinstance(found, ChronoforceError) for e in found]
        failed = {
            s: r for s, r in zip(skybills, results, strict=True) if isinstance(r, ChronoforceError)
        }
        ids = [shipment_id for shipment_id, _ in claimed]
        with self.tracking.store.session() as session:
            ingested = self.tracking.ingest_in(session, events, "poll", polled=ids)
            self._settle_failures(session, claimed, failed, now)
        report.shipments, report.calls, report.failed = len(claimed), len(skybills), len(failed)
        report.new_events, report.changed = ingested.new_events, len(ingested.changed)
        return report

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.config.concurrency, thread_name_prefix="cf-track"
                )
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _track(self, skybill: str) -> Sequence[TrackingEvent] | ChronoforceError:
        if self.rate is not None:
            self.rate.acquire()
        try:
            return tuple(self.carrier.track(skybill))
        except ChronoforceError as exc:
            return exc.with_context(operation="tracking.poll")

    def _maybe_calibrate(self) -> None:
        if self.config.calls_per_hour is None:
            return
        if self.clock() - self._calibrated_at < self.calibrate_every:
            return
        with self.tracking.store.session() as session:
            counts = session.execute(
                select(Shipment.status, func.count(Parcel.id))
                .join(Parcel, Parcel.shipment_id == Shipment.id)
                .where(
                    Shipment.state.in_(POLLED_STATES),
                    Shipment.next_poll_at.is_not(None),
                    Parcel.live,
                )
                .group_by(Shipment.status)
            ).all()
        population = {ShipmentStatus(s): int(n) for s, n in counts}
        assert self.tracking.planner is not None
        self.tracking.planner.calibrate(population)
        self._calibrated_at = self.clock()

    def _due(self, now: dt.datetime) -> list[tuple[int, list[str]]]:
        from sqlalchemy import case

        urgency = case(URGENCY, value=Shipment.status, else_=9)
        with self.tracking.store.session() as session:
            ids = list(
                session.scalars(
                    select(Shipment.id)
                    .where(Shipment.state.in_(POLLED_STATES), Shipment.next_poll_at <= now)
                    .where(self._not_covered())
                    .order_by(urgency, Shipment.next_poll_at, Shipment.id)
                    .limit(self.config.batch_size)
                )
            )
            numbers: dict[int, list[str]] = defaultdict(list)
            for part in chunks(ids):
                for shipment_id, skybill in session.execute(
                    select(Parcel.shipment_id, Parcel.skybill_number)
                    .where(Parcel.shipment_id.in_(part), Parcel.live)
                    .order_by(Parcel.position)
                ):
                    numbers[shipment_id].append(skybill)
        return [(i, numbers[i]) for i in ids]

    def _not_covered(self) -> ColumnElement[bool]:
        if self.covered_since is None:
            return true()
        return or_(Shipment.searched_at.is_(None), Shipment.searched_at < self.covered_since)

    def _within_budget(
        self, due: list[tuple[int, list[str]]], report: PollReport
    ) -> list[tuple[int, list[str]]]:
        """Never past the hourly budget, and per round at most twice the even share of the time
        since the last round: a backlog drains without burning the hour in one burst."""
        clock = self.clock()
        elapsed = min(HOUR, clock - self._last_round) if self._last_round > 0 else 60.0
        self._last_round = clock
        budget = self.config.calls_per_hour
        if self.hourly is None or budget is None or not due:
            return due
        wanted = sum(len(n) for _, n in due)
        share = math.ceil(2 * budget * elapsed / HOUR)
        granted = self.hourly.take(min(wanted, share))
        kept: list[tuple[int, list[str]]] = []
        used = 0
        for shipment_id, numbers in due:
            if used + len(numbers) > granted:
                break
            kept.append((shipment_id, numbers))
            used += len(numbers)
        report.over_budget = len(kept) < len(due)
        return kept

    def _claim(
        self, due: list[tuple[int, list[str]]], now: dt.datetime
    ) -> list[tuple[int, list[str]]]:
        """Push the chosen shipments' next poll out first: a second poller skips them."""
        if not due:
            return []
        held = now + dt.timedelta(minutes=10)  # if we crash, they come back in ten minutes
        mine: set[int] = set()
        with self.tracking.store.session() as session:
            for part in chunks([i for i, _ in due]):
                mine.update(
                    session.scalars(
                        update(Shipment)
                        .where(Shipment.id.in_(part), Shipment.next_poll_at <= now)
                        .values(next_poll_at=held)
                        .returning(Shipment.id)
                        .execution_options(synchronize_session=False)
                    )
                )
        return [(i, n) for i, n in due if i in mine]

    def _settle_failures(
        self,
        session: Session,
        claimed: list[tuple[int, list[str]]],
        failed: Mapping[str, ChronoforceError],
        now: dt.datetime,
    ) -> None:
        retry = now + dt.timedelta(minutes=self.config.error_retry_minutes)
        for shipment_id, numbers in claimed:
            errors = [failed[s] for s in numbers if s in failed]
            if not errors:
                continue
            shipment = session.get_one(Shipment, shipment_id)
            shipment.next_poll_at = retry
            permanent = [e for e in errors if isinstance(e, PermanentError)]
            if permanent:
                exceptions.record(
                    session, permanent[0], operation="tracking.poll", shipment=shipment, now=now,
                    write_to_salesforce=False,
                )  # fmt: skip
            log.warning(
                "tracking poll failed",
                shipment_id=shipment_id,
                code=errors[0].code,
                transient=isinstance(errors[0], TransientError),
            )
