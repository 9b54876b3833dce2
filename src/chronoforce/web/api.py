"""The HTTP API Salesforce calls through a Named Credential: rates, relay points, pickups, returns.

`/api/v1/…` endpoints, each guarded by a scope (web/api_auth.py), with typed models so the
OpenAPI document at `/openapi.json` is exact. Handlers only translate HTTP to the use cases that
api_service.py wires (pipeline/); the domain's typed errors become an ApiErrorBody with a 4xx/5xx
(503 with Retry-After while Chronopost is unavailable or the breaker is open), never a bare 500.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from chronoforce.config import Settings
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import LabelFormat
from chronoforce.redaction import redact_text
from chronoforce.web import api_agent, api_auth, api_manifest
from chronoforce.web.api_auth import AuthError, Caller, LoggedRoute, auth_error_response, require
from chronoforce.web.api_config import api_config
from chronoforce.web.api_models import (
    TEXT,
    ApiError,
    ApiErrorBody,
    CancelAnswer,
    PickupAnswer,
    PickupRequest,
    RateChoice,
    RatesAnswer,
    RatesRequest,
    RateWritten,
    RelayPointsAnswer,
    ReturnAnswer,
    ReturnRequest,
    SfId,
    SlotBookedAnswer,
    SlotChoice,
    SlotsAnswer,
    error_responses,
    status_of,
)
from chronoforce.web.api_service import ApiService

router = APIRouter(prefix="/api/v1", tags=["api"], route_class=LoggedRoute)

OrderId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]
AUTH = (401, 403)
# One dependency per scope: 401 without valid credentials, 403 without the scope.
Rates = Annotated[Caller, Depends(require("rates"))]
Relay = Annotated[Caller, Depends(require("relay"))]
Pickups = Annotated[Caller, Depends(require("pickup"))]
Returns = Annotated[Caller, Depends(require("returns"))]
Cancels = Annotated[Caller, Depends(require("cancel"))]
Slots = Annotated[Caller, Depends(require("slots"))]
ProductType = Annotated[str, Query(pattern=r"^(|RDV|FRESH|FREEZE|AMBIENT)$")]
ShipmentId = Annotated[int, Path(ge=1, le=2**53)]


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.api
    return service


QUEUED = (
    "Asked inside Chronopost's cancel window (about ten minutes after the label is made): "
    "queued, sent at `opens_at`; `status` is `cancel_queued`"
)


def _queued(response: Response, answer: CancelAnswer) -> CancelAnswer:
    if answer.opens_at is not None:
        response.status_code = 202
    return answer


@router.post(
    "/rates",
    response_model=RatesAnswer,
    responses=error_responses(*AUTH, 400, 404, 502, 503),
    summary="Live Chronopost rates for an order or a destination and parcels",
)
def post_rates(request: Request, ask: RatesRequest, _: Rates) -> RatesAnswer:
    """Every product Chronopost offers, prices excl./incl. VAT, promised dates, the routing
    rules' choice and why. Same route, weight band and day within the TTL: no carrier call."""
    return _service(request).rates(ask)


@router.post(
    "/orders/{order_id}/rate",
    response_model=RateWritten,
    responses=error_responses(*AUTH, 400, 404, 502, 503),
    summary="Write the chosen product and its shipping cost to the order",
)
def post_order_rate(
    request: Request, order_id: OrderId, choice: RateChoice, _: Rates
) -> RateWritten:
    return _service(request).write_rate(order_id, choice)


@router.get(
    "/relay-points",
    response_model=RelayPointsAnswer,
    responses=error_responses(*AUTH, 400, 404, 502, 503),
    summary="Chronopost relay points near a postal code or an order's shipping address",
)
def get_relay_points(
    request: Request,
    _: Relay,
    postal_code: Annotated[
        str | None, Query(min_length=1, max_length=9, pattern=r"^[A-Za-z0-9 -]+$")
    ] = None,
    country: Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")] = "FR",
    city: Annotated[str, Query(max_length=50, pattern=TEXT)] = "",
    near_order: Annotated[SfId | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=25)] = 10,
) -> RelayPointsAnswer:
    """Give `postal_code` (and `country`), or `near_order`; the chosen point's `id` goes into
    the order's relay point field and from there into the label request."""
    if not postal_code and not near_order:
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("query", "postal_code"),
                    "msg": "give postal_code or near_order",
                    "input": None,
                }
            ]
        )
    return _service(request).relay_points(postal_code, country, city, near_order, limit)


@router.post(
    "/orders/{order_id}/pickup",
    response_model=PickupAnswer,
    responses=error_responses(*AUTH, 400, 404, 409, 502, 503),
    summary="Pickup on demand for the order's parcels, confirmation written back",
)
def post_pickup(
    request: Request, order_id: OrderId, ask: PickupRequest, _: Pickups
) -> PickupAnswer:
    """Once per order and day: asking again answers the pickup booked, unless `change` (then
    the booked pickups are cancelled with annulerEnlevements first). Times are Paris time."""
    return _service(request).book_pickup(order_id, ask)


@router.post(
    "/orders/{order_id}/return-label",
    response_model=ReturnAnswer,
    responses=error_responses(*AUTH, 400, 404, 409, 502, 503),
    summary="A return label for the order, attached to the order (and the Case)",
)
def post_return_label(
    request: Request,
    order_id: OrderId,
    _: Returns,
    ask: Annotated[ReturnRequest | None, Body()] = None,
) -> ReturnAnswer:
    return _service(request).return_label(order_id, ask or ReturnRequest())


@router.post(
    "/cases/{case_id}/return-label",
    response_model=ReturnAnswer,
    responses=error_responses(*AUTH, 400, 404, 409, 502, 503),
    summary="A return label for the order of a Case of the configured type",
)
def post_case_return_label(request: Request, case_id: OrderId, _: Returns) -> ReturnAnswer:
    service = _service(request)
    order_id = service.case_order(case_id)
    return service.return_label(order_id, ReturnRequest(case_id=case_id))


@router.post(
    "/shipments/{shipment_id}/cancel",
    response_model=CancelAnswer,
    response_model_exclude_none=True,  # opens_at only for a queued cancel
    responses={
        202: {"model": CancelAnswer, "description": QUEUED},
        **error_responses(*AUTH, 404, 409, 502, 503),
    },
    summary="Cancel the labels of a shipment not yet picked up",
)
def post_cancel(
    request: Request,
    response: Response,
    shipment_id: Annotated[int, Path(ge=1, le=2**53)],
    _: Cancels,
) -> CancelAnswer:
    return _queued(response, _service(request).cancel(shipment_id))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=CancelAnswer,
    response_model_exclude_none=True,  # opens_at only for a queued cancel
    responses={
        202: {"model": CancelAnswer, "description": QUEUED},
        **error_responses(*AUTH, 404, 409, 502, 503),
    },
    summary="Cancel the order's labels (outbound, or its return label) not yet picked up",
)
def post_order_cancel(
    request: Request,
    response: Response,
    order_id: OrderId,
    _: Cancels,
    intent: Annotated[Literal["outbound", "return"], Query()] = "outbound",
) -> CancelAnswer:
    """The same as /shipments/{id}/cancel, found by the Salesforce id Salesforce knows."""
    return _queued(response, _service(request).cancel_order(order_id, intent))


# --- label re-print (issue 21 item 5) ----------------------------------------------------

Labels = Annotated[Caller, Depends(require("labels"))]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=100, pattern=r"^[\x21-\x7e]+$")
]
LABEL_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/pdf": {}, "application/octet-stream": {}},
        "description": "The stored label again (PDF, or ZPL as octet-stream): the same skybill "
        "numbers (header X-Skybill-Numbers), no new parcel; a copy is filed on the Order and "
        "Shipment in Salesforce. The same Idempotency-Key answers the same re-print again.",
    }
}


def _label_file(done: Any) -> Response:
    return Response(
        done.data,
        media_type="application/pdf" if done.label_format.is_pdf else "application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{done.filename}"',
            "X-Skybill-Numbers": ",".join(done.skybill_numbers),
            "X-Reprint-Id": str(done.reprint_id),
        },
    )


@router.post(
    "/shipments/{shipment_id}/reprint",
    response_class=Response,
    responses={**LABEL_FILE, **error_responses(*AUTH, 400, 404, 409, 502, 503)},
    summary="Re-print a shipment's label: the one Chronopost stored, never a second label",
)
def post_reprint(
    request: Request,
    shipment_id: Annotated[int, Path(ge=1, le=2**53)],
    caller: Labels,
    idempotency_key: IdempotencyKey = None,
    mode: Annotated[LabelFormat | None, Query(description="default: as it was made")] = None,
) -> Response:
    """409 LABEL_VOIDED for a cancelled label; 404 STORED_LABEL_NOT_FOUND when Chronopost no
    longer holds it; 503 with Retry-After while Chronopost is unavailable."""
    service = _service(request)
    return _label_file(service.reprint(shipment_id, mode, idempotency_key, caller.client_id))


# --- Chrono Precise slots (issue 23) ------------------------------------------------------

SLOT_ERRORS = error_responses(*AUTH, 400, 404, 409, 422, 502, 503)


@router.get(
    "/orders/{order_id}/slots",
    response_model=SlotsAnswer,
    responses=SLOT_ERRORS,
    summary="Chrono Precise delivery slots for the order's address, with price levels",
)
def get_order_slots(
    request: Request, order_id: OrderId, _: Slots, product_type: ProductType = ""
) -> SlotsAnswer:
    """Two-hour slots (Paris time) Chronopost offers for the order's ship-to address and
    weight; `product_type` RDV (default, or the order's Precise product's), FRESH, FREEZE,
    AMBIENT. 422 `SLOT_OUT_OF_ZONE` or `SLOT_NONE` when there is none to offer."""
    return _service(request).order_slots(order_id, product_type)


@router.post(
    "/orders/{order_id}/slot",
    response_model=SlotBookedAnswer,
    responses=SLOT_ERRORS,
    summary="Confirm a slot of the order's last offer; its codes go on the label",
)
def post_order_slot(
    request: Request, order_id: OrderId, choice: SlotChoice, _: Slots
) -> SlotBookedAnswer:
    """409 `SLOT_TAKEN` (full or closed now) or `SLOT_EXPIRED` (ask for the slots again)."""
    return _service(request).choose_slot(order_id, choice)


@router.get(
    "/shipments/{shipment_id}/slots",
    response_model=SlotsAnswer,
    responses=SLOT_ERRORS,
    summary="Slots to rebook a Precise delivery after a failed attempt",
)
def get_shipment_slots(
    request: Request, shipment_id: ShipmentId, _: Slots, product_type: ProductType = ""
) -> SlotsAnswer:
    return _service(request).shipment_slots(shipment_id, product_type)


@router.post(
    "/shipments/{shipment_id}/rebook",
    response_model=SlotBookedAnswer,
    responses=SLOT_ERRORS,
    summary="Rebook the delivery of a parcel whose delivery failed, on an offered slot",
)
def post_shipment_rebook(
    request: Request, shipment_id: ShipmentId, choice: SlotChoice, _: Slots
) -> SlotBookedAnswer:
    return _service(request).rebook(shipment_id, choice)


@router.get(
    "/cases/{case_id}/slots",
    response_model=SlotsAnswer,
    responses=SLOT_ERRORS,
    summary="Slots to rebook the delivery a tracking Case is about",
)
def get_case_slots(
    request: Request, case_id: OrderId, _: Slots, product_type: ProductType = ""
) -> SlotsAnswer:
    service = _service(request)
    return service.shipment_slots(service.case_shipment(case_id), product_type)


@router.post(
    "/cases/{case_id}/rebook",
    response_model=SlotBookedAnswer,
    responses=SLOT_ERRORS,
    summary="Rebook the delivery a tracking Case is about; the Case gets a comment",
)
def post_case_rebook(
    request: Request, case_id: OrderId, choice: SlotChoice, _: Slots
) -> SlotBookedAnswer:
    service = _service(request)
    return service.rebook(service.case_shipment(case_id), choice, case_id)


# --- errors ------------------------------------------------------------------------------


def _error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return JSONResponse(exc.body.model_dump(), status_code=exc.status)
    if isinstance(exc, AuthError):
        return auth_error_response(exc)
    assert isinstance(exc, ChronoforceError)
    body = ApiErrorBody(
        code=exc.code, message=redact_text(exc.message), record_id=exc.record_id,
        field=exc.field, operation=exc.operation,
    )  # fmt: skip
    status = status_of(exc)
    headers = {"Retry-After": _retry_after(exc)} if status == 503 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _retry_after(error: ChronoforceError) -> str:
    """Whole seconds until asking again is worth it: the breaker's own time when it says."""
    seconds = getattr(error, "retry_after", None)
    return str(max(1, math.ceil(seconds))) if seconds else "30"


def install(app: FastAPI, settings: Settings, runtime: Any = None) -> None:
    """Add the API to `app`: routers, error answers, and the service over `runtime`."""
    config = api_config(settings.api)
    app.state.api_config = config
    app.state.api = ApiService(settings, config, runtime)
    app.include_router(api_auth.router)
    app.include_router(router)
    app.include_router(api_agent.router)
    app.include_router(api_manifest.router)  # end-of-day slips (issue 21)
    for kind in (ApiError, AuthError, ChronoforceError):
        app.add_exception_handler(kind, _error)
