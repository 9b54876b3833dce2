"""Pushed events stored by the webhook, ingested exactly once each.

It must never mark an event done outside the transaction that ingested it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update

from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline.tracking.ingest import Tracking
from chronoforce.store.db import Store
from chronoforce.store.models import WebhookInbox


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
