"""What a tracking status change queues in the outbox: Shipment, Order and tracking events.

It only enqueues (pipeline/writeback.py flushes); it must never call Salesforce itself.
With `tracking.salesforce_hold_s` > 0 (issue 21) the Order, Shipment and tracking-event writes
carry a hold (`hold_until`): the flusher sends them when it is over or a full collection of
their object is pending. Cases are never held (an agent is waiting for them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import map_event
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.ports import SalesforcePort
from chronoforce.pipeline.tracking.cases import Cases, link_cases
from chronoforce.pipeline.tracking.config import TrackingConfig
from chronoforce.pipeline.tracking.events import Now, iso, key_of
from chronoforce.salesforce.fields import (
    ACTUAL_DELIVERY_DATE,
    EVENT_CODE,
    EVENT_KEY,
    EVENT_LABEL,
    EVENT_ORDER,
    EVENT_PLACE,
    EVENT_POSTAL_CODE,
    EVENT_SHIPMENT,
    EVENT_SKYBILL,
    EVENT_STATUS,
    EVENT_TIME,
    LAST_EVENT_CODE,
    LAST_EVENT_LABEL,
    LAST_EVENT_PLACE,
    LAST_EVENT_TIME,
    RECORD_STATUS,
    STATUS,
    TRACKING_EVENT,
)
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

EVENT_OBJECT = TRACKING_EVENT
EVENT_KEY_FIELD = EVENT_KEY.api


@dataclass
class SalesforceWrites:
    """What one status change queues: Shipment, Order, tracking events, and the support Case."""

    session: Session
    shipment: Shipment
    config: TrackingConfig
    now: dt.datetime | None = None  # when the writes are queued (the hold counts from it)

    @property
    def hold_until(self) -> dt.datetime | None:
        hold = self.config.salesforce_hold_s
        return self.now + dt.timedelta(seconds=hold) if hold and self.now else None

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
            STATUS.api: status.value,
            LAST_EVENT_CODE.api: last.code,
            LAST_EVENT_LABEL.api: last.label[:255],
            LAST_EVENT_TIME.api: iso(last.time),
            LAST_EVENT_PLACE.api: last.place[:255],
        }
        if self.shipment_record:
            payload = dict(last_event)
            if status.value in self.config.shipment_status_map:
                payload[RECORD_STATUS.api] = self.config.shipment_status_map[status.value]
            if status is ShipmentStatus.DELIVERED:
                payload[ACTUAL_DELIVERY_DATE.api] = iso(last.time)
            self._enqueue("Shipment", self.shipment_record, payload)
        if self.order_id:
            payload = dict(last_event)
            if status.value in self.config.order_status_map:
                payload[RECORD_STATUS.api] = self.config.order_status_map[status.value]
            self._enqueue("Order", self.order_id, payload)
        if self.config.write_events:
            for event in fresh:
                self._event_record(event)
        if self.config.case.enabled and status.value != previous:
            Cases(
                self.session,
                self.shipment,
                self.config.case,
                self.order_id,
                self.config.extra_codes,
            ).on_status(status, last, self.shipment_record)

    def _enqueue(self, sf_object: str, sf_id: str, payload: dict[str, Any]) -> None:
        self._held(
            writeback.outbox_row(
                sf_object=sf_object,
                operation="update",
                sf_id=sf_id,
                payload=payload,
                shipment_id=self.shipment.id,
            )
        )

    def _held(self, row: dict[str, Any]) -> None:
        hold_until = self.hold_until
        if hold_until is not None:
            row["hold_until"] = hold_until
        writeback.enqueue_rows(self.session, [row])

    def _event_record(self, event: TrackingEvent) -> None:
        status = map_event(event.code, self.config.extra_codes).status
        payload: dict[str, Any] = {
            EVENT_KEY_FIELD: key_of(event),
            EVENT_SKYBILL.api: event.skybill_number,
            EVENT_CODE.api: event.code,
            EVENT_LABEL.api: event.label[:255],
            EVENT_TIME.api: iso(event.time),
            EVENT_PLACE.api: event.place[:255],
            EVENT_POSTAL_CODE.api: event.postal_code,
            EVENT_STATUS.api: status.value if status else None,
        }
        if self.shipment_record:
            payload[EVENT_SHIPMENT.api] = self.shipment_record
        if self.order_id:
            payload[EVENT_ORDER.api] = self.order_id
        self._held(
            writeback.outbox_row(
                sf_object=EVENT_OBJECT,
                operation="upsert",
                external_id_field=EVENT_KEY_FIELD,
                payload=payload,
                shipment_id=self.shipment.id,
            )
        )


def flush(
    store: Store, salesforce: SalesforcePort, now: Now = SYSTEM_CLOCK.now
) -> writeback.FlushReport:
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
