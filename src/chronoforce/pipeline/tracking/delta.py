"""Delta tracking (issue 21): one trackSearch per contract tells which parcels moved; only those
get their full events; the per-parcel poller stays the fallback.

A round (`DeltaTracker.poll_once`) asks trackSearch ([D] §2.6.3.a; [S] §3.17) for every parcel
(`ANY`, see SEARCH_STATE) over the deposit window of our live parcels, per account
(`ALL` sub-accounts when several of ours share it). Each answered parcel's significant event is
compared with the last one seen (parcel.significant_code/at, migration 0013): a new one goes
through the one ingestion path (ingest.py: dedup, status, fingerprint, delta Salesforce writes)
as an event of its own. Full events (trackSkybillV2) are fetched, within the hourly budget, only
where a timeline matters: the new status is a delivery, a failed delivery, an exception or
terminal, or a parcel we saw before is missing from the answer. Parcels
the answer does not account for (never seen by a search yet) and every parcel when trackSearch
fails stay with the per-parcel poller (poller.py), which skips shipments a search covered in
the last `3 × search_minutes`. The choice of each round is logged and reported (PollReport).

The decision functions (`decide`, `deposit_windows`, `search_targets`, `timeline_order`) are
pure: bench/bench_tracking_week.py runs them on simulated answers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from chronoforce.chronopost.config import ChronopostCredentials
from chronoforce.chronopost.track_search import ALL_SUB_ACCOUNTS, SearchedParcel
from chronoforce.domain.errors import ChronoforceError, TransientError
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import TERMINAL_STATUSES, map_event
from chronoforce.logs import get_logger
from chronoforce.pipeline.tracking.config import TrackingConfig
from chronoforce.pipeline.tracking.events import chunks, utc
from chronoforce.pipeline.tracking.planner import HOUR
from chronoforce.pipeline.tracking.poller import POLLED_STATES, Poller, PollReport
from chronoforce.store.models import Parcel, Shipment

log = get_logger(component="tracking")
PARIS = ZoneInfo("Europe/Paris")  # Chronopost's deposit days are French days
# [D] §2.6.3.a. ANY, not NONDISTRIBUES: a delivery must show as the significant event D in the
# answer itself; with NONDISTRIBUES the parcel would only vanish and its delivery would wait
# for a trackSkybillV2 the budget may not pay at the morning peak (bench_tracking_week).
SEARCH_STATE = "ANY"
# No maximum window is documented ([D], [S]; SPEC-FACTS §7): we ask at most 31 days per call,
# the sandbox's limit (docs/tracking.md, "Delta tracking with trackSearch").
MAX_WINDOW_DAYS = 31
# A status that deserves the parcel's full events when its significant event brings it.
TIMELINE_STATUSES = frozenset(
    {ShipmentStatus.DELIVERY_ATTEMPTED, ShipmentStatus.EXCEPTION} | set(TERMINAL_STATUSES)
)
# Order of the timeline calls when the budget cannot pay them all (lower first).
_TIMELINE_URGENCY = {
    ShipmentStatus.DELIVERED: 0,
    ShipmentStatus.DELIVERY_ATTEMPTED: 1,
    ShipmentStatus.EXCEPTION: 2,
}


class SearchCarrier(Protocol):
    """What delta tracking needs of the carrier (ChronopostClient has it)."""

    def track(self, skybill_number: str) -> Sequence[TrackingEvent]: ...

    def track_search(
        self,
        first: dt.date,
        last: dt.date,
        state: str = "ANY",
        *,
        credentials: ChronopostCredentials | None = None,
        service_code: str | None = None,
    ) -> Sequence[SearchedParcel]: ...


# --- pure decisions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveParcel:
    """A live parcel of ours as delta tracking sees it."""

    skybill: str
    shipment_id: int
    deposited: dt.date  # Paris day of the label
    significant: tuple[str, dt.datetime] | None = None  # last (code, UTC time) a search showed


@dataclass
class Decision:
    """What one trackSearch answer means for our live parcels."""

    ingest: list[TrackingEvent] = field(default_factory=list)  # new significant events
    timeline: list[str] = field(default_factory=list)  # full events wanted, most urgent first
    seen: dict[str, TrackingEvent] = field(default_factory=dict)  # significant to remember
    covered: set[str] = field(default_factory=set)  # parcels the answer accounts for


def deposit_day(moment: dt.datetime) -> dt.date:
    return utc(moment).astimezone(PARIS).date()


def deposit_windows(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The live parcels' deposit window, a day wider each side (our label time and the
    carrier's deposit day may straddle midnight), cut into pieces of MAX_WINDOW_DAYS."""
    chosen = sorted(set(days))
    if not chosen:
        return []
    first, last = chosen[0] - dt.timedelta(days=1), chosen[-1] + dt.timedelta(days=1)
    windows = []
    while first <= last:
        end = min(last, first + dt.timedelta(days=MAX_WINDOW_DAYS))
        windows.append((first, end))
        first = end + dt.timedelta(days=1)
    return windows


def search_targets(
    every: Sequence[ChronopostCredentials],
) -> list[tuple[ChronopostCredentials, str]]:
    """One search per account: its one sub-account ("" = 000, [S] §3.17), or ALL when several
    of our contracts share the account number."""
    by_account: dict[str, list[ChronopostCredentials]] = defaultdict(list)
    for credentials in every:
        by_account[credentials.account_number.strip()].append(credentials)
    targets = []
    for group in by_account.values():
        subs = {c.sub_account.strip() for c in group}
        targets.append((group[0], subs.pop() if len(subs) == 1 else ALL_SUB_ACCOUNTS))
    return targets


def status_of(event: TrackingEvent, config: TrackingConfig) -> ShipmentStatus | None:
    return map_event(event.code, config.extra_codes).status


def _same(seen: tuple[str, dt.datetime] | None, event: TrackingEvent) -> bool:
    # Aware times compare as instants; the stored one has no microseconds (the database's).
    if seen is None or seen[0] != event.code:
        return False
    return seen[1] == event.time or seen[1] == utc(event.time).replace(microsecond=0)


def decide(
    live: Mapping[str, LiveParcel],
    answer: Mapping[str, TrackingEvent | None],
    config: TrackingConfig,
) -> Decision:
    """Compare an answer (skybill → significant event) with what we saw last."""
    decision = Decision()
    urgency: dict[str, int] = {}
    for skybill, parcel in live.items():
        if skybill in answer:
            event = answer[skybill]
            if event is None:
                continue  # listed without an event: the poller keeps it
            decision.covered.add(skybill)
            if _same(parcel.significant, event):
                continue
            decision.ingest.append(event)
            decision.seen[skybill] = event
            status = status_of(event, config)
            if config.search_timeline or status in TIMELINE_STATUSES:
                decision.timeline.append(skybill)
                urgency[skybill] = _TIMELINE_URGENCY.get(status, 3) if status else 3
        elif parcel.significant is not None:
            # Seen before, gone now (the answer left it out): its own events say why.
            decision.covered.add(skybill)
            decision.timeline.append(skybill)
            urgency[skybill] = 0
    decision.timeline.sort(key=lambda s: (urgency[s], s))
    return decision


@dataclass
class TimelineBudget:
    """The trackSkybillV2 calls delta rounds may spend: a bucket filled at 90% of what the
    searches leave of the hourly budget, holding at most two rounds' worth. Timelines can then
    never eat the calls the next searches need, even in a morning of deliveries. No budget:
    every timeline is paid."""

    budget: int | None
    searches_per_hour: float
    round_seconds: float
    tokens: float = 0.0

    @property
    def rate(self) -> float:
        if self.budget is None:
            return math.inf
        return max(0.0, 0.9 * (self.budget - self.searches_per_hour))

    def grant(self, wanted: int, elapsed_seconds: float) -> int:
        if self.budget is None:
            return wanted
        cap = max(1.0, 2 * self.rate * self.round_seconds / HOUR)
        self.tokens = min(cap, self.tokens + self.rate * max(0.0, elapsed_seconds) / HOUR)
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


def timeline_order(decision: Decision, granted: int) -> tuple[list[str], list[str]]:
    """The timelines the budget pays for this round, and those left for the next one."""
    return decision.timeline[:granted], decision.timeline[granted:]


# --- the round -----------------------------------------------------------------------------


@dataclass
class DeltaTracker:
    """A tracking round: trackSearch first, the per-parcel poller for the rest (or as fallback)."""

    poller: Poller
    carrier: Any  # a SearchCarrier with `accounts.every` (ChronopostClient)
    _searched_at: dt.datetime | None = None
    _timelines_at: float | None = None  # poller clock of the last round that paid timelines
    _budget: TimelineBudget | None = None

    @property
    def config(self) -> TrackingConfig:
        return self.poller.config

    def close(self) -> None:
        self.poller.close()

    def poll_once(self) -> PollReport:
        tracking = self.poller.tracking
        now = utc(tracking.now())
        every = (
            self.config.mode == "delta"
            and hasattr(self.carrier, "track_search")
            and tuple(getattr(getattr(self.carrier, "accounts", None), "every", ()))
        )
        if not every:
            self.poller.covered_since = None
            report = self.poller.poll_once()
            log.info("tracking round", mode="poll", reason="mode poll or no trackSearch")
            return report
        cover = dt.timedelta(minutes=3 * self.config.search_minutes)
        self.poller.covered_since = now - cover
        due = self._searched_at is None or now - self._searched_at >= dt.timedelta(
            minutes=self.config.search_minutes
        )
        report = PollReport(mode="delta")
        if due:
            try:
                self._search_round(every, now, report)
                self._searched_at = now
            except ChronoforceError as exc:
                report.mode, report.search_error = "poll", exc.code
                log.warning("trackSearch failed: per-parcel polling this round", code=exc.code)
        polled = self.poller.poll_once()
        report.shipments += polled.shipments
        report.calls += polled.calls
        report.failed += polled.failed
        report.new_events += polled.new_events
        report.changed += polled.changed
        report.over_budget = report.over_budget or polled.over_budget
        log.info(
            "tracking round",
            mode=report.mode,
            searched=due,
            searches=report.searches,
            timelines=report.timelines,
            polled=polled.calls,
            changed=report.changed,
            error=report.search_error or None,
        )
        return report

    def _live(self) -> dict[str, LiveParcel]:
        with self.poller.tracking.store.session() as session:
            rows = session.execute(
                select(
                    Parcel.skybill_number,
                    Parcel.shipment_id,
                    Parcel.created_at,
                    Parcel.significant_code,
                    Parcel.significant_at,
                )
                .join(Shipment, Parcel.shipment_id == Shipment.id)
                .where(
                    Shipment.state.in_(POLLED_STATES),
                    Shipment.next_poll_at.is_not(None),
                    Parcel.live,
                )
            ).all()
        return {
            skybill: LiveParcel(
                skybill,
                shipment_id,
                deposit_day(created),
                (code, utc(at).replace(microsecond=0)) if code and at is not None else None,
            )
            for skybill, shipment_id, created, code, at in rows
        }

    def _acquire(self, calls: int) -> int:
        """Calls granted by the hourly budget (all when there is none)."""
        if self.poller.hourly is None or calls <= 0:
            return calls
        return int(self.poller.hourly.take(calls))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.poller.rate is not None:
            self.poller.rate.acquire()
        return fn(*args, **kwargs)

    def _search_round(
        self, every: Sequence[ChronopostCredentials], now: dt.datetime, report: PollReport
    ) -> None:
        live = self._live()
        windows = deposit_windows(p.deposited for p in live.values())
        targets = search_targets(every)
        wanted = len(windows) * len(targets)
        if not wanted:
            return
        if self._acquire(wanted) < wanted:
            raise TransientError(
                "the hourly budget cannot pay this round's trackSearch calls",
                code="TRACKING_BUDGET",
                operation="tracking.search",
            )
        answer: dict[str, TrackingEvent | None] = {}
        for credentials, service_code in targets:
            for first, last in windows:
                report.searches += 1
                report.calls += 1
                found = self._call(
                    self.carrier.track_search, first, last, SEARCH_STATE,
                    credentials=credentials, service_code=service_code,
                )  # fmt: skip
                for parcel in found:
                    answer[parcel.skybill_number] = parcel.significant
        decision = decide(live, answer, self.config)
        clock = self.poller.clock()
        elapsed = clock - self._timelines_at if self._timelines_at is not None else 60.0
        self._timelines_at = clock
        per_hour = wanted * 60 / self.config.search_minutes
        if self._budget is None or self._budget.searches_per_hour != per_hour:
            self._budget = TimelineBudget(
                self.config.calls_per_hour, per_hour, 60 * self.config.search_minutes
            )
        asked = self._budget.grant(len(decision.timeline), elapsed)
        paid, _ = timeline_order(decision, self._acquire(asked))
        events = list(decision.ingest)
        fetched: set[str] = set()
        for skybill in paid:
            report.timelines += 1
            report.calls += 1
            try:
                events.extend(self._call(self.carrier.track, skybill))
                fetched.add(skybill)
            except ChronoforceError as exc:
                report.failed += 1
                log.warning("tracking timeline failed", skybill=skybill, code=exc.code)
        self._store(live, decision, events, set(decision.timeline) - fetched, now, report)

    def _store(
        self,
        live: Mapping[str, LiveParcel],
        decision: Decision,
        events: list[TrackingEvent],
        not_fetched: set[str],
        now: dt.datetime,
        report: PollReport,
    ) -> None:
        """Ingest, remember the significant events, mark the covered shipments."""
        with self.poller.tracking.store.session() as session:
            ingested = self.poller.tracking.ingest_in(session, events, "search")
            for skybill, event in decision.seen.items():
                if skybill in not_fetched:
                    continue  # its timeline is still owed: compare again next round
                session.execute(
                    update(Parcel)
                    .where(Parcel.skybill_number == skybill)
                    .values(
                        significant_code=event.code[:10],
                        significant_at=utc(event.time).replace(microsecond=0),
                    )
                )
            by_shipment: dict[int, list[str]] = defaultdict(list)
            for parcel in live.values():
                by_shipment[parcel.shipment_id].append(parcel.skybill)
            covered = [
                i for i, skybills in by_shipment.items() if set(skybills) <= decision.covered
            ]
            terminal = [s.value for s in TERMINAL_STATUSES]
            for part in chunks(covered):
                session.execute(
                    update(Shipment)
                    .where(Shipment.id.in_(part))
                    .values(searched_at=now)
                    .execution_options(synchronize_session=False)
                )
                # A terminal shipment the searches watched through its grace period needs no
                # last per-parcel look: the search was that look (planner: terminal_grace).
                session.execute(
                    update(Shipment)
                    .where(
                        Shipment.id.in_(part),
                        Shipment.status.in_(terminal),
                        Shipment.next_poll_at <= now,
                    )
                    .values(next_poll_at=None)
                    .execution_options(synchronize_session=False)
                )
        report.shipments += len(covered)
        report.new_events += ingested.new_events
        report.changed += len(ingested.changed)


def tracking_round(poller: Poller, carrier: Any) -> DeltaTracker:
    """The round Runtime and the CLI run: delta (trackSearch) or poll, per `tracking.mode`."""
    return DeltaTracker(poller, carrier)
