"""Label operations the API offers: pickup on demand, return labels, cancelling a label.

Pickup: parcels already labeled get a pickup of their own (creerEnlevementNational); an order
not labeled yet gets its label made now with Chronopost's pickup-on-demand data (`esdValue` of
shippingMultiParcelV5) through the label pipeline. Return: a `return` shipment row
(modeRetour), tracked like any parcel. Cancel: only before pickup. It must never leave a second
live label behind: rows are written before and after every carrier call, like labels.py does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from chronoforce.domain.address import require_sendable
from chronoforce.domain.errors import (
    CarrierValidationError,
    ChronoforceError,
    PermanentError,
    RoutingError,
    TransientError,
)
from chronoforce.domain.models import (
    LabelResult,
    Pickup,
    ShipmentOptions,
    ShipmentRequest,
    ShipmentStatus,
)
from chronoforce.domain.models import (
    Parcel as ParcelSpec,
)
from chronoforce.domain.routing import route
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.labels import BEFORE_PICKUP, Prepared, shipper_ref
from chronoforce.store.models import ExceptionRow, Parcel, Shipment
from chronoforce.store.ops import insert_ignore, take_lease
from chronoforce.web.api_models import (
    ApiError,
    CancelAnswer,
    PickupAnswer,
    PickupRequest,
    ReturnAnswer,
    ReturnRequest,
)
from chronoforce.web.api_service import ApiService, order_facts

log = get_logger(component="api")

RETURN_INTENT = "return"
CANCELLED_STATE = "cancelled"
RETURN_WORKABLE = ("pending", "calling", "exception", CANCELLED_STATE)


@dataclass
class _Capture:
    """The carrier, remembering the label result (the pipeline keeps no ESD number)."""

    carrier: Any
    results: list[LabelResult] = field(default_factory=list)
    error: ChronoforceError | None = None

    def create_shipment(self, request: ShipmentRequest) -> LabelResult:
        try:
            result: LabelResult = self.carrier.create_shipment(request)
        except ChronoforceError as exc:
            self.error = exc
            raise
        self.results.append(result)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.carrier, name)


def _with_pickup(base: Any) -> Any:
    """The runtime's preparation, plus the pickup stored on the shipment row."""

    def prepare(shipment: Shipment) -> Prepared:
        prepared: Prepared = base(shipment)
        raw = (shipment.source or {}).get("pickup")
        if not raw:
            return prepared
        pickup = Pickup(
            date=dt.date.fromisoformat(raw["date"]),
            ready_time=dt.time.fromisoformat(raw["ready_time"]),
            closing_time=dt.time.fromisoformat(raw["closing_time"]),
            instructions=raw.get("instructions", ""),
        )
        request = prepared.request
        request = replace(
            request,
            ship_date=max(request.ship_date, pickup.date),
            options=replace(request.options, pickup=pickup),
        )
        return replace(prepared, request=request)

    return prepare


def _open_problem(service: ApiService, shipment_id: int) -> ExceptionRow | None:
    with service.runtime.store.session() as session:
        row: ExceptionRow | None = session.scalar(
            select(ExceptionRow)
            .where(ExceptionRow.shipment_id == shipment_id, ExceptionRow.state == "open")
            .order_by(ExceptionRow.last_seen.desc())
        )
        if row is not None:
            session.expunge(row)
        return row


def _failed(
    service: ApiService, shipment_id: int, order_id: str, outcome: str, capture: _Capture
) -> Exception:
    if outcome == "skipped":
        return ApiError(409, "SHIPMENT_BUSY", "the order's label is being made; try again")
    if capture.error is not None:  # Chronopost's own words, code and operation
        return capture.error.with_context(record_id=order_id)
    problem = _open_problem(service, shipment_id)
    code = problem.code if problem else "LABEL_FAILED"
    message = problem.message if problem else f"the label could not be made ({outcome})"
    status = 503 if outcome == "retry" else 400
    return ApiError(
        status, code, message, record_id=order_id, field=problem.field if problem else ""
    )


def book_pickup(service: ApiService, order_id: str, ask: PickupRequest) -> PickupAnswer:
    """Labeled parcels: creerEnlevementNational. Not labeled yet: a label with `esdValue`."""
    runtime = service.runtime
    read = service.read_order(order_id)
    runtime.record([read.record], None)
    sf_object = runtime.mapping.trigger_object
    with runtime.store.session() as session:
        row = session.scalar(
            select(Shipment).where(
                Shipment.sf_object == sf_object,
                Shipment.sf_id == read.order.sf_id,
                Shipment.intent == "outbound",
            )
        )
        if row is None:  # record() inserts it; a concurrent delete is all that could race
            raise ApiError(409, "SHIPMENT_BUSY", "the order's shipment row vanished; try again")
        if row.status not in BEFORE_PICKUP:
            raise ApiError(
                409,
                "ALREADY_PICKED_UP",
                f"the order's parcels are past pickup (status {row.status})",
                record_id=order_id,
            )
        if row.state in ("calling", "changed"):
            raise ApiError(409, "SHIPMENT_BUSY", "the order's label is being made; try again")
        shipment_id, labeled = row.id, row.state == "labeled"
        live = [(p.skybill_number, Decimal(str(p.weight_kg))) for p in row.parcels if p.live]
        reference = row.shipper_ref or read.order.order_number
        if not labeled:
            row.source = {**(row.source or {}), "pickup": ask.model_dump(mode="json")}
            row.state = "retry" if row.state == "exception" else row.state
            row.attempts, row.next_attempt_at = 0, None
    pickup = Pickup(ask.date, ask.ready_time, ask.closing_time, ask.instructions)
    if labeled and live:
        booked = runtime.carrier.book_pickup(
            service.shipper,
            pickup,
            tuple(ParcelSpec(weight_kg=weight) for _, weight in live),
            tuple(number for number, _ in live),
            reference,
        )
        number, date, skybills = booked.number, booked.date, [n for n, _ in live]
    else:
        number, date, skybills = _label_with_pickup(service, shipment_id, order_id)
    _confirm_pickup(service, shipment_id, read.order.sf_id, number, date)
    log.info("pickup booked", sf_id=read.order.sf_id, esd=number)
    return PickupAnswer(
        order_id=read.order.sf_id,
        shipment_id=shipment_id,
        pickup_number=number,
        pickup_date=date,
        skybill_numbers=skybills,
        relabeled=False,
    )


def _label_with_pickup(
    service: ApiService, shipment_id: int, order_id: str
) -> tuple[str, dt.datetime | None, list[str]]:
    """The order's first label, made now by the label pipeline with the pickup data."""
    runtime = service.runtime
    capture = _Capture(runtime.carrier)
    pipeline = replace(
        runtime.labels, carrier=capture, prepare=_with_pickup(runtime.labels.prepare)
    )
    outcome = pipeline.process(shipment_id)
    if outcome != "labeled" or not capture.results:
        raise _failed(service, shipment_id, order_id, outcome, capture)
    result = capture.results[-1]
    return result.pickup_number, result.pickup_date, list(result.skybill_numbers)


def _confirm_pickup(
    service: ApiService, shipment_id: int, sf_id: str, number: str, date: dt.datetime | None
) -> None:
    runtime = service.runtime
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        row.source = {
            **(row.source or {}),
            "pickup_booked": {"number": number, "date": date.isoformat() if date else None},
        }
        writeback.enqueue(
            session,
            sf_object=row.sf_object,
            operation="update",
            sf_id=sf_id,
            shipment_id=shipment_id,
            payload={
                "Chronopost_Pickup_Number__c": number[:50],
                "Chronopost_Pickup_Date__c": date.isoformat() if date else None,
            },
        )
    runtime.flush()


# --- returns -----------------------------------------------------------------------------


def _return_answer(row: Shipment, parcels: list[Parcel], created: bool) -> ReturnAnswer:
    return ReturnAnswer(
        order_id=row.sf_id,
        case_id=(row.source or {}).get("case_id") or None,
        shipment_id=row.id,
        skybill_numbers=[p.skybill_number for p in parcels],
        returns_reference=row.returns_reference,
        status=row.status,
        created=created,
    )


def return_label(service: ApiService, order_id: str, ask: ReturnRequest) -> ReturnAnswer:
    """One return label per order: asking again answers the existing one."""
    runtime = service.runtime
    read = service.read_order(order_id)
    order, sf_object = read.order, runtime.mapping.trigger_object
    reference = (ask.returns_reference or order.references.returns_reference or "")[:15]
    reference = reference or f"R{order.order_number}"[:15]
    with runtime.store.session() as session:  # the row first, once, whoever races us
        insert_ignore(
            session,
            Shipment,
            [
                {
                    "sf_object": sf_object,
                    "sf_id": order.sf_id,
                    "intent": RETURN_INTENT,
                    "order_number": order.order_number,
                    "shipper_ref": shipper_ref(order.order_number, RETURN_INTENT, order.sf_id),
                    "state": "pending",
                    "status": ShipmentStatus.PENDING.value,
                    "source": {},
                }
            ],
        )
    owner = f"api-{uuid.uuid4().hex[:8]}"
    lease = dt.timedelta(seconds=service.settings.pipeline.lease_seconds)
    with runtime.store.session() as session:
        row = session.scalars(
            select(Shipment).where(
                Shipment.sf_object == sf_object,
                Shipment.sf_id == order.sf_id,
                Shipment.intent == RETURN_INTENT,
            )
        ).one()
        if row.state == "labeled":
            return _return_answer(row, [p for p in row.parcels if p.live], created=False)
        # The lease keeps two requests for the same order from both calling Chronopost.
        if not take_lease(session, row.id, owner, runtime.now(), lease, RETURN_WORKABLE):
            raise ApiError(
                409, "SHIPMENT_BUSY", "a return label is being made for this order; try again",
                record_id=order.sf_id,
            )  # fmt: skip
        previous_state = row.state
        row.state, row.status = "calling", ShipmentStatus.PENDING.value
        row.returns_reference = reference
        row.customer_id = order.references.customer_id
        row.source = {"record": _plain(read.record), "case_id": ask.case_id or ""}
        row.product_code = service.config.return_product
        row.attempts += 1
        shipment_id, ref = row.id, row.shipper_ref or ""
    if previous_state == "calling":
        _cancel_orphans(service, ref)  # an earlier call's answer was lost: void what it made
    try:
        request = _return_request(service, read.order, reference)
        result = runtime.carrier.create_shipment(request)
    except ChronoforceError as exc:
        _return_failed(service, shipment_id, exc, order.sf_id)
        raise
    return _store_return(service, shipment_id, request, result, ask.case_id or "")


def _return_request(service: ApiService, order: Any, reference: str) -> ShipmentRequest:
    recipient = require_sendable(order.recipient, "recipient")
    facts = replace(
        order_facts(order, recipient),
        relay_point_id="",
        product_override=service.config.return_product,
        override_field="api.return_product",
    )
    now = service.runtime.now()
    try:
        decision = route(facts, now, service.rules)
    except RoutingError:
        # The return product cannot reach this address (e.g. Chrono 13 and an overseas
        # département): the routing rules pick one that can, door to door.
        decision = route(replace(facts, product_override=""), now, service.rules)
    return ShipmentRequest(
        shipper=service.shipper,
        recipient=recipient,
        parcels=order.parcels,
        product_code=decision.product_code,
        ship_date=decision.ship_date,
        references=replace(order.references, returns_reference=reference),
        options=ShipmentOptions(is_return=True, label_format=service.label_format),
    )


def _cancel_orphans(service: ApiService, reference: str) -> None:
    runtime = service.runtime
    try:
        found = runtime.carrier.find_by_reference(reference)
    except ChronoforceError:
        return
    for parcel in found:
        if not getattr(parcel, "cancelled", False):
            runtime.carrier.cancel(parcel.skybill_number)


def _return_failed(
    service: ApiService, shipment_id: int, error: ChronoforceError, sf_id: str
) -> None:
    with service.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        # A timeout may have made a label: stay `calling`, so the next ask voids it first.
        row.state = "exception" if isinstance(error, PermanentError) else "calling"
        row.lease_owner, row.lease_expires_at = None, None
        error.with_context(record_id=sf_id, operation="return.create")
        exceptions.record(session, error, operation="return.create", shipment=row)


def _store_return(
    service: ApiService, shipment_id: int, request: ShipmentRequest, result: LabelResult,
    case_id: str,
) -> ReturnAnswer:  # fmt: skip
    runtime = service.runtime
    now = runtime.now()
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        row.generation += 1
        parcels = [
            Parcel(
                shipment_id=row.id,
                position=index,
                generation=row.generation,
                skybill_number=label.skybill_number,
                weight_kg=request.parcels[min(index, len(request.parcels)) - 1].weight_kg,
                label_format=label.label_format.value,
                label_bytes=label.data,
                live=True,
            )
            for index, label in enumerate(result.labels, start=1)
        ]
        session.add_all(parcels)
        row.state, row.status = "labeled", ShipmentStatus.LABEL_CREATED.value
        row.lease_owner, row.lease_expires_at = None, None
        row.product_code = request.product_code
        row.reservation_number = result.reservation_number
        row.next_poll_at = now + dt.timedelta(hours=1)  # tracked like any other parcel
        session.flush()
        _queue_return_writeback(session, row, parcels, case_id)
        answer = _return_answer(row, parcels, created=True)
    runtime.flush()
    log.info("return label created", sf_id=row.sf_id, skybills=answer.skybill_numbers)
    return answer


def _queue_return_writeback(
    session: Any, row: Shipment, parcels: list[Parcel], case_id: str
) -> None:
    numbers = ",".join(p.skybill_number for p in parcels)[:255]
    writeback.enqueue(
        session,
        sf_object=row.sf_object,
        operation="update",
        sf_id=row.sf_id,
        shipment_id=row.id,
        payload={
            "Chronopost_Return_Tracking_Number__c": numbers,
            "Chronopost_Returns_Reference__c": row.returns_reference,
        },
    )
    if case_id:
        writeback.enqueue(
            session,
            sf_object="Case",
            operation="update",
            sf_id=case_id,
            shipment_id=row.id,
            payload={
                "Chronopost_Return_Tracking_Number__c": numbers,
                "Chronopost_Order__c": row.sf_id if row.sf_object == "Order" else None,
            },
        )
    writeback.enqueue_rows(
        session,
        [
            writeback.label_file_row(
                shipment_id=row.id,
                generation=row.generation,
                parcels=[(p.id, len(p.label_bytes or b"")) for p in parcels],
                label_format=parcels[0].label_format,
                title=f"Chronopost return label {row.order_number or row.sf_id}",
                name=f"chronopost-return-{parcels[0].skybill_number}",
                attach_to=[case_id or row.sf_id, row.sf_id],
            )
        ],
    )


def _plain(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: _plain(v) for k, v in record.items() if k != "attributes"}
    if isinstance(record, list):
        return [_plain(v) for v in record]
    return record


# --- cancel ------------------------------------------------------------------------------


def cancel(service: ApiService, shipment_id: int) -> CancelAnswer:
    """Void every live label of the shipment; refused (409) once the parcels are picked up."""
    runtime = service.runtime
    with runtime.store.session() as session:
        row = session.get(Shipment, shipment_id)
        if row is None:
            raise ApiError(404, "SHIPMENT_NOT_FOUND", f"no shipment {shipment_id}")
        if row.state == CANCELLED_STATE:
            return CancelAnswer(shipment_id=row.id, cancelled=[], status=row.status)
        if row.status not in BEFORE_PICKUP:
            raise ApiError(
                409,
                "ALREADY_PICKED_UP",
                f"shipment {shipment_id} is past pickup (status {row.status}): it cannot be "
                "cancelled",
                record_id=row.sf_id,
            )
        if row.state == "calling":
            raise ApiError(409, "SHIPMENT_BUSY", "the label is being made; try again")
        numbers = [p.skybill_number for p in row.parcels if p.live]
        sf_object, sf_id, intent = row.sf_object, row.sf_id, row.intent
    done: list[str] = []
    for number in numbers:
        try:
            runtime.carrier.cancel(number)
        except CarrierValidationError as exc:
            _mark_cancelled(service, shipment_id, done, final=False)  # those went through
            raise ApiError(
                409, exc.code, f"Chronopost refused to cancel {number}: {exc.message}",
                record_id=sf_id,
            ) from exc  # fmt: skip
        except TransientError:
            _mark_cancelled(service, shipment_id, done, final=False)
            raise
        done.append(number)
    _mark_cancelled(service, shipment_id, done, final=True)
    with runtime.store.session() as session:
        payload: dict[str, Any] = (
            {"Chronopost_Label_Status__c": "Cancelled", "Chronopost_Status__c": "cancelled"}
            if intent == "outbound"
            else {"Chronopost_Return_Tracking_Number__c": None}
        )
        writeback.enqueue(
            session, sf_object=sf_object, operation="update", sf_id=sf_id,
            shipment_id=shipment_id, payload=payload,
        )  # fmt: skip
    runtime.flush()
    log.info("labels cancelled", shipment_id=shipment_id, skybills=done)
    return CancelAnswer(shipment_id=shipment_id, cancelled=done, status="cancelled")


def cancel_order(service: ApiService, order_id: str, intent: str) -> CancelAnswer:
    """Cancel by Salesforce id: the order's outbound (or return) shipment."""
    runtime = service.runtime
    with runtime.store.session() as session:
        shipment_id = session.scalar(
            select(Shipment.id).where(
                Shipment.sf_object == runtime.mapping.trigger_object,
                Shipment.sf_id == order_id,
                Shipment.intent == intent,
            )
        )
    if shipment_id is None:
        raise ApiError(
            404, "SHIPMENT_NOT_FOUND", f"order {order_id} has no {intent} shipment",
            record_id=order_id,
        )  # fmt: skip
    return cancel(service, shipment_id)


def _mark_cancelled(service: ApiService, shipment_id: int, numbers: list[str], final: bool) -> None:
    now = service.runtime.now()
    with service.runtime.store.session() as session:
        for parcel in session.scalars(select(Parcel).where(Parcel.skybill_number.in_(numbers))):
            parcel.live, parcel.cancelled_at = False, now
        if final:
            row = session.get_one(Shipment, shipment_id)
            row.state, row.status = CANCELLED_STATE, ShipmentStatus.CANCELLED.value
            row.next_poll_at = None
