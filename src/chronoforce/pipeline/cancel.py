"""The cancel use case: void every live label of a shipment not yet picked up.

The shipment is leased for the whole cancel, so no worker relabels it meanwhile; every
cancelSkybill goes through the shared gates; the parcels are marked as each call succeeds, so
a refusal or an outage halfway leaves the truth behind. Salesforce hears of it through the
outbox. It never cancels a shipment past pickup, nor one whose label is being made.

Chronopost takes a cancel from about ten minutes after the label is made ([D] §2.6.4): one asked
sooner is queued (`shipment.cancel_at`) and sent by the runner's sweep once the window opens
(`run_due`); one Chronopost refuses because it has taken the parcel over is a ConflictError.
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
    CancelTooEarlyError,
    CarrierValidationError,
    ChronoforceError,
    ConflictError,
    NotFoundError,
    TransientError,
)
from chronoforce.domain.models import ShipmentStatus
from chronoforce.domain.shipment_state import CANCELLABLE, ShipmentState, check_transition
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.cluster import utc
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.labels import BEFORE_PICKUP
from chronoforce.salesforce.fields import LABEL_STATUS, RETURN_TRACKING_NUMBER, STATUS
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel, Shipment
from chronoforce.store.ops import release_lease, take_lease

log = get_logger(component="cancel")

CANCELLED_STATE = ShipmentState.CANCELLED
QUEUED_STATUS = "cancel_queued"  # asked inside Chronopost's cancel window: sent when it opens


@dataclass(frozen=True)
class Cancelled:
    shipment_id: int
    cancelled: list[str]
    status: str
    opens_at: dt.datetime | None = None  # a queued cancel: when it is sent


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
        """Void every live label; ConflictError once past pickup or while a label is made.

        Inside Chronopost's cancel window the rest is queued: `Cancelled.status` is
        QUEUED_STATUS and `opens_at` says when the runner sends it."""
        parcels = self._take(shipment_id)
        if parcels is None:
            with self.store.session() as session:
                return Cancelled(shipment_id, [], session.get_one(Shipment, shipment_id).status)
        done: list[str] = []
        try:
            self.gates.before_call()  # breaker open: refuse before the first call
            for number, created_at in parcels:
                call = partial(self.carrier.cancel, number, created_at=created_at, now=self.now())
                self.gates.call(call)
                done.append(number)
        except CancelTooEarlyError as exc:
            self._settle(shipment_id, done, final=False, queue_at=exc.opens_at)
            log.info("cancel queued until the window opens", shipment_id=shipment_id,
                     opens_at=exc.opens_at.isoformat())  # fmt: skip
            return Cancelled(shipment_id, done, QUEUED_STATUS, exc.opens_at)
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

    def due(self, limit: int = 50) -> list[int]:
        """Queued cancels whose window has opened."""
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Shipment.id)
                    .where(Shipment.cancel_at <= self.now(), Shipment.state != CANCELLED_STATE)
                    .order_by(Shipment.cancel_at)
                    .limit(limit)
                )
            )

    def run_due(self) -> int:
        """Send the queued cancels whose window has opened (the runner's sweep); returns how
        many were settled. A refusal is kept as an exception for review, never dropped; an
        outage leaves the cancel queued for the next sweep."""
        settled = 0
        for shipment_id in self.due():
            try:
                done = self.cancel(shipment_id)
            except TransientError as exc:
                log.warning("queued cancel not sent yet", shipment_id=shipment_id, code=exc.code)
                continue
            except ChronoforceError as exc:
                self._refused(shipment_id, exc)
                settled += 1
                continue
            settled += done.status != QUEUED_STATUS
        return settled

    def _refused(self, shipment_id: int, error: ChronoforceError) -> None:
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            row.cancel_at = None
            exceptions.record(session, error, operation="cancel", shipment=row)

    def _take(self, shipment_id: int) -> list[tuple[str, dt.datetime | None]] | None:
        """Lease the shipment; its live parcels' skybill numbers and label times (None:
        cancelled already)."""
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
            return [(p.skybill_number, utc(p.created_at)) for p in row.parcels if p.live]

    def _settle(
        self,
        shipment_id: int,
        numbers: list[str],
        *,
        final: bool,
        queue_at: dt.datetime | None = None,
    ) -> None:
        """Mark what Chronopost cancelled; when `final`, the shipment too, written back;
        `queue_at`: the rest is sent then (the cancel window)."""
        now = self.now()
        with self.store.session() as session:
            if numbers:
                for parcel in session.scalars(
                    select(Parcel).where(Parcel.skybill_number.in_(numbers))
                ):
                    parcel.live, parcel.cancelled_at = False, now
            row = session.get_one(Shipment, shipment_id)
            row.cancel_at = queue_at
            if final:
                row.state = check_transition(row.state, CANCELLED_STATE, record_id=row.sf_id)
                row.status = ShipmentStatus.CANCELLED.value
                row.next_poll_at = None
                writeback.enqueue(
                    session, sf_object=row.sf_object, operation="update", sf_id=row.sf_id,
                    shipment_id=shipment_id, payload=_cancelled_fields(row.intent),
                )  # fmt: skip
                # The voided label's file leaves the records it was linked to (writeback.py).
                writeback.enqueue_rows(session, writeback.unlink_voided_rows(session, shipment_id))
            release_lease(session, shipment_id, self.owner)


def _cancelled_fields(intent: str) -> dict[str, Any]:
    if intent == "outbound":
        return {LABEL_STATUS.api: "Cancelled", STATUS.api: "cancelled"}
    return {RETURN_TRACKING_NUMBER.api: None}
