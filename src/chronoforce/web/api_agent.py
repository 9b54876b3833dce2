"""The HTTP API's agent actions: label an order now, re-print its label, fix a held address.

What the Salesforce component (`salesforce/force-app/…/lwc/chronoforcePanel`) and its Apex
controller call beside the endpoints of web/api.py. Thin on purpose: each handler calls the
pipeline's existing use cases (the label processor, the stored label bytes, the console's address
fix) and answers with typed models, so `/openapi.json` stays the contract the Apex reads.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from chronoforce.domain.shipment_state import LabelOutcome, ShipmentState
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Parcel, Shipment
from chronoforce.web.api_auth import Caller, LoggedRoute, require
from chronoforce.web.api_models import ApiError, error_responses
from chronoforce.web.api_service import ApiService

router = APIRouter(prefix="/api/v1", tags=["agent"], route_class=LoggedRoute)

OrderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]
Labels = Annotated[Caller, Depends(require("labels"))]
AUTH = (401, 403)
# Outcomes of LabelProcessor.process that leave the order without a label for now.
LATER = (LabelOutcome.RETRY, LabelOutcome.DEFERRED, LabelOutcome.RELEASED, LabelOutcome.SKIPPED)


class LabelAnswer(BaseModel):
    order_id: str
    shipment_id: int
    created: bool = Field(description="false: the order already had a live label")
    status: str
    skybill_numbers: list[str]


class LabelCopy(BaseModel):
    skybill_number: str
    label_format: str
    file_name: str
    content_base64: str


class LabelCopies(BaseModel):
    order_id: str
    shipment_id: int
    labels: list[LabelCopy]


class AddressFieldOut(BaseModel):
    label: str
    sf_field: str
    value: str


class AddressCandidate(BaseModel):
    postal_code: str
    city: str


class AddressReview(BaseModel):
    order_id: str
    exception_id: int
    code: str
    message: str
    field: str
    fields: list[AddressFieldOut] = Field(description="the editable fields and their values")
    candidates: list[AddressCandidate] = Field(description="what chronoforce proposes, if any")


class AddressFix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: dict[str, str] = Field(
        description="Salesforce field name → corrected value", min_length=1, max_length=10
    )


class AddressFixed(BaseModel):
    order_id: str
    shipment_id: int
    fields: list[str] = Field(description="the Salesforce fields written")


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.api
    return service


def _outbound(service: ApiService, order_id: str) -> Shipment | None:
    runtime = service.runtime
    store: Store = runtime.store
    with store.session() as session:
        row = session.scalar(
            select(Shipment).where(
                Shipment.sf_object == runtime.mapping.trigger_object,
                Shipment.sf_id == order_id,
                Shipment.intent == "outbound",
            )
        )
        if row is not None:
            session.expunge(row)
        return row


def _live_numbers(service: ApiService, shipment_id: int) -> list[str]:
    with service.runtime.store.session() as session:
        return list(
            session.scalars(
                select(Parcel.skybill_number)
                .where(Parcel.shipment_id == shipment_id, Parcel.live)
                .order_by(Parcel.position)
            )
        )


def _open_exception(service: ApiService, shipment_id: int, kind: str = "") -> ExceptionRow | None:
    with service.runtime.store.session() as session:
        query = select(ExceptionRow).where(
            ExceptionRow.shipment_id == shipment_id, ExceptionRow.state == "open"
        )
        if kind:
            query = query.where(ExceptionRow.kind == kind)
        row: ExceptionRow | None = session.scalars(
            query.order_by(ExceptionRow.last_seen.desc())
        ).first()
        if row is not None:
            session.expunge(row)
        return row


@router.post(
    "/orders/{order_id}/label",
    response_model=LabelAnswer,
    responses=error_responses(*AUTH, 400, 404, 409, 502, 503),
    summary="Make the order's label now (or answer the live one it has)",
)
def post_label(request: Request, order_id: OrderId, _: Labels) -> LabelAnswer:
    """The same path as the pipeline: intent recorded, label made, written back to Salesforce.
    A refusal (address, routing, carrier) is the exception it left, with its code and field."""
    service = _service(request)
    runtime = service.runtime
    existing = _outbound(service, order_id)
    if existing is not None and existing.state == ShipmentState.LABELED:
        numbers = _live_numbers(service, existing.id)
        return LabelAnswer(
            order_id=order_id, shipment_id=existing.id, created=False,
            status=existing.status, skybill_numbers=numbers,
        )  # fmt: skip
    read = service.read_order(order_id)
    recorded = runtime.record([read.record], None)
    shipment = _outbound(service, order_id)
    if shipment is None:
        raise ApiError(
            409, "NOT_RECORDED", f"no shipment recorded for {order_id}", record_id=order_id
        )
    outcome = runtime.labels.process(recorded[0] if recorded else shipment.id)
    if outcome in (LabelOutcome.EXCEPTION, LabelOutcome.SKIPPED):
        # The refusal it left now, or earlier: an order held for review is not retried here.
        problem = _open_exception(service, shipment.id)
        if problem is not None:
            raise ApiError(
                400, problem.code, problem.message, record_id=order_id, field=problem.field
            )
    if outcome == LabelOutcome.EXCEPTION:
        raise ApiError(400, "LABEL_REFUSED", f"no label for {order_id}", record_id=order_id)
    if shipment.state == ShipmentState.CANCELLED:
        raise ApiError(
            409, "LABEL_CANCELLED", f"the label of {order_id} was cancelled; a new one is made "
            "when the order is flagged to ship again", record_id=order_id,
        )  # fmt: skip
    runtime.flush()
    after = _outbound(service, order_id)
    if outcome in LATER or after is None or after.state != ShipmentState.LABELED:
        raise ApiError(
            503, "LABEL_LATER", f"the label for {order_id} could not be made now ({outcome}); "
            "chronoforce retries it by itself", record_id=order_id,
        )  # fmt: skip
    return LabelAnswer(
        order_id=order_id, shipment_id=after.id, created=True, status=after.status,
        skybill_numbers=_live_numbers(service, after.id),
    )  # fmt: skip


@router.post(
    "/orders/{order_id}/label/reprint",
    response_model=LabelCopies,
    responses=error_responses(*AUTH, 404, 409),
    summary="The order's live labels again, as stored when Chronopost made them",
)
def post_reprint(request: Request, order_id: OrderId, _: Labels) -> LabelCopies:
    """No carrier call: the bytes Chronopost returned, base64 (PDF or ZPL as configured)."""
    service = _service(request)
    shipment = _outbound(service, order_id)
    if shipment is None:
        raise ApiError(
            404, "SHIPMENT_NOT_FOUND", f"order {order_id} has no label", record_id=order_id
        )
    copies: list[LabelCopy] = []
    with service.runtime.store.session() as session:
        parcels = session.scalars(
            select(Parcel)
            .where(Parcel.shipment_id == shipment.id, Parcel.live)
            .order_by(Parcel.position)
        )
        for parcel in parcels:
            data = parcel.label_bytes
            if data is None and parcel.label_path:
                with open(parcel.label_path, "rb") as handle:
                    data = handle.read()
            if not data:
                continue
            pdf = parcel.label_format.upper().startswith("PDF")
            copies.append(
                LabelCopy(
                    skybill_number=parcel.skybill_number,
                    label_format=parcel.label_format,
                    file_name=f"chronopost-{parcel.skybill_number}.{'pdf' if pdf else 'zpl'}",
                    content_base64=base64.b64encode(data).decode("ascii"),
                )
            )
    if not copies:
        raise ApiError(
            409, "NO_LABEL_STORED", f"order {order_id} has no live label to re-print",
            record_id=order_id,
        )  # fmt: skip
    return LabelCopies(order_id=order_id, shipment_id=shipment.id, labels=copies)


def _review_row(service: ApiService, order_id: str) -> tuple[Shipment, ExceptionRow]:
    shipment = _outbound(service, order_id)
    problem = _open_exception(service, shipment.id, "address") if shipment else None
    if shipment is None or problem is None:
        raise ApiError(
            404, "NO_ADDRESS_REVIEW", f"order {order_id} has no address held for review",
            record_id=order_id,
        )  # fmt: skip
    return shipment, problem


@router.get(
    "/orders/{order_id}/address-review",
    response_model=AddressReview,
    responses=error_responses(*AUTH, 404),
    summary="The order's address held in the review queue: why, its fields, the candidates",
)
def get_address_review(request: Request, order_id: OrderId, _: Labels) -> AddressReview:
    from chronoforce.web.console.actions import address_fields

    service = _service(request)
    shipment, problem = _review_row(service, order_id)
    fields = address_fields(shipment, service.runtime.mapping)
    return AddressReview(
        order_id=order_id, exception_id=problem.id, code=problem.code,
        message=problem.message, field=problem.field,
        fields=[AddressFieldOut(label=f.label, sf_field=f.sf_field, value=f.value) for f in fields],
        candidates=_candidates(problem),
    )  # fmt: skip


def _candidates(problem: ExceptionRow) -> list[AddressCandidate]:
    """Candidates the address check stored with the exception (none until it stores them)."""
    found: Any = getattr(problem, "candidates", None) or []
    return [
        AddressCandidate(postal_code=str(c.get("postal_code", "")), city=str(c.get("city", "")))
        for c in found
        if isinstance(c, dict)
    ]


@router.post(
    "/orders/{order_id}/address",
    response_model=AddressFixed,
    responses=error_responses(*AUTH, 400, 404),
    summary="Correct the held address in Salesforce and here, then retry the label",
)
def post_address(
    request: Request, order_id: OrderId, fix: AddressFix, caller: Labels
) -> AddressFixed:
    """The console's fix: refused (400) when the corrected address still fails the check."""
    from chronoforce.web.console.actions import ActionError, address_fields, fix_address

    service = _service(request)
    shipment, problem = _review_row(service, order_id)
    runtime = service.runtime
    before = {f.sf_field: f.value for f in address_fields(shipment, runtime.mapping)}
    changed = sorted(
        k for k, v in fix.values.items() if k in before and v.strip() != before[k]
    )  # what fix_address writes: the editable fields whose value changes
    try:
        with runtime.store.session() as session:
            fix_address(session, problem.id, fix.values, runtime.mapping, f"api:{caller.client_id}")
    except ActionError as exc:
        raise ApiError(
            400, "ADDRESS_REFUSED", str(exc), record_id=order_id, field=problem.field
        ) from exc
    runtime.flush()
    return AddressFixed(order_id=order_id, shipment_id=shipment.id, fields=changed)
