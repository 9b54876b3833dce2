"""Staleness of tracking status under a fixed carrier call budget: adaptive vs fixed-interval.

5,000 active parcels follow the agreed scenarios (delivered, absent, relay, refused, …) on a
simulated clock; the real `Poller` and ingestion path run against SQLite, answering from the
timelines as `trackSkybillV2` would (only events already in the past). Nothing really waits.
Staleness of an event = the simulated time the poll first saw it (the round in which its
Salesforce write is queued and flushed) minus the event's time. Lower is better.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from chronoforce.logs import configure_logging

# Before the imports below: module-level loggers bind their configuration when first made.
configure_logging("warning")

from bench.common import report  # noqa: E402
from chronoforce.domain.models import ShipmentStatus, TrackingEvent  # noqa: E402
from chronoforce.domain.status import map_event  # noqa: E402
from chronoforce.pipeline.tracking import (  # noqa: E402
    Poller,
    PollPlanner,
    Tracking,
    TrackingConfig,
    utc,
)
from chronoforce.store.db import Store  # noqa: E402
from chronoforce.store.models import Event, Parcel, Shipment  # noqa: E402

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
PARCELS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
BUDGET = max(50, PARCELS * 3 // 10)  # carrier calls an hour for the account: 1,500 for 5,000
HORIZON_H = 96
STEP_MIN = 5

# Scenario mix and the hours between consecutive events (low, high), in the agreed code order.
SCENARIOS: list[tuple[str, float, list[tuple[str, float, float]]]] = [
    ("delivered", 0.70, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                         ("SD", 4, 10), ("TA", 1, 4), ("D", 0.5, 5)]),
    ("absent", 0.08, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                      ("SD", 4, 10), ("TA", 1, 4), ("IA", 0.5, 5), ("TA", 16, 20), ("D", 0.5, 5)]),
    ("relay", 0.10, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                     ("SD", 4, 10), ("RP", 1, 4), ("RC", 4, 40)]),
    ("refused", 0.04, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                       ("SD", 4, 10), ("TA", 1, 4), ("RF", 0.5, 5), ("RE", 4, 12), ("RL", 24, 48)]),
    ("damaged", 0.04, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                       ("AV", 1, 6), ("RE", 4, 12), ("RL", 24, 48)]),
    ("customs", 0.04, [("DC", 0, 0), ("DB", 2, 8), ("DY", 0.2, 1), ("SC", 2, 5), ("TS", 2, 6),
                       ("DO", 4, 12)]),
]  # fmt: skip


def timelines(n: int, seed: int = 7) -> dict[str, list[tuple[str, dt.datetime]]]:
    rng = random.Random(seed)
    names = [s[0] for s in SCENARIOS]
    weights = [s[1] for s in SCENARIOS]
    steps = {s[0]: s[2] for s in SCENARIOS}
    result = {}
    for i in range(n):
        when = T0 + dt.timedelta(hours=rng.uniform(0, 24))  # labels made over the first day
        events = []
        for code, low, high in steps[rng.choices(names, weights)[0]]:
            when += dt.timedelta(hours=rng.uniform(low, high))
            events.append((code, when.replace(microsecond=0)))
        result[f"XY{i:09d}FR"] = events
    return result


@dataclass
class SimClock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class SimCarrier:
    """Answers like trackSkybillV2: the whole history so far, nothing from the future."""

    clock: SimClock
    lines: dict[str, list[tuple[str, dt.datetime]]]
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, skybill_number: str) -> Sequence[TrackingEvent]:
        with self.lock:
            self.calls["track"] += 1
        now = self.clock.now
        return [
            TrackingEvent(skybill_number, code, code, when)
            for code, when in self.lines[skybill_number]
            if when <= now
        ]


class FixedPlanner(PollPlanner):
    """The baseline: every active parcel polled at one interval, sized to the same budget."""

    hours: float = 1.0

    def interval(self, status: ShipmentStatus) -> dt.timedelta | None:
        return None if self.ideal_hours(status) is None else dt.timedelta(hours=self.hours)

    def calibrate(self, parcels_by_status: dict[ShipmentStatus, int]) -> float:  # type: ignore[override]
        active = sum(n for s, n in parcels_by_status.items() if self.ideal_hours(s) is not None)
        self.hours = max(0.25, active / (0.9 * (self.config.calls_per_hour or 1)))
        return self.hours


def seed_store(url: str, lines: dict[str, list[tuple[str, dt.datetime]]]) -> Store:
    store = Store(url)
    with store.session() as session:
        for i, (skybill, events) in enumerate(lines.items()):
            shipment = Shipment(
                sf_object="Order",
                sf_id=f"801{i:015d}",
                state="labeled",
                status="label_created",
                next_poll_at=events[0][1],  # the label pipeline schedules the first look
            )
            session.add(shipment)
            session.flush()
            session.add(
                Parcel(shipment_id=shipment.id, skybill_number=skybill, weight_kg=Decimal(1))
            )
    return store


def run(
    strategy: str, lines: dict[str, list[tuple[str, dt.datetime]]], workdir: Path
) -> dict[str, object]:
    store = seed_store(f"sqlite:///{workdir / f'{strategy}.db'}", lines)
    clock = SimClock()
    config = TrackingConfig(
        calls_per_second=None, calls_per_hour=BUDGET, batch_size=2000, concurrency=4
    )
    planner = FixedPlanner(config) if strategy == "fixed" else PollPlanner(config)
    tracking = Tracking(store, config, now=clock, planner=planner)
    carrier = SimCarrier(clock, lines)
    poller = Poller(tracking, carrier, clock=clock.seconds, sleep=clock.sleep, calibrate_every=1800)
    started = time.monotonic()
    rounds = 0
    while clock.now < T0 + dt.timedelta(hours=HORIZON_H):
        poller.poll_once()
        clock.now += dt.timedelta(minutes=STEP_MIN)
        rounds += 1
    poller.close()
    seen = seen_times(store)
    store.dispose()
    return {
        "seen": seen,
        "calls": carrier.calls["track"],
        "rounds": rounds,
        "seconds": time.monotonic() - started,
    }


def seen_times(store: Store) -> dict[tuple[str, str, dt.datetime], dt.datetime]:
    with store.session() as session:
        return {
            (s, c, utc(t)): utc(r)
            for s, c, t, r in session.execute(
                select(Event.skybill_number, Event.code, Event.event_time, Event.received_at)
            )
        }


def staleness(
    lines: dict[str, list[tuple[str, dt.datetime]]],
    seen: dict[tuple[str, str, dt.datetime], dt.datetime],
) -> dict[str, list[float]]:
    """Minutes behind, per event, grouped by the status it moves to; never seen = censored at the end."""
    end = T0 + dt.timedelta(hours=HORIZON_H)
    by_status: dict[str, list[float]] = {"all": []}
    for skybill, events in lines.items():
        for code, when in events:
            if when > end:
                continue
            at = seen.get((skybill, code, when), end)
            minutes = (at - when).total_seconds() / 60
            status = map_event(code).status
            by_status["all"].append(minutes)
            by_status.setdefault(status.value if status else "?", []).append(minutes)
    return by_status


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean_min": round(statistics.fmean(ordered), 1),
        "p50_min": round(ordered[len(ordered) // 2], 1),
        "p90_min": round(ordered[int(len(ordered) * 0.9)], 1),
        "events": len(ordered),
    }


def main() -> None:
    lines = timelines(PARCELS)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in ("fixed", "adaptive"):
            outcome = run(strategy, lines, Path(tmp))
            stale = staleness(lines, outcome["seen"])  # type: ignore[arg-type]
            results[strategy] = {
                "carrier_calls": outcome["calls"],
                "calls_per_hour": round(int(outcome["calls"]) / HORIZON_H, 1),  # type: ignore[call-overload]
                "wall_seconds": round(float(outcome["seconds"]), 1),  # type: ignore[arg-type]
                "staleness": {k: summary(v) for k, v in sorted(stale.items())},
            }
            print(strategy, results[strategy], flush=True)
    fixed = results["fixed"]["staleness"]["all"]["mean_min"]  # type: ignore[index]
    adaptive = results["adaptive"]["staleness"]["all"]["mean_min"]  # type: ignore[index]
    ratio = fixed / adaptive if adaptive else None
    delivered = {
        k: results[k]["staleness"]["delivered"]["mean_min"]  # type: ignore[index]
        for k in ("fixed", "adaptive")
    }
    report(
        "tracking",
        metric="mean staleness, adaptive",
        value=adaptive,
        unit="min",
        ratio=ratio,
        target=1.5,
        meets=ratio is not None and ratio >= 1.5,
        direction="ratio fixed/adaptive: higher is better",
        extra={
            "parcels": PARCELS,
            "budget_calls_per_hour": BUDGET,
            "horizon_hours": HORIZON_H,
            "round_minutes": STEP_MIN,
            "delivered_mean_min": delivered,
            "delivered_ratio": round(delivered["fixed"] / delivered["adaptive"], 2),
            "results": results,
        },
        series=None,
    )


if __name__ == "__main__":
    main()
