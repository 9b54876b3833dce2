"""The one ingestion path for polled and pushed events (`Tracking.ingest_in`).

Dedup → event table → status recomputed → Salesforce writes queued iff the fingerprint changed.
It never writes to Salesforce directly (the outbox does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.logs import get_logger
from chronoforce.pipeline.tracking.config import TrackingConfig
from chronoforce.pipeline.tracking.events import (
    Now,
    events_by_shipment,
    insert_new_events,
    key_of,
    live_parcels,
    lock_shipments,
    row_of,
    shipment_tracking,
    time_order,
)
from chronoforce.pipeline.tracking.planner import PollPlanner
from chronoforce.pipeline.tracking.salesforce_writes import SalesforceWrites
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

log = get_logger(component="tracking")


# A return label's parcels travel back to us (pipeline/returns.py, intent "return"): their
# delivery is our `returned`, every step on the way `returning`.
_RETURN_LEG = frozenset(
    {
        ShipmentStatus.PICKED_UP,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.OUT_FOR_DELIVERY,
        ShipmentStatus.AVAILABLE_FOR_PICKUP,
        ShipmentStatus.DELIVERY_ATTEMPTED,
    }
)


def for_intent(status: ShipmentStatus, intent: str) -> ShipmentStatus:
    """The carrier's status as the shipment's intent reads it (a return's delivery: returned)."""
    if intent != "return":
        return status
    if status is ShipmentStatus.DELIVERED:
        return ShipmentStatus.RETURNED
    return ShipmentStatus.RETURNING if status in _RETURN_LEG else status


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
    now: Now = SYSTEM_CLOCK.now
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
        unique = {key_of(e): row_of(e, source, now) for e in events}
        # Sorted keys: concurrent inserts of overlapping events cannot deadlock. The insert is
        # the transaction's first write, so on SQLite it also takes the write lock up front.
        rows = [unique[k] for k in sorted(unique)]
        report = IngestReport(received=len(rows))
        new_keys = insert_new_events(session, rows) if rows else set()
        report.new_events = len(new_keys)
        skybills = sorted({k.split("|", 1)[0] for k in new_keys})
        parcels = live_parcels(session, skybills)
        report.unknown_skybills = len(set(skybills) - {p.skybill_number for p in parcels})
        touched = {p.shipment_id for p in parcels}
        ids = sorted(touched | set(polled))
        if not ids:
            return report
        shipments = lock_shipments(session, ids)
        events_of = events_by_shipment(session, sorted(touched))
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
        found = shipment_tracking(parcels, self.config.extra_codes)
        if found is None or found.fingerprint == shipment.tracking_fingerprint:
            return False
        status, last, previous = (
            for_intent(found.status, shipment.intent),
            found.last_event,
            shipment.status,
        )
        shipment.status = status.value
        shipment.tracking_fingerprint = found.fingerprint
        shipment.last_event_code = last.code
        shipment.last_event_at = last.time
        self._plan(shipment, now)
        events = sorted((e for evs in parcels.values() for e in evs), key=time_order)
        fresh = [e for e in events if key_of(e) in new_keys]
        SalesforceWrites(session, shipment, self.config, now).queue(status, last, fresh, previous)
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
