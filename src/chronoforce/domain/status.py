"""Normalized status model: Chronopost event codes → one status per parcel; when to look again.

The code table is data (`data/chronopost_events.csv`: all 149 codes of Chronopost's documentation
§4.1 with their official category, each given a status and a reason); configuration may extend or
override it. Pure functions: no I/O beyond reading that packaged table at import. It must never
drop an event it does not know (unknown codes are reported) and never let an older event undo a
terminal status.

Decisions where the specification was silent:
- An unknown code keeps the current status (it is not guessed as `in_transit`): the code may
  well be a new exception, and showing "in transit" for it would be a lie a person never
  reviews. It is reported in `StatusResolution.unknown_codes` so configuration can map it.
- An information code (category `information`, e.g. SM "recipient notified") is known but has
  no status: it leaves the status as it is and is not reported as unknown.
- `exception` is not terminal: customs release parcels, addresses get fixed, anomalies are
  solved; an exception usually ends in `delivered` or `returned`, so polling must go on. This
  holds for DR "destroyed" too (marked final by Chronopost): a person settles it through the Case.
- Events are applied in time order (ties: the later stage first); a status never moves back to
  an earlier stage of the journey, except out of `exception` (a later event means the problem
  was solved) and within the delivery stage (a later `TA` after `P` is a new delivery round).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Literal

from chronoforce.domain.clock import as_utc
from chronoforce.domain.models import ShipmentStatus, TrackingEvent

__all__ = [
    "DEFAULT_POLL_POLICY",
    "EVENT_TABLE",
    "TABLE_FILE",
    "TERMINAL_STATUSES",
    "EventMapping",
    "PollPolicy",
    "StatusResolution",
    "StatusTableError",
    "combine_parcel_statuses",
    "is_terminal",
    "map_event",
    "next_poll_delay",
    "resolve_status",
    "tracking_fingerprint",
]

S = ShipmentStatus
TERMINAL_STATUSES: frozenset[ShipmentStatus] = frozenset({S.DELIVERED, S.RETURNED, S.CANCELLED})

# Stage of the journey each status belongs to; a status never moves to an earlier stage.
# The three delivery-stage statuses share a stage so the latest of them wins (TA → IA → TA).
# `exception` has no stage: it can happen anywhere and leaves the stage reached unchanged.
_STAGE: Mapping[ShipmentStatus, int] = {
    S.PENDING: 0,
    S.LABEL_CREATED: 1,
    S.PICKED_UP: 2,
    S.IN_TRANSIT: 3,
    S.OUT_FOR_DELIVERY: 4,
    S.DELIVERY_ATTEMPTED: 4,
    S.AVAILABLE_FOR_PICKUP: 4,
    S.RETURNING: 5,
    S.DELIVERED: 6,
    S.RETURNED: 6,
    S.CANCELLED: 6,
}
# Order of events that carry the same time: the later step of a journey goes last.
_TIE_ORDER: Mapping[ShipmentStatus, int] = {
    status: rank
    for rank, status in enumerate(
        (
            S.PENDING,
            S.LABEL_CREATED,
            S.PICKED_UP,
            S.IN_TRANSIT,
            S.EXCEPTION,
            S.OUT_FOR_DELIVERY,
            S.DELIVERY_ATTEMPTED,
            S.AVAILABLE_FOR_PICKUP,
            S.RETURNING,
            S.DELIVERED,
            S.RETURNED,
            S.CANCELLED,
        )
    )
}


class StatusTableError(ValueError):
    """The event table or a configured code maps to something that is not a status."""


@dataclass(frozen=True, slots=True)
class EventMapping:
    """What one Chronopost event code means.

    `status` is None for an information code (known, leaves the status alone) and for a code
    nobody mapped (`source` "unknown"). `category` is Chronopost's own group (§4.1); `reason`
    says in one word why this status (refused, absent, customs_hold…).
    """

    code: str
    status: ShipmentStatus | None
    label_en: str = ""
    label_fr: str = ""
    confirmed: bool = False  # the code is in Chronopost's documented list
    source: Literal["table", "configuration", "unknown"] = "table"
    category: str = ""
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.source != "unknown"

    @property
    def information(self) -> bool:
        """Known, but says nothing about where the parcel is (keeps the current status)."""
        return self.known and self.status is None


def _status_of(value: str, code: str, where: str) -> ShipmentStatus:
    try:
        return ShipmentStatus(value.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in ShipmentStatus)
        raise StatusTableError(
            f"{where}: code {code!r} maps to {value!r}, which is not a status ({known})"
        ) from None


TABLE_FILE = "data/chronopost_events.csv"


def _load_table() -> Mapping[str, EventMapping]:
    text = resources.files("chronoforce.domain").joinpath(TABLE_FILE)
    lines = [line for line in text.read_text("utf-8").splitlines() if not line.startswith("#")]
    table: dict[str, EventMapping] = {}
    for row in csv.DictReader(lines):
        code = row["code"].strip().upper()
        if code in table:
            raise StatusTableError(f"chronopost_events.csv: code {code!r} appears twice")
        value = row["status"].strip()
        table[code] = EventMapping(
            code=code,
            status=_status_of(value, code, "chronopost_events.csv") if value else None,
            label_en=row["label_en"],
            label_fr=row["label_fr"],
            confirmed=True,
            category=row["category"].strip(),
            reason=row["reason"].strip(),
        )
    return MappingProxyType(table)


EVENT_TABLE: Mapping[str, EventMapping] = _load_table()


def is_terminal(status: ShipmentStatus) -> bool:
    """Delivered, returned and cancelled end a parcel's journey (not `exception`: see above)."""
    return status in TERMINAL_STATUSES


def map_event(code: str, extra_codes: Mapping[str, str] | None = None) -> EventMapping:
    """The meaning of `code`; `extra_codes` (code → status) from configuration comes first."""
    key = code.strip().upper()
    for configured, value in (extra_codes or {}).items():
        if configured.strip().upper() == key:
            base = EVENT_TABLE.get(key)
            return EventMapping(
                code=key,
                status=_status_of(value, configured, "tracking.extra_codes"),
                label_en=base.label_en if base else "",
                label_fr=base.label_fr if base else "",
                source="configuration",
                category=base.category if base else "",
                reason="configured",
            )
    return EVENT_TABLE.get(key) or EventMapping(code=key, status=None, source="unknown")


@dataclass(frozen=True, slots=True)
class StatusResolution:
    """The status a parcel's events add up to, and what could not be used."""

    status: ShipmentStatus
    last_event: TrackingEvent | None  # the newest event, known code or not
    unknown_codes: tuple[str, ...] = ()  # in order of first appearance; never dropped
    status_event: TrackingEvent | None = None  # the event that set `status`
    ignored: tuple[TrackingEvent, ...] = field(default=())  # known events that came too late
    reason: str = ""  # the reason of the event that set `status` (see EventMapping)

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def fingerprint(self) -> str:
        return tracking_fingerprint(self.status, self.last_event)


def _next(
    status: ShipmentStatus, stage: int, new: ShipmentStatus
) -> tuple[ShipmentStatus, int] | None:
    """The (status, stage) after an event of status `new`, or None when the event is too late."""
    if status in TERMINAL_STATUSES:
        return None
    if status is S.RETURNING:  # a return only moves forward, to returned
        return (new, _STAGE[new]) if new is S.RETURNED else None
    if new is S.EXCEPTION:
        return new, stage
    if new in TERMINAL_STATUSES or _STAGE[new] >= stage:
        return new, _STAGE[new]
    return None


def _in_time_order(
    events: Iterable[TrackingEvent], extra_codes: Mapping[str, str] | None
) -> list[tuple[TrackingEvent, EventMapping]]:
    mapped = [(event, map_event(event.code, extra_codes)) for event in events]

    def key(item: tuple[TrackingEvent, EventMapping]) -> tuple[dt.datetime, int, str, str]:
        event, meaning = item
        tie = _TIE_ORDER[meaning.status] if meaning.status is not None else -1
        return as_utc(event.time, name=f"event {event.code} time"), tie, event.code, event.label

    return sorted(mapped, key=key)


def resolve_status(
    events: Iterable[TrackingEvent],
    extra_codes: Mapping[str, str] | None = None,
    *,
    initial: ShipmentStatus = S.LABEL_CREATED,
) -> StatusResolution:
    """The status of one parcel from all its events, in any order they arrived.

    `initial` is the status before any known event: a parcel that has a skybill number has a
    label, hence `label_created` by default.
    """
    status, stage = initial, _STAGE.get(initial, 0)
    status_event: TrackingEvent | None = None
    reason = ""
    unknown: dict[str, None] = {}
    ignored: list[TrackingEvent] = []
    ordered = _in_time_order(events, extra_codes)
    for event, meaning in ordered:
        if meaning.status is None:
            if not meaning.known:
                unknown.setdefault(meaning.code)
            continue
        step = _next(status, stage, meaning.status)
        if step is None:
            ignored.append(event)
            continue
        (status, stage), status_event, reason = step, event, meaning.reason
    return StatusResolution(
        status=status,
        last_event=ordered[-1][0] if ordered else None,
        unknown_codes=tuple(unknown),
        status_event=status_event,
        ignored=tuple(ignored),
        reason=reason,
    )


# Statuses a person must hear about even when only one parcel of a shipment is in them.
_WORRYING = (S.EXCEPTION, S.RETURNING, S.RETURNED, S.DELIVERY_ATTEMPTED)


def combine_parcel_statuses(statuses: Iterable[ShipmentStatus]) -> ShipmentStatus | None:
    """One status for a multi-parcel shipment: a worrying parcel wins, else the least advanced.

    A shipment is delivered only when every parcel is; None when there is no parcel.
    """
    known = list(statuses)
    for worrying in _WORRYING:
        if worrying in known:
            return worrying
    return min(known, key=lambda s: (_STAGE.get(s, 0), _TIE_ORDER[s]), default=None)


def tracking_fingerprint(status: ShipmentStatus, last_event: TrackingEvent | None) -> str:
    """Changes iff the status or the newest event (skybill, code, time to the second) changes.

    Seconds only, in UTC: stores round-trip times without microseconds or with another offset,
    and the same state must give the same fingerprint after a reload.
    """
    parts = ["v1", status.value]
    if last_event is not None:
        when = as_utc(last_event.time, name="last event time").replace(microsecond=0)
        parts += [last_event.skybill_number, last_event.code.upper(), when.isoformat()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# --- polling policy ----------------------------------------------------------------------


def _hours(value: float) -> dt.timedelta:
    return dt.timedelta(hours=value)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How soon a parcel in each status is worth another carrier call.

    Frequent while something happens today (out for delivery, a failed attempt), sparse while
    the parcel travels between sorting centres; none once terminal and the grace period is over
    (one last look catches a late correction). Statuses absent from `delays` are not polled.
    """

    delays: Mapping[ShipmentStatus, dt.timedelta] = field(
        default_factory=lambda: MappingProxyType(
            {
                S.LABEL_CREATED: _hours(4),  # handover is usually the same or next day
                S.PICKED_UP: _hours(3),
                S.IN_TRANSIT: _hours(6),  # nothing the customer waits for until the next sort
                S.OUT_FOR_DELIVERY: _hours(0.5),
                S.DELIVERY_ATTEMPTED: _hours(1),  # a new round or a relay drop-off follows
                S.AVAILABLE_FOR_PICKUP: _hours(6),  # the recipient has days to collect
                S.EXCEPTION: _hours(2),  # support wants to know how it ends
                S.RETURNING: _hours(12),
            }
        )
    )
    terminal_grace: dt.timedelta = dt.timedelta(hours=24)
    stale_after: dt.timedelta = dt.timedelta(days=3)  # no news for this long: poll half as often
    stale_factor: float = 2.0
    max_delay: dt.timedelta = dt.timedelta(hours=24)
    min_delay: dt.timedelta = dt.timedelta(minutes=5)


DEFAULT_POLL_POLICY = PollPolicy()


def next_poll_delay(
    status: ShipmentStatus,
    last_event_time: dt.datetime | None,
    now: dt.datetime,
    policy: PollPolicy = DEFAULT_POLL_POLICY,
) -> dt.timedelta | None:
    """How long to wait before tracking this parcel again; None: stop polling it."""
    now = as_utc(now, name="now")
    last = None if last_event_time is None else as_utc(last_event_time, name="last_event_time")
    if status in TERMINAL_STATUSES:
        if last is None:
            return None
        remaining = last + policy.terminal_grace - now
        return max(remaining, policy.min_delay) if remaining > dt.timedelta() else None
    delay = policy.delays.get(status)
    if delay is None:
        return None
    if last is not None and now - last > policy.stale_after:
        delay = min(delay * policy.stale_factor, max(policy.max_delay, delay))
    return max(delay, policy.min_delay)
