"""Tracking freshness: how far the Salesforce status lags the carrier's events under a fixed
carrier call budget, adaptive planning (pipeline/tracking/planner.py) vs fixed-interval polling.

N active parcels (default 10,000; `python -m bench.bench_tracking 5000`) live the Chronopost
sandbox's scenarios (its event codes and hours, sandbox/chronopost/tables.py SCENARIOS, each gap
jittered so no planner can know it exactly), labelled over the first day; a simulated clock
advances 96 hours in 5-minute poll rounds. Each round does what `Poller.poll_once` does: the due
parcels, most urgent first, as many as the hourly budget's share allows (the same rule as
`Poller._within_budget`); a polled parcel sees its events up to now, domain/status.py resolves
its status, the planner plans its next look (`PollPlanner.next_poll_at`, calibrated every 30
minutes like the Poller). Both strategies see the same timelines under the same budget; only
`next_poll_at` differs. Staleness of a status change = the round that saw it (its Salesforce
write is flushed in that round) minus the event's time; never seen = censored at the horizon.
It runs in memory (no database, no HTTP): the DB-backed poller is tested in tests/, here only
the planning is compared, at a scale HTTP could not replay in minutes.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import report
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import resolve_status
from chronoforce.pipeline.tracking import PollPlanner, TrackingConfig
from chronoforce.pipeline.tracking.planner import URGENCY
from chronoforce.sandbox.chronopost.tables import SCENARIOS

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
HORIZON = dt.timedelta(hours=96)
ROUND = dt.timedelta(minutes=5)
CALIBRATE_EVERY = dt.timedelta(minutes=30)
# Share of each sandbox scenario among the parcels (most parcels are simply delivered).
MIX = {
    "delivered": 0.70,
    "absent": 0.07,
    "relay": 0.10,
    "refused": 0.02,
    "address_incorrect": 0.02,
    "damaged": 0.02,
    "customs": 0.03,
    "anomaly": 0.01,
    "return_to_sender": 0.03,
}
ABSENT_RETRY_H = 21.0  # the sandbox's "next working day" retry, about a day after P


def timelines(n: int, seed: int = 7) -> list[list[TrackingEvent]]:
    rng = random.Random(seed)
    names, weights = list(MIX), list(MIX.values())
    result = []
    for i in range(n):
        skybill = f"XY{i:09d}FR"
        created = T0 + dt.timedelta(hours=rng.uniform(0, 24))
        events: list[TrackingEvent] = []
        at, previous = created, 0.0
        for code, hours in SCENARIOS[rng.choices(names, weights)[0]]:
            gap = (ABSENT_RETRY_H if hours < 0 else hours - previous) * rng.uniform(0.5, 1.5)
            previous = previous + gap if hours < 0 else hours
            at += dt.timedelta(hours=gap)
            events.append(TrackingEvent(skybill, code, code, at.replace(microsecond=0)))
        result.append(events)
    return result


class FixedPlanner(PollPlanner):
    """The baseline: every active parcel polled at one interval, sized to the same budget."""

    hours: float = 1.0

    def interval(self, status: ShipmentStatus) -> dt.timedelta | None:
        return None if self.ideal_hours(status) is None else dt.timedelta(hours=self.hours)

    def next_poll_at(
        self, status: ShipmentStatus, last_event_at: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        interval = self.interval(status)
        return None if interval is None else now + interval

    def calibrate(self, parcels_by_status: dict[ShipmentStatus, int]) -> float:  # type: ignore[override]
        active = sum(n for s, n in parcels_by_status.items() if self.ideal_hours(s) is not None)
        self.hours = max(5 / 60, active / (0.9 * (self.config.calls_per_hour or 1)))
        return self.hours


@dataclass
class Parcel:
    events: list[TrackingEvent]
    status: ShipmentStatus = ShipmentStatus.LABEL_CREATED
    seen: int = 0  # events seen so far
    last_event_at: dt.datetime | None = None
    next_poll_at: dt.datetime | None = None
    # status-change event index → when a poll first showed it
    seen_at: dict[int, dt.datetime] = field(default_factory=dict)


def simulate(strategy: str, lines: list[list[TrackingEvent]], budget: int) -> dict[str, object]:
    config = TrackingConfig(calls_per_second=None, calls_per_hour=budget)
    planner = FixedPlanner(config) if strategy == "fixed" else PollPlanner(config)
    parcels = [Parcel(events) for events in lines]
    heap: list[tuple[dt.datetime, int]] = []
    for i, p in enumerate(parcels):
        p.next_poll_at = p.events[0].time + dt.timedelta(hours=1)  # as labels.py plans it
        heap.append((p.next_poll_at, i))
    heapq.heapify(heap)
    now, calibrated, last_round = T0, T0 - CALIBRATE_EVERY, T0
    hour_start, used_this_hour, calls = T0, 0, 0
    started = time.monotonic()
    while now < T0 + HORIZON:
        if now - calibrated >= CALIBRATE_EVERY:
            population = Counter(
                p.status for p in parcels if p.next_poll_at is not None and p.events[0].time <= now
            )  # the parcels labelled so far, as the Poller counts them
            planner.calibrate(dict(population))
            calibrated = now
        if now - hour_start >= dt.timedelta(hours=1):
            hour_start, used_this_hour = now, 0
        due: list[tuple[int, dt.datetime, int]] = []
        while heap and heap[0][0] <= now:
            at, i = heapq.heappop(heap)
            if parcels[i].next_poll_at == at:  # skip superseded entries
                due.append((URGENCY.get(parcels[i].status.value, 9), at, i))
        due.sort()
        # Poller._within_budget: never past the hour's budget, at most twice the even share.
        elapsed = (now - last_round).total_seconds() or ROUND.total_seconds()
        share = math.ceil(2 * budget * elapsed / 3600)
        granted = max(0, min(len(due), share, budget - used_this_hour))
        last_round = now
        for _, at, i in due[granted:]:
            heapq.heappush(heap, (at, i))  # still due next round
        for _, _, i in due[:granted]:
            poll(parcels[i], planner, now)
            if parcels[i].next_poll_at is not None:
                heapq.heappush(heap, (parcels[i].next_poll_at, i))
        used_this_hour += granted
        calls += granted
        now += ROUND
    return {"parcels": parcels, "calls": calls, "seconds": time.monotonic() - started}


def poll(parcel: Parcel, planner: PollPlanner, now: dt.datetime) -> None:
    visible = sum(1 for e in parcel.events if e.time <= now)
    if visible > parcel.seen:
        resolved = resolve_status(parcel.events[:visible])
        for index in range(parcel.seen, visible):
            parcel.seen_at.setdefault(index, now)
        parcel.seen = visible
        parcel.last_event_at = parcel.events[visible - 1].time
        parcel.status = resolved.status
    parcel.next_poll_at = planner.next_poll_at(parcel.status, parcel.last_event_at, now)


def status_changes(events: list[TrackingEvent]) -> list[int]:
    """Indexes of the events that change the normalized status Salesforce shows."""
    changes, status = [], ShipmentStatus.LABEL_CREATED
    for index in range(len(events)):
        new = resolve_status(events[: index + 1]).status
        if new is not status:
            changes.append(index)
            status = new
    return changes


def staleness(parcels: list[Parcel]) -> tuple[list[float], dict[str, list[float]]]:
    end = T0 + HORIZON
    every: list[float] = []
    by_status: dict[str, list[float]] = {}
    for parcel in parcels:
        for index in status_changes(parcel.events):
            event = parcel.events[index]
            if event.time > end:
                continue
            minutes = (parcel.seen_at.get(index, end) - event.time).total_seconds() / 60
            every.append(minutes)
            status = resolve_status(parcel.events[: index + 1]).status.value
            by_status.setdefault(status, []).append(minutes)
    return every, by_status


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "mean_min": round(statistics.fmean(values), 1),
        "p50_min": quantile(values, 0.5),
        "p95_min": quantile(values, 0.95),
        "changes": len(values),
    }


def main(n: int) -> None:
    budget = max(100, n // 4)  # carrier calls an hour for the account: 2,500 for 10,000
    lines = timelines(n)
    results: dict[str, dict[str, object]] = {}
    for strategy in ("fixed", "adaptive"):
        outcome = simulate(strategy, lines, budget)
        every, by_status = staleness(outcome["parcels"])  # type: ignore[arg-type]
        results[strategy] = {
            "carrier_calls": outcome["calls"],
            "calls_per_hour": round(int(outcome["calls"]) / (HORIZON / dt.timedelta(hours=1)), 1),  # type: ignore[call-overload]
            "seconds": round(float(outcome["seconds"]), 1),  # type: ignore[arg-type]
            "all": summary(every),
            "by_status": {k: summary(v) for k, v in sorted(by_status.items())},
        }
        print(strategy, {k: v for k, v in results[strategy].items() if k != "by_status"})
    fixed, adaptive = results["fixed"]["all"], results["adaptive"]["all"]
    p50 = (fixed["p50_min"], adaptive["p50_min"])  # type: ignore[index]
    p95 = (fixed["p95_min"], adaptive["p95_min"])  # type: ignore[index]
    ratio = p50[0] / p50[1] if p50[1] else None
    report(
        "tracking_freshness",
        metric="median staleness, adaptive",
        value=p50[1],
        unit="min",
        ratio=ratio,
        target=1.0,
        meets=p50[1] < p50[0] and p95[1] < p95[0],
        direction="ratio fixed/adaptive median; MEETS when adaptive beats fixed on p50 and p95",
        extra={
            "parcels": n,
            "budget_calls_per_hour": budget,
            "horizon_hours": HORIZON / dt.timedelta(hours=1),
            "round_minutes": ROUND / dt.timedelta(minutes=1),
            "p50_min": {"fixed": p50[0], "adaptive": p50[1]},
            "p95_min": {"fixed": p95[0], "adaptive": p95[1]},
            "p95_ratio": round(p95[0] / p95[1], 2) if p95[1] else None,
            "results": results,
        },
        series={"fixed p50/p95": list(p50[:1] + p95[:1]), "adaptive p50/p95": [p50[1], p95[1]]},
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
