"""The proof-of-delivery use case: once a delivery is recorded, fetch the signed slip when
Chronopost has it and attach it in Salesforce.

Chronopost makes the POD available one working day after delivery ([D] §2.6.2.b; [S] §3.18.5):
the first searchPOD is sent on the next French working day after the delivery (at POD_HOUR,
Paris time); "not ready yet" (3) is asked again the next working day, at most MAX_NOT_READY
times, then given up with the reason recorded. "Not eligible" (1) and "not available online"
(2) are final, their reason recorded. An available POD (5) becomes a file (ContentVersion) on
the Order and the Shipment, linked to the open support Cases of that order (the TrackingCase
rows of pipeline/tracking/cases.py), through the outbox, once per parcel (`pod_file_row`); the
POD status is written to `Chronopost_POD_Status__c`. Every searchPOD passes the shared gates.

The schedule lives on the shipment (`pod_status`, `pod_next_at`, `pod_reason`,
`pod_attempts`); `run_due` is called from the runner's sweep. It never asks for a POD before a
delivery is recorded (except `fetch`, by hand) and never makes the same file twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update

from chronoforce.chronopost.pod import PodResult, PodStatus
from chronoforce.domain.errors import (
    ChronoforceError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from chronoforce.domain.models import ShipmentStatus
from chronoforce.domain.routing import next_working_day
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.tracking.events import utc as _utc
from chronoforce.salesforce.fields import POD_STATUS
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Parcel, Shipment, TrackingCase

log = get_logger(component="pod")

PARIS = ZoneInfo("Europe/Paris")
POD_HOUR = dt.time(6)  # unconfirmed choice: early on the working day, Paris time
MAX_NOT_READY = 5  # "not ready yet" answers before giving up (unconfirmed choice)
TRANSIENT_RETRY = dt.timedelta(hours=1)  # Chronopost or the network failed: ask again then
CLAIM = dt.timedelta(minutes=10)  # a sweep holds a due shipment this long while it asks
FIELD = POD_STATUS.api

PENDING, AVAILABLE, NOT_ELIGIBLE, NOT_ONLINE, GAVE_UP = (
    "pending",
    "available",
    "not_eligible",
    "not_online",
    "gave_up",
)
# The picklist values of Chronopost_POD_Status__c (salesforce/…/Chronopost_POD_Status__c).
LABELS = {
    PENDING: "Pending",
    AVAILABLE: "Available",
    NOT_ELIGIBLE: "Not eligible",
    NOT_ONLINE: "Not available online",
    GAVE_UP: "Gave up",
}
_FINAL = {PodStatus.NOT_ELIGIBLE: NOT_ELIGIBLE, PodStatus.NOT_ONLINE: NOT_ONLINE}


def first_attempt_at(delivered_at: dt.datetime) -> dt.datetime:
    """POD_HOUR (Paris) of the first French working day after the delivery day."""
    day = next_working_day(_utc(delivered_at).astimezone(PARIS).date())
    return dt.datetime.combine(day, POD_HOUR, tzinfo=PARIS).astimezone(dt.UTC)


def retry_at(now: dt.datetime, delivered_at: dt.datetime | None) -> dt.datetime:
    """The next attempt after a "not ready yet": the first attempt's time if it has not come
    (a POD asked by hand before D+1), else POD_HOUR of the next working day after today."""
    if delivered_at is not None and (first := first_attempt_at(delivered_at)) > now:
        return first
    day = next_working_day(_utc(now).astimezone(PARIS).date())
    return dt.datetime.combine(day, POD_HOUR, tzinfo=PARIS).astimezone(dt.UTC)


def pod_key(shipment_id: int, skybill_number: str) -> str:
    return f"pod:{shipment_id}:{skybill_number}"


@dataclass(frozen=True)
class PodOutcome:
    """What one attempt found: the shipment's POD status and reason, each parcel's answer."""

    shipment_id: int
    status: str
    reason: str
    results: tuple[PodResult, ...] = ()
    next_at: dt.datetime | None = None

    @property
    def label(self) -> str:
        return LABELS.get(self.status, self.status)


@dataclass
class Pods:
    """searchPOD through the gates for delivered shipments; files and status via the outbox."""

    store: Store
    carrier: Any  # ChronopostClient (search_pod)
    gates: Gates
    now: Callable[[], dt.datetime]
    pdf: bool = True
    hold_s: float = 0.0  # tracking.salesforce_hold_s: the POD status waits like tracking writes

    def _hold_until(self) -> dt.datetime | None:
        return self.now() + dt.timedelta(seconds=self.hold_s) if self.hold_s else None

    # --- scheduling --------------------------------------------------------------------

    def schedule_delivered(self, limit: int = 500) -> int:
        """Give each newly delivered outbound shipment its first attempt (and Pending)."""
        with self.store.session() as session:
            rows = list(
                session.scalars(
                    select(Shipment)
                    .where(
                        Shipment.status == ShipmentStatus.DELIVERED.value,
                        Shipment.intent == "outbound",
                        Shipment.pod_status.is_(None),
                    )
                    .order_by(Shipment.id)
                    .limit(limit)
                )
            )
            for row in rows:
                delivered = row.last_event_at or self.now()
                row.pod_status, row.pod_reason = PENDING, ""
                row.pod_next_at = first_attempt_at(delivered)
                writeback.enqueue_rows(session, status_rows(row, PENDING, self._hold_until()))
        return len(rows)

    def due(self, limit: int = 100) -> list[int]:
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Shipment.id)
                    .where(Shipment.pod_status == PENDING, Shipment.pod_next_at <= self.now())
                    .order_by(Shipment.pod_next_at)
                    .limit(limit)
                )
            )

    def run_due(self) -> int:
        """Schedule new deliveries, then ask for every due POD (the runner's sweep); returns
        how many attempts were made. An outage leaves the rest for the next sweep."""
        self.schedule_delivered()
        made = 0
        for shipment_id in self.due():
            if not self._claim(shipment_id):
                continue  # another process took it
            made += 1
            try:
                self.attempt(shipment_id)
            except TransientError as exc:
                log.warning("pod not fetched yet", shipment_id=shipment_id, code=exc.code)
        return made

    def _claim(self, shipment_id: int) -> bool:
        now = self.now()
        with self.store.session() as session:
            claimed = session.execute(
                update(Shipment)
                .where(
                    Shipment.id == shipment_id,
                    Shipment.pod_status == PENDING,
                    or_(Shipment.pod_next_at.is_(None), Shipment.pod_next_at <= now),
                )
                .values(pod_next_at=now + CLAIM)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(claimed, "rowcount", 0))

    # --- one attempt -------------------------------------------------------------------

    def shipment_of(self, skybill_number: str) -> int:
        """The shipment holding this parcel, or NotFoundError naming the number."""
        with self.store.session() as session:
            found = session.scalar(
                select(Parcel.shipment_id).where(Parcel.skybill_number == skybill_number.strip())
            )
        if found is None:
            raise NotFoundError(
                f"no parcel {skybill_number.strip()!r} in chronoforce's store",
                code="PARCEL_NOT_FOUND",
                field="skybill_number",
            )
        return int(found)

    def fetch(self, skybill_number: str) -> PodOutcome:
        """By hand (`chronoforce pod`): ask now for the shipment holding this parcel, whatever
        its schedule; a "not ready yet" here does not count against MAX_NOT_READY."""
        return self.attempt(self.shipment_of(skybill_number), by_hand=True)

    def attempt(self, shipment_id: int, *, by_hand: bool = False) -> PodOutcome:
        """Ask for the POD of every live parcel still without one, and settle the shipment.

        TransientError (Chronopost or the network failed, the breaker open) leaves it pending
        for TRANSIENT_RETRY; a permanent refusal (error 2: not this contract's parcel) gives
        up with the reason and an exception row for review."""
        parcels, has_file = self._parcels(shipment_id)
        results: list[PodResult] = []
        try:
            self.gates.before_call()
            for number in parcels:
                results.append(
                    self.gates.call(partial(self.carrier.search_pod, number, pdf=self.pdf))
                )
        except TransientError as exc:
            self._postpone(shipment_id, exc, by_hand)
            raise
        except PermanentError as exc:
            return self._refused(shipment_id, exc, results)
        return self._settle(shipment_id, results, has_file, by_hand)

    def _parcels(self, shipment_id: int) -> tuple[list[str], bool]:
        """Live parcels whose POD file is not queued yet; and whether any parcel has one."""
        with self.store.session() as session:
            row = session.get(Shipment, shipment_id)
            if row is None:
                raise NotFoundError(f"no shipment {shipment_id}", code="SHIPMENT_NOT_FOUND")
            numbers = [p.skybill_number for p in row.parcels if p.live]
            done = set(
                session.scalars(
                    select(Outbox.dedup_key).where(
                        Outbox.dedup_key.in_([pod_key(shipment_id, n) for n in numbers])
                    )
                )
            )
        return [n for n in numbers if pod_key(shipment_id, n) not in done], bool(done)

    def _settle(
        self, shipment_id: int, results: Sequence[PodResult], has_file: bool, by_hand: bool
    ) -> PodOutcome:
        now = self.now()
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            files = [r for r in results if r.available]
            targets = attach_to(session, row) if files else []
            writeback.enqueue_rows(session, [pod_file_row(row, r, targets) for r in files])
            waiting = [r for r in results if r.status in (PodStatus.NOT_READY, None)]
            others = [r for r in results if not r.available and r not in waiting]
            status: str | None
            next_at: dt.datetime | None = None
            if waiting:
                status, reason, next_at = self._not_ready(row, waiting, now, by_hand)
            elif files or has_file:
                status, reason = AVAILABLE, _reasons(others)
            elif others:
                kinds = {_FINAL.get(r.status or PodStatus.NOT_ONLINE, NOT_ONLINE) for r in others}
                status = NOT_ELIGIBLE if kinds == {NOT_ELIGIBLE} else NOT_ONLINE
                reason = _reasons(others)
            else:  # no live parcel: nothing Chronopost could show
                status, reason = GAVE_UP, "no live parcel to ask for"
            if by_hand and row.pod_status is None and status == PENDING:
                status, next_at = None, None  # not delivered here yet: the sweep schedules it
            changed = status != row.pod_status
            row.pod_status, row.pod_reason, row.pod_next_at = status, reason[:255], next_at
            if changed and status is not None:
                writeback.enqueue_rows(session, status_rows(row, status, self._hold_until()))
        outcome = PodOutcome(shipment_id, status or PENDING, reason, tuple(results), next_at)
        log.info("pod asked", shipment_id=shipment_id, status=outcome.status, reason=reason)
        return outcome

    def _not_ready(
        self, row: Shipment, waiting: Sequence[PodResult], now: dt.datetime, by_hand: bool
    ) -> tuple[str, str, dt.datetime | None]:
        if not by_hand:
            row.pod_attempts = (row.pod_attempts or 0) + 1
        reason = _reasons(waiting)
        if row.pod_attempts >= MAX_NOT_READY:
            return GAVE_UP, f"{reason} after {row.pod_attempts} working days", None
        if by_hand and row.pod_next_at is not None and _utc(row.pod_next_at) > now:
            return PENDING, reason, _utc(row.pod_next_at)  # keep the schedule it had
        return PENDING, reason, retry_at(now, row.last_event_at)

    def _postpone(self, shipment_id: int, exc: ChronoforceError, by_hand: bool) -> None:
        if by_hand:
            return
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            row.pod_next_at = self.now() + TRANSIENT_RETRY
            row.pod_reason = f"last attempt failed: {exc.message}"[:255]

    def _refused(
        self, shipment_id: int, exc: PermanentError, results: Sequence[PodResult]
    ) -> PodOutcome:
        reason = f"Chronopost refused searchPOD: {exc.message}"[:255]
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            # The PODs already fetched for the other parcels are kept, not thrown away.
            files = [r for r in results if r.available]
            if files:
                targets = attach_to(session, row)
                writeback.enqueue_rows(session, [pod_file_row(row, r, targets) for r in files])
            changed = row.pod_status != GAVE_UP
            row.pod_status, row.pod_reason, row.pod_next_at = GAVE_UP, reason, None
            exceptions.record(session, exc, operation="pod", shipment=row, now=self.now())
            if changed:
                writeback.enqueue_rows(session, status_rows(row, GAVE_UP, self._hold_until()))
        log.warning("pod refused", shipment_id=shipment_id, code=exc.code)
        return PodOutcome(shipment_id, GAVE_UP, reason, tuple(results))


def _reasons(results: Sequence[PodResult]) -> str:
    return "; ".join(f"{r.skybill_number}: {r.meaning}" for r in results)


def _order_and_shipment(row: Shipment) -> tuple[str, str]:
    source = row.source or {}
    order_id = row.sf_id if row.sf_object == "Order" else str(source.get("order_id") or "")
    shipment = row.sf_id if row.sf_object == "Shipment" else str(source.get("shipment_id") or "")
    return order_id, shipment


def attach_to(session: Any, row: Shipment) -> list[str]:
    """Where a POD file goes: the Order, the Shipment, then every open Case of that order
    whose Salesforce id is known (cases.py keys them by the shipment's record)."""
    order_id, shipment = _order_and_shipment(row)
    cases = session.scalars(
        select(TrackingCase.case_id).where(
            TrackingCase.order_key == f"{row.sf_object}:{row.sf_id}",
            TrackingCase.state == "open",
            TrackingCase.case_id != "",
        )
    )
    return [x for x in (order_id, shipment, *cases) if x]


def pod_file_row(row: Shipment, result: PodResult, targets: Sequence[str]) -> dict[str, Any]:
    return writeback.pod_file_row(
        shipment_id=row.id,
        dedup_key=pod_key(row.id, result.skybill_number),
        data=result.data,
        title=f"Chronopost proof of delivery {result.skybill_number}",
        filename=f"chronopost-pod-{result.skybill_number}.{result.suffix}",
        attach_to=targets,
    )


def status_rows(
    row: Shipment, status: str, hold_until: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """`Chronopost_POD_Status__c` on the Order and the Shipment, once per status; held like
    the tracking writes (`hold_until`), with which they merge when they go together."""
    order_id, shipment = _order_and_shipment(row)
    rows = [
        writeback.outbox_row(
            sf_object=sf_object,
            operation="update",
            sf_id=sf_id,
            shipment_id=row.id,
            payload={FIELD: LABELS[status]},
            dedup_key=f"pod-status:{sf_object}:{sf_id}:{status}",
        )
        for sf_object, sf_id in (("Order", order_id), ("Shipment", shipment))
        if sf_id
    ]
    if hold_until is not None:
        for one in rows:
            one["hold_until"] = hold_until
    return rows
