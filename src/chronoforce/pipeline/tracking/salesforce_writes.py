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
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

EVENT_OBJECT = "Chronopost_Tracking_Event__c"
EVENT_KEY_FIELD = "Event_Key__c"


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
            "Chronopost_Status__c": status.value,
            "Chronopost_Last_Event_Code__c": last.code,
            "Chronopost_Last_Event_Label__c": last.label[:255],
            "Chronopost_Last_Event_Time__c": iso(last.time),
            "Chronopost_Last_Event_Place__c": last.place[:255],
        }
        if self.shipment_record:
            payload = dict(last_event)
            if status.value in self.config.shipment_status_map:
                payload["Status"] = self.config.shipment_status_map[status.value]
            if status is ShipmentStatus.DELIVERED:
                payload["ActualDeliveryDate"] = iso(last.time)
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
            "Skybill_Number__c": event.skybill_number,
            "Code__c": event.code,
            "Label__c": event.label[:255],
            "Event_Time__c": iso(event.time),
            "Place__c": event.place[:255],
            "Postal_Code__c": event.postal_code,
            "Status__c": status.value if status else None,
        }
        if self.shipment_record:
            payload["Shipment__c"] = self.shipment_record
        if self.order_id:
            payload["Order__c"] = self.order_id
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
