"""Stored tracking events: keys, rows, dedup on insert, and the status of a shipment from them.

The status rules are domain/status.py's; this module only loads and stores. It must never
invent a status rule of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import StatusResolution, combine_parcel_statuses, resolve_status
from chronoforce.store.models import Event, Parcel, Shipment

Now = Callable[[], dt.datetime]
CHUNK = 500  # ids per IN list


def utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; naive values are UTC already (SQLite hands them back without an offset)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_key(skybill: str, code: str, time_: dt.datetime) -> str:
    """`Event_Key__c`: skybill|code|ISO-8601 UTC time — the same event always has the same key."""
    return f"{skybill}|{code}|{iso(time_)}"


def key_of(event: TrackingEvent) -> str:
    return event_key(event.skybill_number, event.code, event.time)


def time_order(event: TrackingEvent) -> tuple[dt.datetime, str, str]:
    return (utc(event.time), event.skybill_number, event.code)


def row_of(event: TrackingEvent, source: str, now: dt.datetime) -> dict[str, Any]:
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


def insert_new_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the events not stored yet; returns the keys of those that were new.

    Polls mostly return events already stored, so the known keys are read first; the rest go
    in as one cached INSERT … ON CONFLICT DO NOTHING RETURNING (a concurrent writer may still
    win a key: it is then simply not ours).
    """
    known: set[str] = set()
    skybills = sorted({r["skybill_number"] for r in rows})
    for part in chunks(skybills):
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


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def live_parcels(session: Session, skybills: Sequence[str]) -> list[Parcel]:
    found: list[Parcel] = []
    for part in chunks(skybills):
        found.extend(
            session.scalars(select(Parcel).where(Parcel.skybill_number.in_(part), Parcel.live))
        )
    return found


def lock_shipments(session: Session, ids: Sequence[int]) -> list[Shipment]:
    """The shipments, row-locked in id order on PostgreSQL (SQLite holds the write lock)."""
    found: list[Shipment] = []
    for part in chunks(ids):
        found.extend(
            session.scalars(
                select(Shipment)
                .where(Shipment.id.in_(part))
                .order_by(Shipment.id)
                .with_for_update()
            )
        )
    return found


def events_by_shipment(
    session: Session, ids: Sequence[int]
) -> dict[int, dict[str, list[TrackingEvent]]]:
    """shipment id → skybill → its events in time order (live parcels only)."""
    skybills: dict[str, int] = {}
    for part in chunks(ids):
        for shipment_id, skybill in session.execute(
            select(Parcel.shipment_id, Parcel.skybill_number).where(
                Parcel.shipment_id.in_(part), Parcel.live
            )
        ):
            skybills[skybill] = shipment_id
    result: dict[int, dict[str, list[TrackingEvent]]] = {i: {} for i in ids}
    for skybill, shipment_id in skybills.items():
        result[shipment_id][skybill] = []
    for part in chunks(sorted(skybills)):
        for row in session.scalars(select(Event).where(Event.skybill_number.in_(part))):
            result[skybills[row.skybill_number]][row.skybill_number].append(_event_of(row))
    for parcels in result.values():
        for events in parcels.values():
            events.sort(key=time_order)
    return result


@dataclass(frozen=True)
class ShipmentTracking:
    """What a shipment's events add up to, per domain/status.py."""

    status: ShipmentStatus
    last_event: TrackingEvent
    fingerprint: str
    parcels: Mapping[str, StatusResolution]


def shipment_tracking(
    parcels: Mapping[str, Sequence[TrackingEvent]], extra_codes: Mapping[str, str]
) -> ShipmentTracking | None:
    """The shipment's status (parcels combined), newest event and fingerprint; None before any
    event (the label-created status was written with the label)."""
    events = [e for evs in parcels.values() for e in evs]
    if not events:
        return None
    resolved = {s: resolve_status(evs, extra_codes) for s, evs in parcels.items()}
    status = combine_parcel_statuses(r.status for r in resolved.values())
    assert status is not None  # there is at least one parcel
    # One fingerprint per parcel (its status and newest event), combined: an event of any
    # parcel that moves what Salesforce shows changes it, an event already seen does not.
    parts = [status.value, *(f"{s}:{resolved[s].fingerprint}" for s in sorted(resolved))]
    return ShipmentTracking(
        status=status,
        last_event=max(events, key=time_order),
        fingerprint=hashlib.sha256("|".join(parts).encode()).hexdigest(),
        parcels=resolved,
    )
