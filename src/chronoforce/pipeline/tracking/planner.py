"""When each parcel is worth its next carrier call, fitted to the hourly call budget.

Pure planning on top of domain/status.py's PollPolicy; no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from chronoforce.domain.models import ShipmentStatus
from chronoforce.domain.status import DEFAULT_POLL_POLICY, PollPolicy, is_terminal, next_poll_delay
from chronoforce.pipeline.tracking.config import TrackingConfig
from chronoforce.pipeline.tracking.events import utc

HOUR = 3600.0

# How much a stale status costs, relative to in transit: a delivery or a failed attempt is
# what customers and support ask about; a label not yet handed over is rarely urgent.
URGENCY_WEIGHT: Mapping[ShipmentStatus, float] = {
    ShipmentStatus.OUT_FOR_DELIVERY: 4.0,
    ShipmentStatus.DELIVERY_ATTEMPTED: 3.0,
    ShipmentStatus.EXCEPTION: 2.0,
    ShipmentStatus.AVAILABLE_FOR_PICKUP: 1.0,
    ShipmentStatus.IN_TRANSIT: 1.0,
    ShipmentStatus.PICKED_UP: 1.0,
    ShipmentStatus.LABEL_CREATED: 0.5,
    ShipmentStatus.RETURNING: 0.5,
}


# Hours after a parcel's last event during which its next event is unlikely (the shortest usual
# gap: a handover the same evening, a sort every few hours, a relay parcel waits days to be
# collected, a failed delivery is retried the next working day). Polls inside it are mostly
# wasted, so the first look after an event waits for it; `tracking.quiet_hours` overrides.
QUIET_HOURS: Mapping[ShipmentStatus, float] = {
    ShipmentStatus.LABEL_CREATED: 2.0,
    ShipmentStatus.PICKED_UP: 0.0,
    ShipmentStatus.IN_TRANSIT: 1.5,
    ShipmentStatus.OUT_FOR_DELIVERY: 0.5,
    ShipmentStatus.DELIVERY_ATTEMPTED: 8.0,
    ShipmentStatus.AVAILABLE_FOR_PICKUP: 6.0,
    ShipmentStatus.EXCEPTION: 1.0,
    ShipmentStatus.RETURNING: 12.0,
}


def policy_of(config: TrackingConfig) -> PollPolicy:
    """domain/status.py's PollPolicy with the configured floor, grace and per-status delays."""
    delays = dict(DEFAULT_POLL_POLICY.delays)
    delays.update({ShipmentStatus(s): dt.timedelta(hours=h) for s, h in config.poll_hours.items()})
    return PollPolicy(
        delays=delays,
        terminal_grace=dt.timedelta(hours=config.terminal_grace_hours),
        min_delay=dt.timedelta(minutes=config.min_poll_minutes),
    )


@dataclass
class PollPlanner:
    """Next poll times from the status, fitted to the carrier call budget.

    Without a budget a parcel is polled every `next_poll_delay(status)` of domain/status.py
    (T0, about the time to its next event). With a budget of B calls an hour, intervals become
    T = max(floor, μ·√(T0/w)), μ chosen so the active parcels use 90% of B, w the status's
    urgency (`URGENCY_WEIGHT`). A parcel polled every T is on average T/2 stale per event, and
    events come about every T0: this T minimizes total urgency-weighted staleness for the budget
    (Lagrange), so urgent parcels get short intervals and unhurried ones absorb a shortage.
    """

    config: TrackingConfig
    stretch: float = 0.0  # μ, in √hours; 0 = the policy's own intervals
    # No status waits longer than one even share of the budget would give every parcel: the
    # slowest parcels are never staler than under fixed-interval polling (0 = no cap).
    cap_hours: float = 0.0
    policy: PollPolicy = field(init=False)

    quiet: Mapping[ShipmentStatus, float] = field(init=False)

    def __post_init__(self) -> None:
        self.policy = policy_of(self.config)
        self.quiet = {**QUIET_HOURS, **self.config.quiet_hours}

    def ideal_hours(self, status: ShipmentStatus) -> float | None:
        delay = self.policy.delays.get(status)
        return None if delay is None else delay.total_seconds() / HOUR

    def interval(self, status: ShipmentStatus) -> dt.timedelta | None:
        """The planned interval for a parcel in `status` (None: not polled)."""
        t0 = self.ideal_hours(status)
        if t0 is None:
            return None
        if self.stretch <= 0:
            return max(dt.timedelta(hours=t0), self.policy.min_delay)
        return dt.timedelta(hours=self._hours(status, t0, self.stretch))

    def _hours(self, status: ShipmentStatus, t0: float, mu: float) -> float:
        floor = self.policy.min_delay.total_seconds() / HOUR
        hours = mu * math.sqrt(t0 / URGENCY_WEIGHT.get(status, 1.0))
        return max(floor, min(hours, self.cap_hours)) if self.cap_hours > 0 else max(floor, hours)

    def next_poll_at(
        self, status: ShipmentStatus, last_event_at: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        now = utc(now)
        last = utc(last_event_at) if last_event_at is not None else None
        if is_terminal(status) or self.stretch <= 0:
            # domain/status.py's policy; terminal: one last look after the grace period.
            delay = next_poll_delay(status, last or now, now, self.policy)
            planned = None if delay is None else now + delay
        else:
            interval = self.interval(status)
            planned = None if interval is None else now + interval
        if planned is None or last is None or is_terminal(status):
            return planned
        # Not inside the quiet time after the last event: such a look rarely finds anything.
        return max(planned, last + dt.timedelta(hours=self.quiet_of(status)))

    def quiet_of(self, status: ShipmentStatus) -> float:
        return self.quiet.get(status, 0.0)

    def calibrate(self, parcels_by_status: Mapping[ShipmentStatus, int]) -> float:
        """Choose μ for the active population (parcel counts per status)."""
        budget = self.config.calls_per_hour
        ideal = {s: t0 for s in parcels_by_status if (t0 := self.ideal_hours(s)) is not None}
        if budget is None or not ideal:
            self.stretch, self.cap_hours = 0.0, 0.0
            return self.stretch
        target = 0.9 * budget
        self.cap_hours = max(
            self.policy.min_delay.total_seconds() / HOUR,
            sum(parcels_by_status[s] for s in ideal) / target,
        )

        def calls_per_hour(mu: float) -> float:
            # A parcel waits out the quiet time after each event, then is polled every T.
            return sum(
                parcels_by_status[s] / (self._hours(s, t0, mu) + self.quiet_of(s) / 8)
                for s, t0 in ideal.items()
            )

        low, high = 0.0, 1.0
        for _ in range(60):  # the cap bounds the intervals: some budgets cannot be reached
            if calls_per_hour(high) <= target:
                break
            high *= 2
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if calls_per_hour(mid) > target else (low, mid)
        self.stretch = high
        return self.stretch


# Order of due shipments when the budget cannot serve them all (lower first).
URGENCY = {
    ShipmentStatus.OUT_FOR_DELIVERY.value: 0,
    ShipmentStatus.DELIVERY_ATTEMPTED.value: 1,
    ShipmentStatus.EXCEPTION.value: 2,
    ShipmentStatus.IN_TRANSIT.value: 3,
    ShipmentStatus.PICKED_UP.value: 3,
    ShipmentStatus.AVAILABLE_FOR_PICKUP.value: 4,
    ShipmentStatus.RETURNING.value: 4,
}
