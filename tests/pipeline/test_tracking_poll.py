"""Polling: due shipments only, shared rate limit, a call budget spent on the most urgent first."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import select

from chronoforce.domain.errors import CarrierUnavailableError, CarrierValidationError
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.pipeline.tracking import (
    DatabaseWindows,
    Poller,
    PollPlanner,
    RateLimiter,
    RedisWindows,
    Tracking,
    TrackingConfig,
)
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Parcel, Shipment

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


@dataclass
class Clock:
    """Simulated time: `sleep` advances it, so rate-limited code never really waits."""

    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def sleep(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class Carrier:
    """Each skybill follows a timeline (code, hours after T0); only the past is answered."""

    clock: Clock
    timelines: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    failing: dict[str, Exception] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, skybill_number: str) -> Sequence[TrackingEvent]:
        with self.lock:
            self.calls[skybill_number] += 1
        if skybill_number in self.failing:
            raise self.failing[skybill_number]
        return [
            TrackingEvent(skybill_number, code, code, T0 + dt.timedelta(hours=h))
            for code, h in self.timelines.get(skybill_number, [])
            if T0 + dt.timedelta(hours=h) <= self.clock.now
        ]


def labeled(store: Store, n: int, due: dt.datetime = T0) -> list[str]:
    numbers = []
    with store.session() as session:
        for i in range(n):
            shipment = Shipment(
                sf_object="Order",
                sf_id=f"801{i:015d}",
                state="labeled",
                status="label_created",
                next_poll_at=due,
            )
            session.add(shipment)
            session.flush()
            number = f"XY{i:07d}FR"
            session.add(
                Parcel(shipment_id=shipment.id, skybill_number=number, weight_kg=Decimal(1))
            )
            numbers.append(number)
    return numbers


def poller(store: Store, clock: Clock, carrier: Carrier, **config: object) -> Poller:
    settings = TrackingConfig.model_validate({"calls_per_second": None, **config})
    return Poller(
        Tracking(store, settings, now=clock), carrier, clock=clock.seconds, sleep=clock.sleep
    )


def next_polls(store: Store) -> dict[str, dt.datetime | None]:
    with store.session() as session:
        return {
            sf_id: (when.replace(tzinfo=dt.UTC) if when and when.tzinfo is None else when)
            for sf_id, when in session.execute(select(Shipment.sf_id, Shipment.next_poll_at))
        }


# --- scheduling -------------------------------------------------------------------------------


def test_only_due_shipments_are_polled(store: Store) -> None:
    clock = Clock()
    numbers = labeled(store, 3)
    with store.session() as session:
        session.get_one(Shipment, 3).next_poll_at = T0 + dt.timedelta(hours=1)
    carrier = Carrier(clock)
    report = poller(store, clock, carrier).poll_once()
    assert report.shipments == 2 and set(carrier.calls) == set(numbers[:2])


def test_out_for_delivery_is_polled_sooner_than_in_transit(store: Store) -> None:
    clock = Clock(T0 + dt.timedelta(hours=2))
    a, b = labeled(store, 2)
    carrier = Carrier(clock, {a: [("TA", 1)], b: [("TS", 1)]})
    poller(store, clock, carrier).poll_once()
    polls = next_polls(store)
    soon, later = polls["801000000000000000"], polls["801000000000000001"]
    assert soon is not None and later is not None
    assert soon - clock.now <= dt.timedelta(minutes=30) < later - clock.now


def test_terminal_status_gets_one_last_look_after_the_grace_period_then_none(store: Store) -> None:
    clock = Clock(T0 + dt.timedelta(hours=2))
    (a,) = labeled(store, 1)
    carrier = Carrier(clock, {a: [("TA", 0), ("D", 1)]})
    p = poller(store, clock, carrier, terminal_grace_hours=24)
    p.poll_once()
    assert next_polls(store)["801000000000000000"] == T0 + dt.timedelta(hours=25)
    clock.now = T0 + dt.timedelta(hours=25)
    p.poll_once()
    assert next_polls(store)["801000000000000000"] is None
    clock.advance(days=3)
    assert p.poll_once().calls == 0 and carrier.calls[a] == 2


def test_a_transient_carrier_error_retries_later_without_an_exception_row(store: Store) -> None:
    clock = Clock()
    (a,) = labeled(store, 1)
    carrier = Carrier(clock, failing={a: CarrierUnavailableError("timeout")})
    report = poller(store, clock, carrier, error_retry_minutes=30).poll_once()
    assert report.failed == 1
    assert next_polls(store)["801000000000000000"] == T0 + dt.timedelta(minutes=30)
    with store.session() as session:
        assert session.scalars(select(ExceptionRow)).all() == []


def test_an_unknown_skybill_is_kept_as_an_exception_and_retried(store: Store) -> None:
    clock = Clock()
    (a,) = labeled(store, 1)
    carrier = Carrier(clock, failing={a: CarrierValidationError("unknown parcel", code="3")})
    poller(store, clock, carrier).poll_once()
    with store.session() as session:
        (row,) = session.scalars(select(ExceptionRow)).all()
        assert (row.operation, row.code) == ("tracking.poll", "3")


def test_two_pollers_at_once_never_track_a_parcel_twice(store: Store) -> None:
    clock = Clock()
    numbers = labeled(store, 60)
    carrier = Carrier(clock)
    pollers = [poller(store, clock, carrier, batch_size=60) for _ in range(2)]
    threads = [threading.Thread(target=p.poll_once) for p in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(carrier.calls) == set(numbers)
    assert max(carrier.calls.values()) == 1


# --- the call budget --------------------------------------------------------------------------


def test_without_a_budget_parcels_are_polled_at_their_ideal_interval() -> None:
    planner = PollPlanner(TrackingConfig())
    assert planner.calibrate({ShipmentStatus.IN_TRANSIT: 10_000}) == 0.0
    assert planner.interval(ShipmentStatus.OUT_FOR_DELIVERY) == dt.timedelta(minutes=30)


def test_budget_plan_fits_the_budget_and_keeps_urgent_parcels_fresh() -> None:
    planner = PollPlanner(TrackingConfig(calls_per_hour=1000))
    population = {
        ShipmentStatus.OUT_FOR_DELIVERY: 500,
        ShipmentStatus.IN_TRANSIT: 3000,
        ShipmentStatus.LABEL_CREATED: 1500,
    }
    planner.calibrate(population)
    hours = {s: planner.interval(s).total_seconds() / 3600 for s in population}  # type: ignore[union-attr]
    # Each parcel waits out the quiet time after an event (an eighth of it is counted against
    # the budget on average), then is polled every interval.
    calls = sum(n / (hours[s] + planner.quiet_of(s) / 8) for s, n in population.items())
    assert 880 <= calls <= 900.01  # 90 % of the budget: room for retries and last looks
    round_robin = sum(population.values()) / 900  # every parcel alike: 5.6 h
    # What the quiet times save goes to the urgent parcels first.
    assert hours[ShipmentStatus.OUT_FOR_DELIVERY] < hours[ShipmentStatus.IN_TRANSIT]
    assert hours[ShipmentStatus.OUT_FOR_DELIVERY] < round_robin
    # No parcel waits longer than fixed-interval polling would make it wait.
    assert max(hours.values()) <= round_robin + 1e-9


def test_the_first_look_after_an_event_waits_for_its_quiet_time() -> None:
    planner = PollPlanner(TrackingConfig())
    now = T0 + dt.timedelta(minutes=10)
    retry = planner.next_poll_at(ShipmentStatus.DELIVERY_ATTEMPTED, T0, now)
    assert retry == T0 + dt.timedelta(hours=planner.quiet_of(ShipmentStatus.DELIVERY_ATTEMPTED))
    late = now + dt.timedelta(hours=30)  # long after the event: the plain interval
    again = planner.next_poll_at(ShipmentStatus.DELIVERY_ATTEMPTED, T0, late)
    assert again == late + planner.interval(ShipmentStatus.DELIVERY_ATTEMPTED)  # type: ignore[operator]


def test_over_budget_the_most_urgent_parcels_are_polled_first(store: Store) -> None:
    clock = Clock(T0 + dt.timedelta(hours=2))
    numbers = labeled(store, 40)
    with store.session() as session:  # the last ten are out for delivery
        for shipment in session.scalars(select(Shipment).where(Shipment.id > 30)):
            shipment.status = "out_for_delivery"
    carrier = Carrier(clock)
    report = poller(store, clock, carrier, calls_per_hour=300).poll_once()  # 10 a minute
    assert report.over_budget and report.calls == 10
    assert set(carrier.calls) == set(numbers[30:])


# --- the shared rate limit --------------------------------------------------------------------


def test_rate_limit_is_shared_by_every_limiter_on_the_same_database(store: Store) -> None:
    clock = Clock()
    limiters = [
        RateLimiter(DatabaseWindows(store), "19869502", 5, 1.0, clock.seconds, clock.sleep)
        for _ in range(3)
    ]
    granted = sum(limiter.take(1) for _ in range(4) for limiter in limiters)
    assert granted == 5
    clock.advance(seconds=1)
    assert limiters[0].take(7) == 5


def test_rate_limit_through_redis_grants_at_most_the_limit_per_window(redis_url: str) -> None:
    import uuid

    clock = Clock()
    key = f"test-{uuid.uuid4().hex}"
    limiters = [
        RateLimiter(RedisWindows(redis_url), key, 5, 1.0, clock.seconds, clock.sleep)
        for _ in range(3)
    ]
    assert sum(limiter.take(2) for limiter in limiters) == 5
    clock.advance(seconds=1)
    assert limiters[1].take(1) == 1


def test_acquire_waits_for_the_next_window_instead_of_exceeding_the_limit(store: Store) -> None:
    clock = Clock()
    limiter = RateLimiter(DatabaseWindows(store), "acct", 2, 1.0, clock.seconds, clock.sleep)
    for _ in range(6):
        assert limiter.acquire()
    assert clock.now - T0 >= dt.timedelta(seconds=2)  # six calls at two a second
