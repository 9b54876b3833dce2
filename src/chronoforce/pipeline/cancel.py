"""The cancel use case: void every live label of a shipment not yet picked up.

The shipment is leased for the whole cancel, so no worker relabels it meanwhile; every
cancelSkybill goes through the shared gates; the parcels are marked as each call succeeds, so
a refusal or an outage halfway leaves the truth behind. Salesforce hears of it through the
outbox. It never cancels a shipment past pickup, nor one whose label is being made.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from chronoforce.domain.errors import (
    CarrierValidationError,
    ConflictError,
    NotFoundError,
    TransientError,
)
from chronoforce.domain.models import ShipmentStatus
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.labels import BEFORE_PICKUP
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel, Shipment
from chronoforce.store.ops import release_lease, take_lease

log = get_logger(component="cancel")

CANCELLED_STATE = "cancelled"
CANCELLABLE = ("pending", "retry", "labeled", "exception", "changed")  # not `calling`


@dataclass(frozen=True)
class Cancelled:
    shipment_id: int
    cancelled: list[str]
    status: str


@dataclass
class Cancels:
    """Cancels through the gates, under the shipment's lease."""

    store: Store
    carrier: Any  # ChronopostClient (cancel)
    gates: Gates
    now: Callable[[], dt.datetime]
    lease: dt.timedelta = dt.timedelta(minutes=5)
    owner: str = field(default_factory=lambda: f"cancel-{uuid.uuid4().hex[:8]}")

    def shipment_of(self, sf_object: str, sf_id: str, intent: str) -> int:
        """The order's outbound (or return) shipment, or NotFoundError."""
        with self.store.session() as session:
            shipment_id = session.scalar(
                select(Shipment.id).where(
                    Shipment.sf_object == sf_object,
                    Shipment.sf_id == sf_id,
                    Shipment.intent == intent,
                )
            )
        if shipment_id is None:
            raise NotFoundError(
                f"order {sf_id} has no {intent} shipment", code="SHIPMENT_NOT_FOUND",
                record_id=sf_id,
            )  # fmt: skip
        return int(shipment_id)

    def cancel(self, shipment_id: int) -> Cancelled:
        """Void every live label; ConflictError once past pickup or while a label is made."""
        numbers = self._take(shipment_id)
        if numbers is None:
            with self.store.session() as session:
                return Cancelled(shipment_id, [], session.get_one(Shipment, shipment_id).status)
        done: list[str] = []
        try:
            self.gates.before_call()  # breaker open: refuse before the first call
            for number in numbers:
                self.gates.call(partial(self.carrier.cancel, number))
                done.append(number)
        except CarrierValidationError as exc:
            self._settle(shipment_id, done, final=False)
            raise ConflictError(
                f"Chronopost refused to cancel {number}: {exc.message}", code=exc.code,
                record_id=exc.record_id, operation=exc.operation or "cancelSkybill",
            ) from exc  # fmt: skip
        except TransientError:
            self._settle(shipment_id, done, final=False)
            raise
        self._settle(shipment_id, done, final=True)
        log.info("labels cancelled", shipment_id=shipment_id, skybills=done)
        return Cancelled(shipment_id, done, ShipmentStatus.CANCELLED.value)

    def _take(self, shipment_id: int) -> list[str] | None:
        """Lease the shipment; its live skybill numbers (None: cancelled already)."""
        with self.store.session() as session:
            row = session.get(Shipment, shipment_id)
            if row is None:
                raise NotFoundError(f"no shipment {shipment_id}", code="SHIPMENT_NOT_FOUND")
            if row.state == CANCELLED_STATE:
                return None
            if row.status not in BEFORE_PICKUP:
                raise ConflictError(
                    f"shipment {shipment_id} is past pickup (status {row.status}): it cannot "
                    "be cancelled",
                    code="ALREADY_PICKED_UP",
                    record_id=row.sf_id,
                )
            if not take_lease(
                session, shipment_id, self.owner, self.now(), self.lease, CANCELLABLE
            ):
                raise ConflictError(
                    "the label is being made; try again", code="SHIPMENT_BUSY",
                    record_id=row.sf_id,
                )  # fmt: skip
            return [p.skybill_number for p in row.parcels if p.live]

    def _settle(self, shipment_id: int, numbers: list[str], *, final: bool) -> None:
        """Mark what Chronopost cancelled; when `final`, the shipment too, written back."""
        now = self.now()
        with self.store.session() as session:
            if numbers:
                for parcel in session.scalars(
                    select(Parcel).where(Parcel.skybill_number.in_(numbers))
                ):
                    parcel.live, parcel.cancelled_at = False, now
            row = session.get_one(Shipment, shipment_id)
            if final:
                row.state, row.status = CANCELLED_STATE, ShipmentStatus.CANCELLED.value
                row.next_poll_at = None
                writeback.enqueue(
                    session, sf_object=row.sf_object, operation="update", sf_id=row.sf_id,
                    shipment_id=shipment_id, payload=_cancelled_fields(row.intent),
                )  # fmt: skip
            release_lease(session, shipment_id, self.owner)


def _cancelled_fields(intent: str) -> dict[str, Any]:
    if intent == "outbound":
        return {"Chronopost_Label_Status__c": "Cancelled", "Chronopost_Status__c": "cancelled"}
    return {"Chronopost_Return_Tracking_Number__c": None}
