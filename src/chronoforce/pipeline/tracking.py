"""Tracking sync: carrier events (polled or pushed) become one normalized status in Salesforce.

Both sources go through `Tracking.ingest_in`: dedup by (skybill, code, time) → event table →
status recomputed with `domain/status.py` → Salesforce writes queued only when the shipment's
tracking fingerprint changed. It never writes to Salesforce directly (the outbox does) and never
calls the carrier faster than the shared rate limit and call budget allow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chronoforce.domain.errors import ChronoforceError, PermanentError, TransientError
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.ports import SalesforcePort
from chronoforce.store.db import Store
from chronoforce.store.models import (
    Event,
    Outbox,
    Parcel,
    RateWindow,
    Shipment,
    TrackingCase,
    WebhookInbox,
)
from chronoforce.store.ops import insert_ignore

log = get_logger(component="tracking")

Now = Callable[[], dt.datetime]
EVENT_OBJECT = "Chronopost_Tracking_Event__c"
EVENT_KEY_FIELD = "Event_Key__c"
POLLED_STATES = ("labeled",)
HOUR = 3600.0
CHUNK = 500  # ids per IN list


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- configuration -------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseConfig(_Section):
    """Support Cases opened on exception statuses (one per order, reused while open)."""

    enabled: bool = True
    statuses: tuple[str, ...] = ("exception", "returning", "returned")
    record_type_id: str = ""
    owner_id: str = ""  # a queue id: where new Cases land
    priority: str = "High"
    origin: str = "Chronopost"
    new_status: str = "New"
    update_status: str = "Working"  # empty: leave the Case's Status alone on later events
    close_on_delivery: bool = True
    closed_status: str = "Closed"


class TrackingConfig(_Section):
    """`tracking:` in chronoforce.yaml."""

    calls_per_second: float | None = Field(10.0, gt=0)  # per account, shared by all workers
    calls_per_hour: int | None = Field(None, gt=0)  # the carrier call budget; None = unbounded
    concurrency: int = Field(8, ge=1, le=128)
    batch_size: int = Field(500, ge=1)  # shipments per poll round
    rate_limit_url: str = ""  # empty: the database; redis://… shares the limit through Redis
    terminal_grace_hours: float = Field(24.0, ge=0)  # one last look after a terminal status
    error_retry_minutes: float = Field(30.0, gt=0)
    min_poll_minutes: float = Field(10.0, gt=0)  # never sooner, however much budget is left
    extra_codes: dict[str, str] = Field(default_factory=dict)  # code → normalized status
    order_status_map: dict[str, str] = Field(default_factory=dict)  # status → Order.Status
    shipment_status_map: dict[str, str] = Field(default_factory=lambda: {"delivered": "Delivered"})
    write_events: bool = True  # tracking-event records in Salesforce
    case: CaseConfig = CaseConfig()
    webhook_window_seconds: int = Field(300, ge=1)
    webhook_max_bytes: int = Field(1_048_576, ge=1024)
    webhook_max_events: int = Field(1000, ge=1)


def tracking_config(raw: Mapping[str, Any]) -> TrackingConfig:
    """Validate `Settings.tracking`; errors name the key, like the rest of the configuration."""
    from chronoforce.config import ConfigError

    try:
        return TrackingConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"key 'tracking.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid tracking configuration: {problems}") from exc


# --- status rules (domain/status.py) ---------------------------------------------------------

TERMINAL = frozenset({ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED, ShipmentStatus.CANCELLED})
_CODES = {
    "DC": "label_created", "DB": "picked_up", "DY": "in_transit", "SC": "in_transit",
    "TS": "in_transit", "SD": "in_transit", "TA": "out_for_delivery", "D": "delivered",
    "IA": "delivery_attempted", "RP": "available_for_pickup", "RC": "delivered",
    "RF": "exception", "AI": "exception", "AV": "exception", "DO": "exception",
    "PE": "exception", "RE": "returning", "RL": "returned", "AN": "cancelled",
}  # fmt: skip
_DELAYS = {
    ShipmentStatus.LABEL_CREATED: 4.0,
    ShipmentStatus.PICKED_UP: 3.0,
    ShipmentStatus.IN_TRANSIT: 3.0,
    ShipmentStatus.OUT_FOR_DELIVERY: 0.25,
    ShipmentStatus.DELIVERY_ATTEMPTED: 2.0,
    ShipmentStatus.AVAILABLE_FOR_PICKUP: 6.0,
    ShipmentStatus.EXCEPTION: 4.0,
    ShipmentStatus.RETURNING: 6.0,
}
# How much a stale status costs, relative to in transit: a delivery or a failed attempt is
# what customers and support ask about; a label not yet handed over is rarely urgent.
URGENCY_WEIGHT = {
    ShipmentStatus.OUT_FOR_DELIVERY: 4.0,
    ShipmentStatus.DELIVERY_ATTEMPTED: 3.0,
    ShipmentStatus.EXCEPTION: 2.0,
    ShipmentStatus.AVAILABLE_FOR_PICKUP: 1.0,
    ShipmentStatus.IN_TRANSIT: 1.0,
    ShipmentStatus.PICKED_UP: 1.0,
    ShipmentStatus.LABEL_CREATED: 0.5,
    ShipmentStatus.RETURNING: 0.5,
}


def code_status(code: str, extra_codes: Mapping[str, str]) -> ShipmentStatus | None:
    value = extra_codes.get(code) or _CODES.get(code)
    return ShipmentStatus(value) if value else None


def parcel_status(
    events: Sequence[TrackingEvent], extra_codes: Mapping[str, str]
) -> ShipmentStatus | None:
    """The status of the latest event whose code we know (events sorted by time)."""
    for event in reversed(events):
        status = code_status(event.code, extra_codes)
        if status is not None:
            return status
    return None


def ideal_delay(status: ShipmentStatus) -> dt.timedelta | None:
    """How soon a parcel in `status` is worth another look; None when terminal."""
    hours = _DELAYS.get(status)
    return None if hours is None else dt.timedelta(hours=hours)


def fingerprint(status: ShipmentStatus, events: Sequence[TrackingEvent]) -> str:
    """Changes iff what Salesforce shows would change: the status or the set of events."""
    text = status.value + "".join(
        f"|{e.skybill_number}/{e.code}/{_iso(e.time)}" for e in sorted(events, key=_order)
    )
    return hashlib.sha256(text.encode()).hexdigest()


# --- events ---------------------------------------------------------------------------------


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; naive values are UTC already (SQLite hands them back without an offset)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_key(skybill: str, code: str, time_: dt.datetime) -> str:
    """`Event_Key__c`: skybill|code|ISO-8601 UTC time — the same event always has the same key."""
    return f"{skybill}|{code}|{_iso(time_)}"


def _key_of(event: TrackingEvent) -> str:
    return event_key(event.skybill_number, event.code, event.time)


def _order(event: TrackingEvent) -> tuple[dt.datetime, str, str]:
    return (utc(event.time), event.skybill_number, event.code)


def _row_of(event: TrackingEvent, source: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "received_at": now,
        "skybill_number": event.skybill_number[:20],
        "code": event.code[:10],
        "event_time": utc(event.time).replace(microsecond=0),
        "label": event.label[:255],
        "place": event.place[:100],
        "postal_code": event.postal_code[:10],
        "source": source[:10],
    }


def _event_of(row: Event) -> TrackingEvent:
    return TrackingEvent(
        skybill_number=row.skybill_number,
        code=row.code,
        label=row.label,
        time=utc(row.event_time),
        place=row.place,
        postal_code=row.postal_code,
    )


def _insert_new_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the events not stored yet; returns the keys of those that were new.

    Polls mostly return events already stored, so the known keys are read first; the rest go
    in as one cached INSERT … ON CONFLICT DO NOTHING RETURNING (a concurrent writer may still
    win a key: it is then simply not ours).
    """
    known: set[str] = set()
    skybills = sorted({r["skybill_number"] for r in rows})
    for part in _chunks(skybills):
        known.update(
            event_key(s, c, t)
            for s, c, t in session.execute(
                select(Event.skybill_number, Event.code, Event.event_time).where(
                    Event.skybill_number.in_(part)
                )
            )
        )
    todo = [
        r for r in rows if event_key(r["skybill_number"], r["code"], r["event_time"]) not in known
    ]
    if not todo:
        return set()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Event)
        .on_conflict_do_nothing()
        .returning(Event.skybill_number, Event.code, Event.event_time)
    )
    return {event_key(s, c, t) for s, c, t in session.execute(statement, todo)}


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _live_parcels(session: Session, skybills: Sequence[str]) -> list[Parcel]:
    found: list[Parcel] = []
    for part in _chunks(skybills):
        found.extend(
            session.scalars(select(Parcel).where(Parcel.skybill_number.in_(part), Parcel.live))
        )
    return found


def _lock_shipments(session: Session, ids: Sequence[int]) -> list[Shipment]:
    """The shipments, row-locked in id order on PostgreSQL (SQLite holds the write lock)."""
    found: list[Shipment] = []
    for part in _chunks(ids):
        found.extend(
            session.scalars(
                select(Shipment)
                .where(Shipment.id.in_(part))
                .order_by(Shipment.id)
                .with_for_update()
            )
        )
    return found


def _events_by_shipment(
    session: Session, ids: Sequence[int]
) -> dict[int, dict[str, list[TrackingEvent]]]:
    """shipment id → skybill → its events in time order (live parcels only)."""
    skybills: dict[str, int] = {}
    for part in _chunks(ids):
        for shipment_id, skybill in session.execute(
            select(Parcel.shipment_id, Parcel.skybill_number).where(
                Parcel.shipment_id.in_(part), Parcel.live
            )
        ):
            skybills[skybill] = shipment_id
    result: dict[int, dict[str, list[TrackingEvent]]] = {i: {} for i in ids}
    for skybill, shipment_id in skybills.items():
        result[shipment_id][skybill] = []
    for part in _chunks(sorted(skybills)):
        for row in session.scalars(select(Event).where(Event.skybill_number.in_(part))):
            result[skybills[row.skybill_number]][row.skybill_number].append(_event_of(row))
    for parcels in result.values():
        for events in parcels.values():
            events.sort(key=_order)
    return result


def shipment_status(
    parcels: Mapping[str, Sequence[TrackingEvent]], extra_codes: Mapping[str, str]
) -> ShipmentStatus | None:
    """One status for several parcels: an exception path wins, else the least advanced parcel."""
    statuses = [parcel_status(events, extra_codes) for events in parcels.values()]
    known = [s for s in statuses if s is not None]
    if not known:
        return None
    for worrying in (
        ShipmentStatus.EXCEPTION,
        ShipmentStatus.RETURNING,
        ShipmentStatus.RETURNED,
        ShipmentStatus.DELIVERY_ATTEMPTED,
    ):
        if worrying in known:
            return worrying
    progress = list(ShipmentStatus)
    return min(known, key=progress.index)


# --- ingestion ------------------------------------------------------------------------------


@dataclass
class IngestReport:
    received: int = 0
    new_events: int = 0
    changed: list[int] = field(default_factory=list)  # shipment ids whose fingerprint changed
    unknown_skybills: int = 0


@dataclass
class Tracking:
    """The one ingestion path; safe to call from many threads and processes at once."""

    store: Store
    config: TrackingConfig = field(default_factory=TrackingConfig)
    now: Now = _utcnow
    planner: PollPlanner | None = None

    def __post_init__(self) -> None:
        self.planner = self.planner or PollPlanner(self.config)

    def ingest(self, events: Iterable[TrackingEvent], source: str = "poll") -> IngestReport:
        """Ingest in one transaction of its own."""
        with self.store.session() as session:
            return self.ingest_in(session, events, source)

    def ingest_in(
        self,
        session: Session,
        events: Iterable[TrackingEvent],
        source: str,
        *,
        polled: Sequence[int] = (),
    ) -> IngestReport:
        """Ingest in the caller's transaction; `polled` shipments get their next poll planned."""
        now = self.now()
        unique = {_key_of(e): _row_of(e, source, now) for e in events}
        # Sorted keys: concurrent inserts of overlapping events cannot deadlock. The insert is
        # the transaction's first write, so on SQLite it also takes the write lock up front.
        rows = [unique[k] for k in sorted(unique)]
        report = IngestReport(received=len(rows))
        new_keys = _insert_new_events(session, rows) if rows else set()
        report.new_events = len(new_keys)
        skybills = sorted({k.split("|", 1)[0] for k in new_keys})
        parcels = _live_parcels(session, skybills)
        report.unknown_skybills = len(set(skybills) - {p.skybill_number for p in parcels})
        touched = {p.shipment_id for p in parcels}
        ids = sorted(touched | set(polled))
        if not ids:
            return report
        shipments = _lock_shipments(session, ids)
        events_of = _events_by_shipment(session, sorted(touched))
        for shipment in shipments:
            if shipment.id in touched and self._recompute(
                session, shipment, events_of[shipment.id], new_keys, now
            ):
                report.changed.append(shipment.id)
            elif shipment.id in polled:
                self._plan(shipment, now)  # nothing new: only the next look moves
        return report

    def _recompute(
        self,
        session: Session,
        shipment: Shipment,
        parcels: Mapping[str, Sequence[TrackingEvent]],
        new_keys: set[str],
        now: dt.datetime,
    ) -> bool:
        status = shipment_status(parcels, self.config.extra_codes)
        events = sorted((e for evs in parcels.values() for e in evs), key=_order)
        if status is None:
            return False
        print_ = fingerprint(status, events)
        if print_ == shipment.tracking_fingerprint:
            return False
        previous = shipment.status
        last = events[-1]
        shipment.status = status.value
        shipment.tracking_fingerprint = print_
        shipment.last_event_code = last.code
        shipment.last_event_at = last.time
        self._plan(shipment, now)
        fresh = [e for e in events if _key_of(e) in new_keys]
        SalesforceWrites(session, shipment, self.config).queue(status, last, fresh, previous)
        log.debug(
            "tracking status changed",
            shipment_id=shipment.id,
            sf_id=shipment.sf_id,
            status=status.value,
            code=last.code,
        )
        return True

    def _plan(self, shipment: Shipment, now: dt.datetime) -> None:
        assert self.planner is not None
        shipment.next_poll_at = self.planner.next_poll_at(
            ShipmentStatus(shipment.status), shipment.last_event_at, now
        )


# --- Salesforce writes ------------------------------------------------------------------------


@dataclass
class SalesforceWrites:
    """What one status change queues: Shipment, Order, tracking events, and the support Case."""

    session: Session
    shipment: Shipment
    config: TrackingConfig

    @property
    def order_id(self) -> str:
        if self.shipment.sf_object == "Order":
            return self.shipment.sf_id
        return str((self.shipment.source or {}).get("order_id") or "")

    @property
    def shipment_record(self) -> str:
        if self.shipment.sf_object == "Shipment":
            return self.shipment.sf_id
        return str((self.shipment.source or {}).get("shipment_id") or "")

    def queue(
        self,
        status: ShipmentStatus,
        last: TrackingEvent,
        fresh: Sequence[TrackingEvent],
        previous: str,
    ) -> None:
        last_event = {
            "Chronopost_Status__c": status.value,
            "Chronopost_Last_Event_Code__c": last.code,
            "Chronopost_Last_Event_Label__c": last.label[:255],
            "Chronopost_Last_Event_Time__c": _iso(last.time),
            "Chronopost_Last_Event_Place__c": last.place[:255],
        }
        if self.shipment_record:
            payload = dict(last_event)
            if status.value in self.config.shipment_status_map:
                payload["Status"] = self.config.shipment_status_map[status.value]
            if status is ShipmentStatus.DELIVERED:
                payload["ActualDeliveryDate"] = _iso(last.time)
            self._enqueue("Shipment", self.shipment_record, payload)
        if self.order_id:
            payload = dict(last_event)
            if status.value in self.config.order_status_map:
                payload["Status"] = self.config.order_status_map[status.value]
            self._enqueue("Order", self.order_id, payload)
        if self.config.write_events:
            for event in fresh:
                self._event_record(event)
        if self.config.case.enabled and status.value != previous:
            Cases(self.session, self.shipment, self.config.case, self.order_id).on_status(
                status, last, self.shipment_record
            )

    def _enqueue(self, sf_object: str, sf_id: str, payload: dict[str, Any]) -> None:
        writeback.enqueue(
            self.session,
            sf_object=sf_object,
            operation="update",
            sf_id=sf_id,
            payload=payload,
            shipment_id=self.shipment.id,
        )

    def _event_record(self, event: TrackingEvent) -> None:
        code_map = self.config.extra_codes
        status = code_status(event.code, code_map)
        payload: dict[str, Any] = {
            EVENT_KEY_FIELD: _key_of(event),
            "Skybill_Number__c": event.skybill_number,
            "Code__c": event.code,
            "Label__c": event.label[:255],
            "Event_Time__c": _iso(event.time),
            "Place__c": event.place[:255],
            "Postal_Code__c": event.postal_code,
            "Status__c": status.value if status else None,
        }
        if self.shipment_record:
            payload["Shipment__c"] = self.shipment_record
        if self.order_id:
            payload["Order__c"] = self.order_id
        writeback.enqueue(
            self.session,
            sf_object=EVENT_OBJECT,
            operation="upsert",
            external_id_field=EVENT_KEY_FIELD,
            payload=payload,
            shipment_id=self.shipment.id,
        )


# --- support Cases ----------------------------------------------------------------------------


@dataclass
class Cases:
    """One Case per order: opened on an exception status, commented on later, closed on delivery.

    A Case's id is known only once its create is flushed; until then, updates wait in
    `TrackingCase.pending` and `link_cases` sends them.
    """

    session: Session
    shipment: Shipment
    config: CaseConfig
    order_id: str

    @property
    def order_key(self) -> str:
        return f"{self.shipment.sf_object}:{self.shipment.sf_id}"

    def on_status(self, status: ShipmentStatus, last: TrackingEvent, shipment_record: str) -> None:
        row = self.session.scalar(
            select(TrackingCase).where(TrackingCase.order_key == self.order_key).with_for_update()
        )
        is_open = row is not None and row.state == "open"
        comment = (
            f"Chronopost {last.code} {last.label} — {last.place} "
            f"({_iso(last.time)}, parcel {last.skybill_number}): status {status.value}"
        ).replace("  ", " ")
        if status.value in self.config.statuses and not is_open:
            self._open(row, status, last, shipment_record, comment)
            return
        if not is_open or row is None:
            return
        fields: dict[str, Any] = {"Chronopost_Status__c": status.value}
        if status is ShipmentStatus.DELIVERED and self.config.close_on_delivery:
            fields["Status"] = self.config.closed_status
            row.state = "closed"
        elif self.config.update_status and status.value in self.config.statuses:
            fields["Status"] = self.config.update_status
        row.status = status.value
        tell(self.session, row, fields, comment)

    def _open(
        self,
        row: TrackingCase | None,
        status: ShipmentStatus,
        last: TrackingEvent,
        shipment_record: str,
        comment: str,
    ) -> None:
        if row is None:
            row = TrackingCase(order_key=self.order_key, seq=0)
            self.session.add(row)
        row.seq += 1
        row.shipment_id = self.shipment.id
        row.case_id, row.state, row.status, row.pending = "", "open", status.value, []
        row.create_key = f"case:{self.order_key}:{row.seq}"
        reference = self.shipment.order_number or self.shipment.sf_id
        payload: dict[str, Any] = {
            "Subject": f"Chronopost {status.value.replace('_', ' ')}: order {reference}"[:255],
            "Description": comment,
            "Status": self.config.new_status,
            "Origin": self.config.origin,
            "Priority": self.config.priority,
            "Chronopost_Tracking_Number__c": last.skybill_number,
            "Chronopost_Status__c": status.value,
        }
        optional = {
            "RecordTypeId": self.config.record_type_id,
            "OwnerId": self.config.owner_id,
            "AccountId": str((self.shipment.source or {}).get("account_id") or ""),
            "Chronopost_Order__c": self.order_id,
            "Chronopost_Shipment__c": shipment_record,
        }
        payload.update({k: v for k, v in optional.items() if v})
        writeback.enqueue(
            self.session,
            sf_object="Case",
            operation="create",
            payload=payload,
            shipment_id=self.shipment.id,
            dedup_key=row.create_key,
        )
        log.info("support case opened", shipment_id=self.shipment.id, status=status.value)


def tell(session: Session, row: TrackingCase, fields: dict[str, Any], comment: str) -> None:
    """Update the Case and add a comment, or keep both until the Case's id is known."""
    if not row.case_id:
        row.pending = [*row.pending, {"fields": fields, "comment": comment}]
        return
    writeback.enqueue(
        session,
        sf_object="Case",
        operation="update",
        sf_id=row.case_id,
        payload=fields,
        shipment_id=row.shipment_id,
    )
    writeback.enqueue(
        session,
        sf_object="CaseComment",
        operation="create",
        payload={"ParentId": row.case_id, "CommentBody": comment[:4000]},
        shipment_id=row.shipment_id,
    )


def link_cases(store: Store) -> int:
    """After a flush: note the ids of created Cases and queue what waited for them."""
    linked = 0
    with store.session() as session:
        waiting = list(
            session.scalars(
                select(TrackingCase).where(
                    TrackingCase.case_id == "", TrackingCase.create_key != ""
                )
            )
        )
        keys = [row.create_key for row in waiting]
        sent: dict[str, str] = {}
        for part in _chunks(keys):
            for key, result in session.execute(
                select(Outbox.dedup_key, Outbox.result).where(
                    Outbox.dedup_key.in_(part), Outbox.state == "sent"
                )
            ):
                if isinstance(result, dict) and result.get("id"):
                    sent[key] = str(result["id"])
        for row in waiting:
            if row.create_key not in sent:
                continue
            row.case_id = sent[row.create_key]
            pending, row.pending = list(row.pending), []
            for item in pending:
                tell(session, row, dict(item["fields"]), str(item["comment"]))
            linked += 1
    return linked


def flush(store: Store, salesforce: SalesforcePort, now: Now = _utcnow) -> writeback.FlushReport:
    """Flush the outbox, link new Cases, and flush what waited for their ids."""
    flusher = writeback.Flusher(
        store, salesforce, on_failure=exceptions.on_writeback_failure, now=now
    )
    # One big round: rows of all objects are claimed together, so each object's writes fill
    # whole collections of 200 rather than being split across rounds.
    report = flusher.flush(limit=10_000)
    if link_cases(store):
        report.add(flusher.flush(limit=10_000))
    return report


# --- pushed events: the webhook inbox ---------------------------------------------------------


def inbox_event(payload: Mapping[str, Any]) -> TrackingEvent:
    """The TrackingEvent stored by the webhook (its own field names, see docs/webhooks.md)."""
    return TrackingEvent(
        skybill_number=str(payload["skybillNumber"]),
        code=str(payload["code"]),
        label=str(payload.get("eventLabel") or ""),
        time=dt.datetime.fromisoformat(str(payload["eventDate"])),
        place=str(payload.get("officeLabel") or ""),
        postal_code=str(payload.get("zipCode") or ""),
        high_priority=bool(payload.get("highPriority", False)),
    )


def process_inbox(tracking: Tracking, limit: int = 500) -> int:
    """Ingest accepted webhook events, each exactly once: claim, ingest and mark in one commit."""
    claim = uuid.uuid4().hex[:9]  # state is 10 characters: "c" + 9
    with tracking.store.session() as session:
        # Writing first takes SQLite's write lock before anything is read; on PostgreSQL,
        # SKIP LOCKED lets several drainers share the backlog without waiting on each other.
        batch = (
            select(WebhookInbox.id)
            .where(WebhookInbox.state == "pending")
            .order_by(WebhookInbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.id.in_(batch), WebhookInbox.state == "pending")
            .values(state=f"c{claim}")
            .execution_options(synchronize_session=False)
        )
        rows = list(session.scalars(select(WebhookInbox).where(WebhookInbox.state == f"c{claim}")))
        if not rows:
            return 0
        tracking.ingest_in(session, [inbox_event(r.payload) for r in rows], "webhook")
        now = tracking.now()
        for row in rows:
            row.state, row.processed_at = "done", now
    return len(rows)


def purge_inbox(store: Store, older_than: dt.datetime) -> int:
    """Forget processed events past the replay window (the signature refuses older requests)."""
    with store.session() as session:
        result = session.execute(
            delete(WebhookInbox).where(
                WebhookInbox.state == "done", WebhookInbox.processed_at < older_than
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


# --- shared rate limits -------------------------------------------------------------------------


class Windows(Protocol):
    """Counts calls per (key, window) somewhere every worker sees: the database or Redis."""

    def take(self, key: str, window: int, wanted: int, limit: int) -> int: ...


@dataclass
class DatabaseWindows:
    store: Store

    def take(self, key: str, window: int, wanted: int, limit: int) -> int:
        """Grant up to `wanted` calls in this window without ever passing `limit`."""
        with self.store.session() as session:
            insert_ignore(session, RateWindow, [{"key": key, "window": window, "count": 0}])
            used = session.scalar(
                select(RateWindow.count)
                .where(RateWindow.key == key, RateWindow.window == window)
                .with_for_update()
            )
            granted = max(0, min(wanted, limit - int(used or 0)))
            if granted:
                session.execute(
                    update(RateWindow)
                    .where(RateWindow.key == key, RateWindow.window == window)
                    .values(count=RateWindow.count + granted)
                )
            if window % 64 == 0:  # now and then, forget old windows
                session.execute(
                    delete(RateWindow).where(RateWindow.key == key, RateWindow.window < window - 4)
                )
        return granted


@dataclass
class RedisWindows:
    url: str
    _client: Any = None

    def take(self, key: str, window: int, wanted: int, limit: int) -> int:
        import redis

        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        name = f"chronoforce:rate:{key}:{window}"
        pipe = self._client.pipeline()
        pipe.incrby(name, wanted)
        pipe.expire(name, 7200)
        total = int(pipe.execute()[0])
        over = max(0, min(wanted, total - limit))
        if over:
            self._client.decrby(name, over)  # give back what we may not use
        return wanted - over


def windows_for(store: Store, url: str = "") -> Windows:
    return (
        RedisWindows(url) if url.startswith(("redis://", "rediss://")) else DatabaseWindows(store)
    )


@dataclass
class RateLimiter:
    """At most `limit` calls per `period` seconds for `key`, shared by every process."""

    windows: Windows
    key: str
    limit: int
    period: float = 1.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def window(self) -> int:
        return int(self.clock() // self.period)

    def take(self, wanted: int) -> int:
        return self.windows.take(self.key, self.window(), wanted, self.limit)

    def acquire(self, deadline: float | None = None) -> bool:
        """Wait for one call; False when `deadline` (clock time) passes first."""
        while True:
            if self.take(1):
                return True
            wake = (self.window() + 1) * self.period
            if deadline is not None and wake > deadline:
                return False
            self.sleep(max(0.001, wake - self.clock()))


# --- planning: how often each parcel is worth a call --------------------------------------------


@dataclass
class PollPlanner:
    """Next poll times from the status, fitted to the carrier call budget.

    Without a budget a parcel is polled every `ideal_delay(status)` (T0, about the time to its
    next event). With a budget of B calls an hour, intervals become T = max(floor, μ·√(T0/w)),
    μ chosen so the active parcels use 90% of B, w the status's urgency (`URGENCY_WEIGHT`). A
    parcel polled every T is on average T/2 stale per event, and events come about every T0:
    this T minimizes total urgency-weighted staleness for the budget (Lagrange), so urgent
    parcels get short intervals and slow, unhurried ones absorb a shortage (or share a surplus).
    """

    config: TrackingConfig
    stretch: float = 0.0  # μ, in √hours; 0 = ideal intervals

    def interval(self, status: ShipmentStatus) -> dt.timedelta | None:
        ideal = ideal_delay(status)
        if ideal is None:
            return None
        if self.stretch <= 0:
            return ideal
        hours = ideal.total_seconds() / HOUR
        return dt.timedelta(hours=self._hours(status, hours, self.stretch))

    def _hours(self, status: ShipmentStatus, t0: float, mu: float) -> float:
        floor = self.config.min_poll_minutes / 60
        return max(floor, mu * math.sqrt(t0 / URGENCY_WEIGHT.get(status, 1.0)))

    def next_poll_at(
        self, status: ShipmentStatus, last_event_at: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        if status in TERMINAL:
            # One last look after the grace period catches a late correction; then stop.
            grace = dt.timedelta(hours=self.config.terminal_grace_hours)
            last_look = utc(last_event_at or now) + grace
            return last_look if last_look > now else None
        interval = self.interval(status)
        return None if interval is None else now + interval

    def calibrate(self, parcels_by_status: Mapping[ShipmentStatus, int]) -> float:
        """Choose μ for the active population (parcel counts per status)."""
        budget = self.config.calls_per_hour
        if budget is None:
            self.stretch = 0.0
            return self.stretch
        target = 0.9 * budget
        ideal = {
            s: d.total_seconds() / HOUR
            for s in parcels_by_status
            if (d := ideal_delay(s)) is not None
        }

        def calls_per_hour(mu: float) -> float:
            return sum(parcels_by_status[s] / self._hours(s, t0, mu) for s, t0 in ideal.items())

        if not ideal:
            self.stretch = 0.0
            return self.stretch
        low, high = 0.0, 1.0
        while calls_per_hour(high) > target:
            high *= 2
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (mid, high) if calls_per_hour(mid) > target else (low, mid)
        self.stretch = high
        return self.stretch


URGENCY = {
    ShipmentStatus.OUT_FOR_DELIVERY.value: 0,
    ShipmentStatus.DELIVERY_ATTEMPTED.value: 1,
    ShipmentStatus.EXCEPTION.value: 2,
    ShipmentStatus.IN_TRANSIT.value: 3,
    ShipmentStatus.PICKED_UP.value: 3,
    ShipmentStatus.AVAILABLE_FOR_PICKUP.value: 4,
    ShipmentStatus.RETURNING.value: 4,
}


# --- polling ------------------------------------------------------------------------------------


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
                    .order_by(urgency, Shipment.next_poll_at, Shipment.id)
                    .limit(self.config.batch_size)
                )
            )
            numbers: dict[int, list[str]] = defaultdict(list)
            for part in _chunks(ids):
                for shipment_id, skybill in session.execute(
                    select(Parcel.shipment_id, Parcel.skybill_number)
                    .where(Parcel.shipment_id.in_(part), Parcel.live)
                    .order_by(Parcel.position)
                ):
                    numbers[shipment_id].append(skybill)
        return [(i, numbers[i]) for i in ids]

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
            for part in _chunks([i for i, _ in due]):
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
