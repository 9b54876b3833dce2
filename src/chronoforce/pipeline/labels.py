"""The label use case: a Salesforce order becomes one live Chronopost label, written back.

detect → record intent → prepare (map, address, route) → call the carrier → store the result →
outbox. The shipment row is the source of truth; the state `calling` is written *before* the
carrier call, so a crash or timeout whose outcome is unknown is recovered by looking the parcels
up by our reference — never by blindly printing a second live label. Every carrier call goes
through the cluster's gates (pipeline/gates.py): the circuit breaker, the concurrency slots, the
rate limit. Each intent (outbound, return) has its own shipper reference, sent and looked up the
same way; a recovery never cancels a parcel another of our shipments holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, insert, or_, select, update

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import (
    CarrierAnswerError,
    CarrierUnavailableError,
    CarrierValidationError,
    ChronoforceError,
    CircuitOpenError,
    PermanentError,
    TransientError,
    backoff_for,
    retry_delay,
)
from chronoforce.domain.models import Label, LabelResult, ShipmentRequest, ShipmentStatus
from chronoforce.domain.shipment_state import (
    FRESH,
    WORKABLE,
    LabelOutcome,
    ShipmentState,
    check_transition,
    check_transitions,
)
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.cluster import utc
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.pickup_times import pickup_fields, pickup_instant, pickup_of
from chronoforce.pipeline.ports import CarrierPort
from chronoforce.pipeline.precise import confirmed_slot
from chronoforce.salesforce.fields import (
    LABEL_STATUS,
    LAST_ERROR,
    ORDER_TRACKING_URL,
    PRODUCT,
    PROVIDER,
    RESERVATION_NUMBER,
    SHIPMENT_TRACKING_NUMBER,
    SHIPMENT_TRACKING_URL,
    SKYBILL_NUMBERS,
    STATUS,
    TRACKING_NUMBER,
)
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Parcel, Shipment
from chronoforce.store.ops import release_lease, take_lease

T = TypeVar("T")

log = get_logger(component="labels")

TRACKING_URL = writeback.TRACKING_URL
S, Outcome = ShipmentState, LabelOutcome  # WORKABLE, FRESH: domain/shipment_state.py
BEFORE_PICKUP = (ShipmentStatus.PENDING.value, ShipmentStatus.LABEL_CREATED.value)
MAX_TRANSIENT_ATTEMPTS = backoff_for(CarrierUnavailableError).max_attempts
EXHAUSTED_PAUSE = dt.timedelta(hours=1)  # after the budget: one slow try an hour


@dataclass(frozen=True)
class StoredParcel:
    """What the Salesforce writes need of a parcel just stored."""

    id: int
    skybill_number: str
    label_format: str
    size: int


class LeaseLost(Exception):
    """Another worker holds the shipment now (ours expired): leave it to them."""


@dataclass(frozen=True)
class StoredLabel:
    """A label just stored, for the Salesforce writes of its intent."""

    row: Shipment
    parcels: list[StoredParcel]
    prepared: Prepared


@dataclass(frozen=True)
class Prepared:
    """A request ready for the carrier, and why this product was chosen."""

    request: ShipmentRequest
    reason: str
    writeback: dict[str, dict[str, Any]] = field(default_factory=dict)  # object → extra fields
    # The Salesforce writes of another intent (a return's: pipeline/returns.py); None = outbound.
    queue: Callable[[Any, StoredLabel], None] | None = None
    location: str = ""  # the shipper location it leaves from, and why (issue 23)
    location_reason: str = ""


Preparer = Callable[[Shipment], Prepared]


def shipper_ref(order_number: str, intent: str, sf_id: str) -> str:
    """Our reference at Chronopost (≤ 35 chars): finds the parcels again after a crash."""
    base = order_number or sf_id
    prefix = "" if intent == "outbound" else intent[:1].upper() + "-"
    return (prefix + base)[:35]


def fingerprint(request: ShipmentRequest) -> str:
    return hashlib.sha256(repr(request).encode()).hexdigest()


# The statements of the label path, built once and run on the session's connection with
# their parameters: building a statement and running it through the ORM session cost ~8x the
# database work (bench/bench_label_burst.py), for statements that never load an object.
def _mark(take: bool) -> Any:
    owned = (
        and_(
            Shipment.state.in_(FRESH),
            or_(
                Shipment.lease_expires_at.is_(None), Shipment.lease_expires_at < bindparam("b_now")
            ),
        )
        if take
        else Shipment.lease_owner == bindparam("b_owner")
    )
    return (
        update(Shipment)
        .where(Shipment.id == bindparam("b_id"), owned)
        .values(
            # Taking: from a fresh state; holding it already: from whichever workable state.
            state=check_transitions(FRESH if take else WORKABLE, S.CALLING),
            generation=Shipment.generation + 1,
            attempts=Shipment.attempts + 1,
            lease_owner=bindparam("b_owner"),
            lease_expires_at=bindparam("b_expires"),
            product_code=bindparam("b_product"),
            routing_reason=bindparam("b_reason"),
            request_fingerprint=bindparam("b_fingerprint"),
            location=bindparam("b_location"),
            location_reason=bindparam("b_location_reason"),
            # Set again only by an answer whose labels must be fetched (`_complete`): while
            # `calling`, a reservation number says the parcels exist and only lack their label.
            reservation_number="",
        )
        .returning(Shipment.generation, Shipment.attempts)
    )


_MARK = {True: _mark(take=True), False: _mark(take=False)}
_LABELED = (
    update(Shipment)
    .where(
        Shipment.id == bindparam("b_id"),
        Shipment.lease_owner == bindparam("b_owner"),
        Shipment.generation == bindparam("b_generation"),
    )
    .values(
        state=check_transitions((S.CALLING,), S.LABELED),  # its generation's call answered
        status=ShipmentStatus.LABEL_CREATED.value,
        reservation_number=bindparam("b_reservation"),
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=None,
        last_error="",
        next_poll_at=bindparam("b_poll"),
        verify_at=bindparam("b_verify"),
    )
)
_PARCELS = insert(Parcel).returning(Parcel.id, sort_by_parameter_order=True)
_RESOLVE = (
    update(ExceptionRow)
    .where(ExceptionRow.shipment_id == bindparam("b_id"), ExceptionRow.state != "resolved")
    .values(state="resolved", resolution_note="label created on retry")
)


@dataclass
class LabelPipeline:
    """Processes one shipment at a time; safe to run in many threads and processes at once."""

    store: Store
    carrier: CarrierPort
    prepare: Preparer
    now: Callable[[], dt.datetime] = SYSTEM_CLOCK.now  # build_runtime passes its clock's
    worker_id: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:8]}")
    lease: dt.timedelta = dt.timedelta(minutes=5)
    gates: Gates = field(default_factory=Gates)  # shared with every other carrier use case
    preparers: dict[str, Preparer] = field(default_factory=dict)  # intent → its preparation
    stopping: Callable[[], bool] = lambda: False  # SIGTERM: release rather than start a call
    retry_scale: float = 1.0  # every backoff times this (worker.retry_scale)
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    # The gates' parts (built with the runtime, pipeline/runtime.py): one object for every use case.
    @property
    def breaker(self) -> Any:
        return self.gates.breaker

    @breaker.setter
    def breaker(self, value: Any) -> None:
        self.gates.breaker = value

    @property
    def slots(self) -> Any:
        return self.gates.slots

    @slots.setter
    def slots(self, value: Any) -> None:
        self.gates.slots = value

    @property
    def limiter(self) -> Any:
        return self.gates.limiter

    @limiter.setter
    def limiter(self, value: Any) -> None:
        self.gates.limiter = value

    def process(
        self, shipment_id: int, errors: list[ChronoforceError] | None = None
    ) -> LabelOutcome:
        """Take the shipment if it is workable and drive it to `labeled`, `exception` or `retry`
        (or `deferred` while the breaker is open, `released` when shutting down). `errors`, when
        given, receives the error that decided a failed outcome (the API answers with it).

        A new or retried shipment (the common case) is read, prepared, then taken and marked
        `calling` in one write; one interrupted mid-call or changed since its label is taken
        first, since its recovery calls the carrier before anything is prepared."""
        self._local.errors = errors
        if self.stopping():
            return Outcome.RELEASED  # not even taken: the sweeper hands it to another worker
        with self.store.session() as session:
            shipment = session.get(Shipment, shipment_id)
            if shipment is None or not self._takeable(shipment):
                return Outcome.SKIPPED
            session.expunge(shipment)
        if shipment.state in FRESH:
            return self._process_fresh(shipment)
        with self.store.session() as session:
            if not take_lease(
                session, shipment_id, self.worker_id, self.now(), self.lease, WORKABLE
            ):
                return Outcome.SKIPPED
            shipment = session.get_one(Shipment, shipment_id)
            session.expunge(shipment)
        return self._process_taken(shipment)

    def _takeable(self, shipment: Shipment) -> bool:
        expires = shipment.lease_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return shipment.state in WORKABLE and (expires is None or expires < self.now())

    def _process_fresh(self, shipment: Shipment) -> LabelOutcome:
        """Nothing was sent for it yet: prepare without holding it; take it with `calling`."""
        bound = log.bind(shipment_id=shipment.id, sf_id=shipment.sf_id)
        try:
            probe = self._before_call()
            prepared = self._prepare(shipment)
        except (CircuitOpenError, PermanentError, TransientError) as early:
            # Recorded only by the worker that takes the shipment (another may hold it now).
            with self.store.session() as session:
                if not take_lease(
                    session, shipment.id, self.worker_id, self.now(), self.lease, FRESH
                ):
                    return Outcome.SKIPPED
            return self._outcome(shipment, early, bound)
        if self.stopping():
            return Outcome.RELEASED
        try:
            result = self._call_carrier(shipment, prepared, take=True)
            result = self._complete(shipment, prepared, result)
        except ChronoforceError as exc:
            return self._outcome(shipment, exc, bound, probe=probe)
        except LeaseLost:
            return Outcome.SKIPPED
        return self._stored(shipment, prepared, result, bound, recovering=False)

    def _process_taken(self, shipment: Shipment) -> LabelOutcome:
        bound = log.bind(shipment_id=shipment.id, sf_id=shipment.sf_id)
        recovering = shipment.state == S.CALLING
        probe = False
        try:
            probe = self._before_call()
            if shipment.state == S.CALLING and shipment.reservation_number:
                # The call answered; only its labels are missing: fetch them, never call again.
                prepared = self._prepare(shipment)
                result = self._fetch_reserved(shipment, prepared)
                return self._stored(shipment, prepared, result, bound, recovering=False)
            if shipment.state == S.CALLING:
                recovered = self._recover(shipment)
                if recovered is not None:
                    return recovered
            if shipment.state == S.CHANGED:
                self._cancel_live(shipment)
            prepared = self._prepare(shipment)
            if self.stopping():
                return self._release(shipment)
            result = self._call_carrier(shipment, prepared)
            result = self._complete(shipment, prepared, result)
        except ChronoforceError as exc:
            return self._outcome(shipment, exc, bound, probe=probe)
        except LeaseLost:
            return Outcome.SKIPPED
        return self._stored(shipment, prepared, result, bound, recovering=recovering)

    def _before_call(self) -> bool:
        """Pass the breaker or raise CircuitOpenError; True when this call is its probe."""
        return self.gates.before_call()

    def _prepare(self, shipment: Shipment) -> Prepared:
        """The intent's preparation; the request carries the row's own shipper reference, the
        one a recovery looks the parcels up by."""
        prepared = self.preparers.get(shipment.intent or "outbound", self.prepare)(shipment)
        request = prepared.request
        if shipment.shipper_ref and request.references.shipper_ref != shipment.shipper_ref:
            refs = replace(request.references, shipper_ref=shipment.shipper_ref)
            request = replace(request, references=refs)
        pickup = pickup_of((shipment.source or {}).get("pickup"))
        if pickup is not None:  # asked through the API: the label books the driver too
            request = replace(
                request,
                ship_date=max(request.ship_date, pickup.date),
                options=replace(request.options, pickup=pickup),
            )
        slot = confirmed_slot(self.store, shipment.id)
        if slot is not None:  # Chrono Precise (issue 23): the confirm's codes and the slot
            request = replace(
                request,
                product_code=slot.product_code,
                options=replace(request.options, slot=slot),
            )
        return replace(prepared, request=request) if request is not prepared.request else prepared

    def _outcome(
        self, shipment: Shipment, error: ChronoforceError, bound: Any, *, probe: bool = False
    ) -> LabelOutcome:
        """What a failed step leaves behind (the shipment is held by this worker)."""
        errors = getattr(self._local, "errors", None)
        if errors is not None:
            errors.append(error)
        if isinstance(error, CircuitOpenError):
            return self._defer(shipment, error)
        if isinstance(error, PermanentError):
            bound.info("label failed", code=error.code, field=error.field)
            return self._fail(shipment, error)
        if isinstance(error, TransientError):
            bound.warning("label retry", code=error.code)
            return self._retry(shipment, error, spend=not probe)
        raise error

    def _stored(
        self,
        shipment: Shipment,
        prepared: Prepared,
        result: LabelResult,
        bound: Any,
        *,
        recovering: bool,
    ) -> LabelOutcome:
        if not self._store_result(shipment, prepared, result, verify=recovering):
            bound.warning("lease lost during the call: labels cancelled")
            return Outcome.SKIPPED
        bound.info("label created", skybills=list(result.skybill_numbers))
        return Outcome.LABELED

    # --- steps ---------------------------------------------------------------------------

    def _call_carrier(
        self, shipment: Shipment, prepared: Prepared, *, take: bool = False
    ) -> LabelResult:
        """Mark the shipment `calling` (taking it too when `take`), then call through the gates.

        The write comes before the gates, so a thread waiting for the database never holds a
        carrier slot; its lease covers the longest wait for a slot as well as the call."""
        wait = self.lease / 4
        now = self.now()
        params = {
            "b_id": shipment.id,
            "b_now": now,
            "b_owner": self.worker_id,
            "b_expires": now + self.lease + wait,
            "b_product": prepared.request.product_code,
            "b_reason": prepared.reason,
            "b_fingerprint": fingerprint(prepared.request),
            "b_location": prepared.location[:40],
            "b_location_reason": prepared.location_reason,
        }  # `b_now` is read by the taking variant only
        with self.store.session() as session:
            taken = session.connection().execute(_MARK[take], params).first()
        if taken is None:
            raise LeaseLost(shipment.id)
        previous = shipment.state
        shipment.generation, shipment.attempts = taken[0], taken[1]
        shipment.state = S.CALLING  # as _MARK wrote it (checked there)
        try:
            with self.gates.passage(wait.total_seconds()), self.gates.watch():
                return self.carrier.create_shipment(prepared.request)
        except CircuitOpenError:
            # No call went out (busy or refused at the gate): undo the mark, so the next try
            # is a plain one and not a recovery lookup.
            self._unmark(shipment, previous)
            raise
        except ChronoforceError as exc:
            exc.with_context(record_id=shipment.sf_id, operation=_operation(shipment))
            raise

    # --- labels not in the answer ------------------------------------------------------------
    # withReservation 1: "the label is stored and reservationNumber is returned" ([D] §2.3.2.b8,
    # SPEC-FACTS §2.6); that it also comes back in pdfEtiquette is our reading only
    # (docs/sandbox-chronopost.md). An empty one is fetched with getReservedSkybillWithTypeAndMode
    # ([S] §2.7.6: by parcel number too), never stored empty, never made again.

    def _complete(self, shipment: Shipment, prepared: Prepared, result: LabelResult) -> LabelResult:
        """The answer's labels, those it left empty fetched from Chronopost's stored copy."""
        empty = [label.skybill_number for label in result.labels if not label.data]
        if not empty:
            return result
        name = _name(shipment)
        if not result.reservation_number:
            # Nothing stored to fetch: kept `calling` (_fail), the next try's lookup by our
            # reference cancels these parcels before a new label is made.
            raise CarrierAnswerError(
                f"{name}: Chronopost answered parcels {', '.join(empty)} with an empty label "
                "(pdfEtiquette) and no reservationNumber: there is no label to store or fetch",
                code="CARRIER_EMPTY_LABEL", record_id=shipment.sf_id,
                operation=_operation(shipment),
            )  # fmt: skip
        self._hold_reservation(shipment, result.reservation_number)
        labels = tuple(
            label
            if label.data
            else replace(label, data=self._reserved_label(shipment, label.skybill_number, label))
            for label in result.labels
        )
        return replace(result, labels=labels)

    def _hold_reservation(self, shipment: Shipment, reservation: str) -> None:
        """Write the reservation on the `calling` row before fetching: a retry (or a crash)
        from here fetches the labels of these parcels and never calls shipping again."""
        with self.store.session() as session:
            held = session.execute(
                update(Shipment)
                .where(
                    Shipment.id == shipment.id,
                    Shipment.lease_owner == self.worker_id,
                    Shipment.generation == shipment.generation,
                )
                .values(reservation_number=reservation[:50])
                .execution_options(synchronize_session=False)
            )
        if not getattr(held, "rowcount", 0):
            raise LeaseLost(shipment.id)  # the taker's lookup finds these parcels (orphans)
        shipment.reservation_number = reservation[:50]

    def _fetch_reserved(self, shipment: Shipment, prepared: Prepared) -> LabelResult:
        """A held reservation's labels: its parcels found by our reference (as a recovery
        does), each one's stored label fetched. Spends an attempt, as a call does."""
        with self.store.session() as session:
            session.execute(
                update(Shipment)
                .where(Shipment.id == shipment.id, Shipment.lease_owner == self.worker_id)
                .values(attempts=Shipment.attempts + 1)
                .execution_options(synchronize_session=False)
            )
        shipment.attempts += 1
        reference = shipment.shipper_ref
        assert reference is not None
        skybills = self._unclaimed_parcels(shipment, reference, "parcel lookup")
        if not skybills:  # not indexed yet, or not there: look again later, call nothing
            raise CarrierUnavailableError(
                f"{_name(shipment)}: the parcels of reservation {shipment.reservation_number} "
                "are not found under our reference yet",
                code="RESERVED_PARCELS_NOT_FOUND", record_id=shipment.sf_id,
            )  # fmt: skip
        label_format = prepared.request.options.label_format
        labels = tuple(
            Label(s, self._reserved_label(shipment, s, Label(s, b"", label_format)), label_format)
            for s in skybills
        )
        # The pickup number of an ESD booked with the label is not known here (not stored).
        return LabelResult(shipment.reservation_number, labels)

    def _reserved_label(self, shipment: Shipment, number: str, label: Label) -> bytes:
        """One parcel's stored label, through the gates; a refusal or an empty answer is a
        CarrierAnswerError (kept `calling` and the reservation held: the next try fetches again)."""
        call = partial(self.carrier.reserved_label, number, label.label_format)
        try:
            data = bytes(self._carrier(call).data or b"")
        except PermanentError as exc:
            raise CarrierAnswerError(
                f"{_name(shipment)}: the label of parcel {number} (reservation "
                f"{shipment.reservation_number}) was not in the shipping answer and could not be "
                f"fetched: {exc.message}",
                code="RESERVED_LABEL_NOT_FETCHED", record_id=shipment.sf_id,
                operation=_operation(shipment), response_payload=exc.response_payload,
            ) from exc  # fmt: skip
        except ChronoforceError as exc:
            exc.with_context(record_id=shipment.sf_id, operation=_operation(shipment))
            raise
        if not data:
            raise CarrierAnswerError(
                f"{_name(shipment)}: the stored label of parcel {number} (reservation "
                f"{shipment.reservation_number}) came back empty",
                code="RESERVED_LABEL_NOT_FETCHED", record_id=shipment.sf_id,
                operation=_operation(shipment),
            )  # fmt: skip
        return data

    def _unmark(self, shipment: Shipment, previous: str) -> None:
        previous = check_transition(S.CALLING, previous, record_id=shipment.sf_id)
        with self.store.session() as session:
            session.execute(
                update(Shipment)
                .where(
                    Shipment.id == shipment.id,
                    Shipment.lease_owner == self.worker_id,
                    Shipment.generation == shipment.generation,
                )
                .values(state=previous, attempts=Shipment.attempts - 1)
                .execution_options(synchronize_session=False)
            )
        shipment.state = previous
        shipment.attempts -= 1

    def _carrier(self, call: Callable[[], T]) -> T:
        """One carrier call through the cluster's gates: slot, rate limit, breaker."""
        with self.gates.passage(self.lease.total_seconds() / 4), self.gates.watch():
            return call()

    def _store_result(
        self, shipment: Shipment, prepared: Prepared, result: LabelResult, *, verify: bool = False
    ) -> bool:
        """Store the labels, unless another worker took the shipment over meanwhile (our
        process stalled past the lease): then these labels are orphans and are cancelled.

        One transaction of plain statements: the shipment row (only while still ours, in this
        generation), its parcels, its Salesforce writes, its open exceptions resolved."""
        now = self.now()
        with self.store.session() as session:
            stored = session.connection().execute(
                _LABELED,
                {
                    "b_id": shipment.id,
                    "b_owner": self.worker_id,
                    "b_generation": shipment.generation,
                    "b_reservation": result.reservation_number,
                    "b_poll": now + dt.timedelta(hours=1),
                    # An earlier attempt's call may still land at the carrier after our lookup
                    # (a stalled or killed worker): look again once it surely has, see `verify`.
                    "b_verify": now + 2 * self.lease if verify else None,
                },
            )
            stale = not getattr(stored, "rowcount", 0)
            if not stale:
                self._store_parcels(session, shipment, prepared, result)
        if stale:
            self._cancel_stale(shipment, result)
        return not stale

    def _store_parcels(
        self, session: Any, shipment: Shipment, prepared: Prepared, result: LabelResult
    ) -> None:
        weights = prepared.request.parcels
        labels = list(enumerate(result.labels, start=1))
        rows: list[dict[str, Any]] = [
            {
                "shipment_id": shipment.id,
                "position": index,
                "generation": shipment.generation,
                "skybill_number": label.skybill_number,
                "weight_kg": weights[min(index, len(weights)) - 1].weight_kg,
                "label_format": label.label_format.value,
                "label_bytes": label.data,
                "live": True,
            }
            for index, label in labels
        ]
        ids = list(session.connection().execute(_PARCELS, rows).scalars())
        stored = [
            StoredParcel(i, label.skybill_number, label.label_format.value, len(label.data or b""))
            for i, (_, label) in zip(ids, labels, strict=True)
        ]
        shipment.reservation_number = result.reservation_number
        if result.pickup_number:
            self._store_pickup(session, shipment, prepared, result)
        if prepared.queue is not None:
            prepared.queue(session, StoredLabel(shipment, stored, prepared))
        else:
            self._queue_writeback(session, shipment, stored, prepared)
        session.connection().execute(_RESOLVE, {"b_id": shipment.id})

    def _store_pickup(
        self, session: Any, shipment: Shipment, prepared: Prepared, result: LabelResult
    ) -> None:
        """The pickup booked with the label (`esdValue`): kept per day, written back."""
        pickup = prepared.request.options.pickup
        day = (pickup.date if pickup else prepared.request.ship_date).isoformat()
        when = pickup_instant(result.pickup_date, pickup)
        booked = {"number": result.pickup_number, "date": when.isoformat() if when else None}
        source = dict(shipment.source or {})
        source.pop("pickup", None)  # booked: a later label of this order books no driver
        source["pickups"] = {**source.get("pickups", {}), day: booked}
        session.connection().execute(
            update(Shipment).where(Shipment.id == shipment.id).values(source=source)
        )
        shipment.source = source
        writeback.enqueue(
            session,
            sf_object=shipment.sf_object,
            operation="update",
            sf_id=shipment.sf_id,
            shipment_id=shipment.id,
            payload=pickup_fields(result.pickup_number, when),
        )

    def _queue_writeback(
        self, session: Any, row: Shipment, parcels: list[StoredParcel], prepared: Prepared
    ) -> None:
        numbers = [p.skybill_number for p in parcels]
        url = writeback.tracking_url(numbers)
        tracking_number = writeback.tracking_number(numbers)
        shipment_record = str(row.source.get("shipment_id") or "")
        order_id = row.sf_id if row.sf_object == "Order" else str(row.source.get("order_id") or "")
        common = {
            LABEL_STATUS.api: "Created",
            STATUS.api: ShipmentStatus.LABEL_CREATED.value,
            LAST_ERROR.api: None,
        }
        rows: list[dict[str, Any]] = []
        if order_id:
            rows.append(
                writeback.outbox_row(
                    sf_object="Order",
                    operation="update",
                    sf_id=order_id,
                    shipment_id=row.id,
                    payload={
                        **common,
                        TRACKING_NUMBER.api: tracking_number,
                        ORDER_TRACKING_URL.api: url,
                        **prepared.writeback.get("Order", {}),
                    },
                )
            )
        if shipment_record:
            rows.append(
                writeback.outbox_row(
                    sf_object="Shipment",
                    operation="update",
                    sf_id=shipment_record,
                    shipment_id=row.id,
                    payload={
                        **common,
                        # Every parcel, not the first only: a multi-parcel shipment's
                        # other skybills must be findable from the standard field too.
                        SHIPMENT_TRACKING_NUMBER.api: tracking_number,
                        SHIPMENT_TRACKING_URL.api: url,
                        PROVIDER.api: "Chronopost",
                        # On the Order this field is the product *asked for* (an input to routing),
                        # so the product used is written on the Shipment only.
                        PRODUCT.api: prepared.request.product_code,
                        SKYBILL_NUMBERS.api: tracking_number,
                        RESERVATION_NUMBER.api: row.reservation_number[:50],
                        **prepared.writeback.get("Shipment", {}),
                    },
                )
            )
        if order_id or shipment_record:
            rows.append(
                writeback.label_file_row(
                    shipment_id=row.id,
                    generation=row.generation,
                    parcels=[(p.id, p.size) for p in parcels],
                    label_format=parcels[0].label_format,
                    title=f"Chronopost label {row.order_number or row.sf_id}",
                    name=f"chronopost-{numbers[0]}",
                    attach_to=[order_id, shipment_record],
                )
            )
        writeback.enqueue_rows(session, rows)

    def verify(self, shipment_id: int) -> LabelOutcome:
        """After a recovered label: cancel any other live label found under our reference.

        The recovery lookup ran before the new call; a call from the attempt it replaced can
        still have made a label after that lookup. Run `2 × lease` later, this catches it."""
        with self.store.session() as session:
            if not take_lease(
                session, shipment_id, self.worker_id, self.now(), self.lease, (S.LABELED,)
            ):
                return Outcome.SKIPPED
            shipment = session.get_one(Shipment, shipment_id)
            session.expunge(shipment)
        reference = shipment.shipper_ref
        try:
            if shipment.verify_at is not None and reference:
                found = _live_skybills(
                    self._carrier(lambda: self.carrier.find_by_reference(reference))
                )
                with self.store.session() as session:
                    ours = set(
                        session.scalars(
                            select(Parcel.skybill_number).where(
                                Parcel.shipment_id == shipment.id, Parcel.live
                            )
                        )
                    )
                    theirs = _held_elsewhere(session, shipment.id, found)
                for skybill in found:
                    if skybill not in ours and skybill not in theirs:
                        self._cancel_orphan(shipment, skybill)
        except ChronoforceError as exc:
            with self.store.session() as session:
                release_lease(session, shipment.id, self.worker_id)
                row = session.get_one(Shipment, shipment.id)
                row.verify_at = self.now() + self.lease  # look again a little later
                row.last_error = str(exc)[:500]
            return Outcome.RETRY
        with self.store.session() as session:
            release_lease(session, shipment.id, self.worker_id)
            session.get_one(Shipment, shipment.id).verify_at = None
        return Outcome.VERIFIED

    def _cancel_stale(self, shipment: Shipment, result: LabelResult) -> None:
        for skybill in result.skybill_numbers:
            try:
                self._carrier(partial(self.carrier.cancel, skybill))
            except ChronoforceError as exc:
                # Still live: the next worker's recovery lookup finds and cancels it.
                log.warning("stale label not cancelled", skybill=skybill, error=exc.code)

    def _release(self, shipment: Shipment) -> LabelOutcome:
        """Shutting down before the call: let go at once so another worker takes it now."""
        with self.store.session() as session:
            release_lease(session, shipment.id, self.worker_id)
            session.get_one(Shipment, shipment.id).queued_at = None
        return Outcome.RELEASED

    def _defer(self, shipment: Shipment, error: CircuitOpenError) -> LabelOutcome:
        """The breaker is open: no call was made, so wait it out without spending an attempt."""
        delay = retry_delay(error, 1)
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment.id)
            row.lease_owner, row.lease_expires_at = None, None
            row.next_attempt_at = self.now() + dt.timedelta(seconds=delay)
            row.last_error = str(error)[:500]
            row.queued_at = None  # the sweeper queues it again as soon as it is due
        return Outcome.DEFERRED

    def _fail(self, shipment: Shipment, error: ChronoforceError) -> LabelOutcome:
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment.id)
            if isinstance(error, CarrierAnswerError) and row.state == S.CALLING:
                # An answer we cannot read: the label may exist. Keep `calling`, so the next try
                # (after the long pause, or an operator's retry) looks the parcels up first.
                row.lease_owner, row.lease_expires_at = None, None
                row.last_error = str(error)[:500]
                row.next_attempt_at = self.now() + EXHAUSTED_PAUSE
                exceptions.record(
                    session, error, operation=_operation(row), shipment=row, now=self.now()
                )
                return Outcome.EXCEPTION
            # A permanent refusal: the carrier created nothing.
            row.state = check_transition(row.state, S.EXCEPTION, record_id=row.sf_id)
            row.lease_owner, row.lease_expires_at = None, None
            row.last_error = str(error)[:500]
            exceptions.record(
                session, error, operation=_operation(row), shipment=row, now=self.now()
            )
        return Outcome.EXCEPTION

    def _retry(
        self, shipment: Shipment, error: TransientError, *, spend: bool = True
    ) -> LabelOutcome:
        """Try again later. A failed probe of a failing carrier (`spend` False) gives its attempt
        back: a long outage is the carrier's, and must not use up the one order that happened
        to be the probe each time."""
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment.id)
            if not spend and row.attempts > 0:
                row.attempts -= 1
            row.lease_owner, row.lease_expires_at = None, None
            row.last_error = str(error)[:500]
            row.queued_at = None  # the sweeper queues it again as soon as it is due
            if row.attempts >= backoff_for(error).max_attempts:
                exceptions.record(
                    session, error, operation=_operation(row), shipment=row, now=self.now()
                )
                if row.state == S.CALLING:
                    # The outcome of the last call is unknown: keep `calling`, so a later try
                    # looks the parcels up first, but only after a long pause.
                    row.next_attempt_at = self.now() + EXHAUSTED_PAUSE
                else:
                    row.state = check_transition(row.state, S.EXCEPTION, record_id=row.sf_id)
                    row.next_attempt_at = None
                return Outcome.EXCEPTION
            # A carrier call that timed out may have created a label: stay `calling`, so the
            # next attempt looks the parcels up by reference before calling again.
            if row.state != S.CALLING:
                row.state = check_transition(row.state, S.RETRY, record_id=row.sf_id)
            delay = retry_delay(error, row.attempts) * self.retry_scale
            row.next_attempt_at = self.now() + dt.timedelta(seconds=delay)
        return Outcome.RETRY

    def _cancel_live(self, shipment: Shipment) -> None:
        """Before re-creating a changed order's label, void the one it had (not yet picked up)."""
        with self.store.session() as session:
            live = session.scalars(
                select(Parcel).where(Parcel.shipment_id == shipment.id, Parcel.live)
            ).all()
            numbers = [(p.skybill_number, utc(p.created_at)) for p in live]
        for number, created_at in numbers:
            # A failure raises: nothing re-created, retried later — inside Chronopost's cancel
            # window (CancelTooEarlyError) at the moment it opens.
            self._carrier(
                partial(self.carrier.cancel, number, created_at=created_at, now=self.now())
            )
            with self.store.session() as session:
                parcel = session.scalar(select(Parcel).where(Parcel.skybill_number == number))
                if parcel is not None:
                    parcel.live, parcel.cancelled_at = False, self.now()
        with self.store.session() as session:  # the voided label's file leaves the records
            writeback.enqueue_rows(session, writeback.unlink_voided_rows(session, shipment.id))

    # --- recovery ------------------------------------------------------------------------

    def _recover(self, shipment: Shipment) -> LabelOutcome | None:
        """An earlier attempt's outcome is unknown: adopt what the carrier has, or go on."""
        reference = shipment.shipper_ref
        assert reference is not None
        orphans = self._unclaimed_parcels(shipment, reference, "recovery lookup")
        if not orphans:
            return None  # nothing was created: call again
        for skybill in orphans:
            self._cancel_orphan(shipment, skybill)
        return None

    def _unclaimed_parcels(self, shipment: Shipment, reference: str, what: str) -> list[str]:
        """The live parcels Chronopost has under our reference that no row of ours holds:
        neither this shipment's nor another intent's (a return made under the order number
        before references were per intent is never this attempt's)."""
        try:
            found = _live_skybills(self._carrier(lambda: self.carrier.find_by_reference(reference)))
        except PermanentError as exc:
            raise CarrierUnavailableError(f"{what} failed: {exc.message}") from exc
        with self.store.session() as session:
            known = set(
                session.scalars(
                    select(Parcel.skybill_number).where(Parcel.shipment_id == shipment.id)
                )
            )
            known |= _held_elsewhere(session, shipment.id, found)
        return [s for s in found if s not in known]

    def _cancel_orphan(self, shipment: Shipment, skybill: str) -> None:
        """A label from an attempt whose answer we never got: cancel it, and say so."""
        try:
            self._carrier(lambda: self.carrier.cancel(skybill))
            note = CarrierValidationError(
                f"label {skybill} from an interrupted attempt was cancelled before re-creating",
                code="ORPHAN_LABEL_CANCELLED",
                record_id=shipment.sf_id,
            )
            state = "resolved"
        except TransientError:
            raise  # retried later: never make a new label while an orphan may still be live
        except ChronoforceError as exc:
            note = CarrierValidationError(
                f"orphan label {skybill} could not be cancelled: {exc.message}",
                code="ORPHAN_LABEL_LIVE",
                record_id=shipment.sf_id,
                request_payload=exc.request_payload,
                response_payload=exc.response_payload,
            )
            state = "open"
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment.id)
            exc_row = exceptions.record(
                session,
                note,
                operation=f"label.recover.{skybill}",
                shipment=row,
                now=self.now(),
                write_to_salesforce=state == "open",
            )
            exc_row.state = state


def _name(shipment: Shipment) -> str:
    return f"shipment {shipment.id} (order {shipment.order_number or shipment.sf_id})"


def _operation(shipment: Shipment) -> str:
    """What the exception row names: a return's failure is no outbound label's (the Order's
    label status stays as it is)."""
    return "return.create" if shipment.intent == "return" else "label.create"


def _held_elsewhere(session: Any, shipment_id: int, skybills: list[str]) -> set[str]:
    """The skybill numbers among `skybills` that another of our shipments holds."""
    if not skybills:
        return set()
    return set(
        session.scalars(
            select(Parcel.skybill_number).where(
                Parcel.skybill_number.in_(skybills), Parcel.shipment_id != shipment_id
            )
        )
    )


def _live_skybills(found: Any) -> list[str]:
    """Skybill numbers from the adapter's lookup answer (objects or strings)."""
    numbers: list[str] = []
    for item in found or ():
        if isinstance(item, str):
            numbers.append(item)
            continue
        if getattr(item, "cancelled", False):
            continue
        number = getattr(item, "skybill_number", None)
        if number:
            numbers.append(str(number))
    return numbers
