"""What the console pages show, read from the store: overview counts, search, a shipment's story.

Read-only and portable (SQLite and PostgreSQL): every function takes a session and returns plain
rows or small dicts. It must never write, and never load label bytes except for a download.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session, defer

from chronoforce import metrics
from chronoforce.salesforce.mapping import MappingConfig, value_at
from chronoforce.store.models import Event, ExceptionRow, Outbox, Parcel, Shipment

# Filters of the review queue (pipeline/exceptions.kind_of); "carrier" groups the carrier kinds.
EXCEPTION_KINDS: dict[str, tuple[str, ...]] = {
    "address": ("address",),
    "carrier_validation": ("carrier_validation", "carrier_account", "routing"),
    "salesforce": ("salesforce", "mapping"),
    "timeout": ("timeout", "carrier_unavailable"),
}
HEALTH_WINDOW = dt.timedelta(minutes=15)
OUTBOX_LATE = dt.timedelta(minutes=10)
CHART_HOURS = 12


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass
class Health:
    name: str
    state: str  # ok, degraded, idle
    detail: str


@dataclass
class Overview:
    by_status: list[tuple[str, int]]
    shipments_today: int
    labels_today: int
    exceptions_open: list[tuple[str, int]]
    due_labels: int
    outbox_pending: int
    health: list[Health]
    writes_per_hour: list[tuple[str, int]]
    api_usage: tuple[int, int] | None
    max_writes: int = field(default=1)


def overview(session: Session, now: dt.datetime) -> Overview:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    by_status = session.execute(
        select(Shipment.status, func.count(Shipment.id))
        .where(Shipment.created_at >= today)
        .group_by(Shipment.status)
        .order_by(func.count(Shipment.id).desc())
    ).all()
    labels_today = session.scalar(select(func.count(Parcel.id)).where(Parcel.created_at >= today))
    open_kinds = session.execute(
        select(ExceptionRow.kind, func.count(ExceptionRow.id))
        .where(ExceptionRow.state != "resolved")
        .group_by(ExceptionRow.kind)
    ).all()
    due = session.scalar(
        select(func.count(Shipment.id)).where(
            Shipment.state.in_(metrics.DUE_STATES),
            or_(Shipment.next_attempt_at.is_(None), Shipment.next_attempt_at <= now),
        )
    )
    pending = session.scalar(select(func.count(Outbox.id)).where(Outbox.state == "pending"))
    since = now - dt.timedelta(hours=CHART_HOURS - 1)
    sent = session.scalars(
        select(Outbox.sent_at).where(Outbox.sent_at >= since.replace(minute=0, second=0))
    ).all()
    hours = Counter(_utc(s).strftime("%H:00") for s in sent if s is not None)
    chart = [
        (label, hours.get(label, 0))
        for label in ((since + dt.timedelta(hours=h)).strftime("%H:00") for h in range(CHART_HOURS))
    ]
    result = Overview(
        by_status=[(s, int(n)) for s, n in by_status],
        shipments_today=sum(int(n) for _, n in by_status),
        labels_today=int(labels_today or 0),
        exceptions_open=[(k, int(n)) for k, n in open_kinds],
        due_labels=int(due or 0),
        outbox_pending=int(pending or 0),
        health=[carrier_health(session, now), salesforce_health(session, now)],
        writes_per_hour=chart,
        api_usage=metrics.api_usage(),
    )
    result.max_writes = max([1, *(n for _, n in chart)])
    return result


def carrier_health(session: Session, now: dt.datetime) -> Health:
    """Degraded while timeouts or outages were seen in the last minutes and not since cleared."""
    recent = session.scalars(
        select(ExceptionRow)
        .where(
            ExceptionRow.kind.in_(EXCEPTION_KINDS["timeout"]),
            ExceptionRow.state != "resolved",
            ExceptionRow.last_seen >= now - HEALTH_WINDOW,
        )
        .order_by(ExceptionRow.last_seen.desc())
    ).first()
    if recent is not None:
        return Health("Chronopost", "degraded", f"{recent.code}: {recent.message[:120]}")
    last = session.scalar(select(func.max(Parcel.created_at)))
    if last is None:
        return Health("Chronopost", "idle", "no label made yet")
    return Health("Chronopost", "ok", f"last label {_utc(last):%Y-%m-%d %H:%M} UTC")


def salesforce_health(session: Session, now: dt.datetime) -> Health:
    """Refused writes need a person; writes waiting longer than a few minutes mean trouble."""
    failed = session.scalar(select(func.count(Outbox.id)).where(Outbox.state == "failed")) or 0
    late = session.scalar(
        select(func.count(Outbox.id)).where(
            Outbox.state == "pending",
            Outbox.created_at <= now - OUTBOX_LATE,
            # A held tracking write (issue 21) is late only once its hold is over.
            or_(Outbox.hold_until.is_(None), Outbox.hold_until <= now - OUTBOX_LATE),
        )
    )
    if late:
        return Health("Salesforce", "degraded", f"{late} write(s) waiting over 10 minutes")
    if failed:
        return Health("Salesforce", "degraded", f"{failed} write(s) refused: see exceptions")
    return Health("Salesforce", "ok", "writes flowing")


def search_shipments(session: Session, q: str, limit: int = 50) -> list[Shipment]:
    """By order number, skybill number, Salesforce id or customer (id, or name in the record)."""
    statement = select(Shipment).order_by(Shipment.id.desc())  # with `source`: customer names
    q = q.strip()
    if q:
        # An exact order number, record id or skybill number is what was meant: only that.
        exact = select(Parcel.shipment_id).where(Parcel.skybill_number == q.upper())
        found = list(
            session.scalars(
                statement.where(
                    or_(Shipment.order_number == q, Shipment.sf_id == q, Shipment.id.in_(exact))
                ).limit(limit)
            )
        )
        if found:
            return found
        # The record is stored as JSON with non-ASCII escaped (\u00fc): search for that form.
        # autoescape: %, _ and backslashes in the search are plain characters, not patterns.
        escaped = json.dumps(q)[1:-1]
        skybill = select(Parcel.shipment_id).where(
            Parcel.skybill_number.icontains(q, autoescape=True)
        )
        statement = statement.where(
            or_(
                Shipment.order_number.icontains(q, autoescape=True),
                Shipment.customer_id.icontains(q, autoescape=True),
                Shipment.id.in_(skybill),
                cast(Shipment.source, String).icontains(escaped, autoescape=True),
            )
        )
    return list(session.scalars(statement.limit(limit)))


def skybills_by_shipment(session: Session, ids: list[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(Parcel.shipment_id, Parcel.skybill_number)
        .where(Parcel.shipment_id.in_(ids), Parcel.live)
        .order_by(Parcel.position)
    ).all()
    out: dict[int, list[str]] = {}
    for shipment_id, skybill in rows:
        out.setdefault(shipment_id, []).append(skybill)
    return out


@dataclass
class ShipmentStory:
    shipment: Shipment
    parcels: list[Parcel]
    events: list[Event]
    writes: list[Outbox]
    exceptions: list[ExceptionRow]
    customer: str


def shipment_story(
    session: Session, shipment_id: int, mapping: MappingConfig
) -> ShipmentStory | None:
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        return None
    parcels = list(
        session.scalars(
            select(Parcel)
            .options(defer(Parcel.label_bytes))
            .where(Parcel.shipment_id == shipment_id)
            .order_by(Parcel.generation.desc(), Parcel.position)
        )
    )
    skybills = [p.skybill_number for p in parcels]
    events = list(
        session.scalars(
            select(Event).where(Event.skybill_number.in_(skybills)).order_by(Event.event_time)
        )
    )
    writes = list(
        session.scalars(select(Outbox).where(Outbox.shipment_id == shipment_id).order_by(Outbox.id))
    )
    problems = list(
        session.scalars(
            select(ExceptionRow)
            .where(ExceptionRow.shipment_id == shipment_id)
            .order_by(ExceptionRow.last_seen.desc())
        )
    )
    return ShipmentStory(
        shipment, parcels, events, writes, problems, customer_of(shipment, mapping)
    )


def customer_of(shipment: Shipment, mapping: MappingConfig) -> str:
    """The recipient's company and contact names, read through the org's field mapping."""
    record: Any = (shipment.source or {}).get("record") or {}
    names: list[str] = []
    for paths in (mapping.recipient.name, mapping.contact.name):
        value = next((value_at(record, p) for p in paths if value_at(record, p)), None)
        if value and str(value) not in names:
            names.append(str(value))
    return " · ".join(names) or shipment.customer_id


def exception_rows(
    session: Session, kind: str = "", state: str = "open", limit: int = 200
) -> list[ExceptionRow]:
    statement = (
        select(ExceptionRow)
        .options(defer(ExceptionRow.request_payload), defer(ExceptionRow.response_payload))
        .order_by(ExceptionRow.last_seen.desc())
    )
    if state == "open":
        statement = statement.where(ExceptionRow.state != "resolved")
    elif state != "all":
        statement = statement.where(ExceptionRow.state == state)
    if kind in EXCEPTION_KINDS:
        statement = statement.where(ExceptionRow.kind.in_(EXCEPTION_KINDS[kind]))
    return list(session.scalars(statement.limit(limit)))
