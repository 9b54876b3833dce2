"""Request and answer models of the HTTP API (`/api/v1`), and its one error type.

They are the OpenAPI document Salesforce (Apex, Flow, External Services) codes against, so every
field is typed and bounded; a 422 names the field. No behaviour here beyond validation.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from chronoforce.domain.errors import (
    CarrierAccountError,
    ChronoforceError,
    ConflictError,
    NotFoundError,
    PermanentError,
    SlotError,
    SlotExpiredError,
    SlotTakenError,
    TransientError,
)

# A Salesforce record id: 15 or 18 letters and digits (checked again by salesforce/soql.py).
SfId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$", examples=["801000000000001AAA"])
]
# Free text that goes into XML to Chronopost: printable characters only.
TEXT = r"^[^\x00-\x1f\x7f]*$"
# Money as a JSON number (Apex deserializes it into Decimal); exact to the cent in Python.
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiErrorBody(BaseModel):
    """Every refusal that is not a 422: what failed, for which record and field."""

    code: str
    message: str
    record_id: str = ""
    field: str = ""
    operation: str = ""


class ApiError(Exception):
    """Raised by handlers; answered with `status` and an ApiErrorBody."""

    def __init__(
        self, status: int, code: str, message: str, *, record_id: str = "", field: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ApiErrorBody(code=code, message=message, record_id=record_id, field=field)


# --- rates -----------------------------------------------------------------------------------


class Destination(_In):
    country: str = Field("FR", pattern=r"^[A-Za-z]{2}$", description="ISO 3166 alpha-2")
    postal_code: str = Field(min_length=1, max_length=9, pattern=r"^[A-Za-z0-9 -]+$")
    city: str = Field("", max_length=50, pattern=TEXT)


class ParcelIn(_In):
    weight_kg: Decimal = Field(gt=0, le=30, max_digits=6, decimal_places=3)
    length_cm: Decimal | None = Field(None, gt=0, le=400, max_digits=6, decimal_places=1)
    width_cm: Decimal | None = Field(None, gt=0, le=400, max_digits=6, decimal_places=1)
    height_cm: Decimal | None = Field(None, gt=0, le=400, max_digits=6, decimal_places=1)


class RatesRequest(_In):
    """An order id (read from Salesforce), or an explicit destination and parcels."""

    order_id: SfId | None = None
    to: Destination | None = None
    parcels: list[ParcelIn] | None = Field(None, min_length=1, max_length=20)
    relay_point_id: str = Field("", max_length=20, pattern=r"^[A-Za-z0-9]*$")
    priority: bool = False
    saturday_delivery: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        explicit = self.to is not None or self.parcels is not None
        if self.order_id and explicit:
            raise ValueError("give either order_id or to + parcels, not both")
        if not self.order_id and (self.to is None or not self.parcels):
            raise ValueError("give order_id, or both to and parcels")
        return self


class ProductQuote(BaseModel):
    product_code: str
    product_name: str
    amount_excl_vat: Money
    amount_incl_vat: Money
    vat: Money
    eligible: bool = Field(description="the routing rules' products table lets it carry this")
    ship_date: dt.date | None = None
    promised_date: dt.date | None = None
    promised_before: str | None = Field(None, description="HH:MM on the promised date")
    note: str = ""


class ChosenProduct(BaseModel):
    product_code: str
    product_name: str
    rule: str
    reason: str


class RatesAnswer(BaseModel):
    order_id: str | None
    departure: Destination
    arrival: Destination
    parcels: int
    products: list[ProductQuote]
    chosen: ChosenProduct | None = Field(description="what the routing rules would ship with")
    routing_error: str = ""
    cached: bool = Field(description="every price came from the rate cache")
    carrier_calls: int
    quoted_at: dt.datetime


class RateChoice(_In):
    product_code: str = Field(pattern=r"^[0-9A-Za-z]{1,2}$")


class RateWritten(BaseModel):
    order_id: str
    product_code: str
    shipping_cost: Money
    includes_vat: bool


# --- relay points ----------------------------------------------------------------------------


class PointAddress(BaseModel):
    line1: str
    line2: str
    postal_code: str
    city: str
    country: str


class RelayPointOut(BaseModel):
    id: str
    name: str
    address: PointAddress
    opening_hours: list[str]
    distance_m: int | None


class RelayPointsAnswer(BaseModel):
    postal_code: str
    country: str
    points: list[RelayPointOut]


# --- pickups, returns, cancel ----------------------------------------------------------------


class PickupRequest(_In):
    date: dt.date
    # Left out: the order's shipper location's `pickup` defaults (docs/locations.md).
    ready_time: dt.time | None = Field(None, description="parcels ready from (Europe/Paris)")
    closing_time: dt.time | None = Field(None, description="premises close at (Europe/Paris)")
    instructions: str = Field("", max_length=255, pattern=TEXT)
    change: bool = Field(
        False,
        description="replace the order's booked pickups (cancelled first); without it, asking "
        "again for the same day answers the pickup booked",
    )

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.closing_time and self.ready_time and self.closing_time <= self.ready_time:
            raise ValueError("closing_time must be after ready_time")
        return self


class PickupAnswer(BaseModel):
    order_id: str
    shipment_id: int
    pickup_number: str
    pickup_date: dt.datetime | None
    skybill_numbers: list[str]
    relabeled: bool = Field(description="an earlier label without pickup was cancelled")
    booked: bool = Field(True, description="false: the day's pickup booked earlier")
    cancelled_pickups: list[str] = Field(
        default_factory=list, description="ESD numbers cancelled by this change"
    )


class ReturnRequest(_In):
    case_id: SfId | None = None
    returns_reference: str = Field("", max_length=15, pattern=r"^[A-Za-z0-9_-]*$")


class ReturnAnswer(BaseModel):
    order_id: str
    case_id: str | None
    shipment_id: int
    skybill_numbers: list[str]
    returns_reference: str
    status: str
    created: bool = Field(description="false: the order's existing return label was returned")


class CancelAnswer(BaseModel):
    shipment_id: int
    cancelled: list[str]
    status: str  # "cancelled", or "cancel_queued" until Chronopost's cancel window opens
    opens_at: dt.datetime | None = None  # when a queued cancel is sent (HTTP 202)


# --- Chrono Precise slots (issue 23) ---------------------------------------------------------


class SlotOut(BaseModel):
    code: str = Field(description="deliverySlotCode: give it back with `date` to choose")
    date: dt.date
    start: dt.time = Field(description="Europe/Paris")
    end: dt.time = Field(description="Europe/Paris")
    tariff_level: str = Field(description="price level N1 (cheapest) to N4")
    open: bool
    rank: int | None = Field(description="position among the open slots")
    closed_reason: str = Field(
        "", description="1 closed by Chronopost, 2 by the shipper, 3 full, 4 public holiday"
    )


class SlotsAnswer(BaseModel):
    order_id: str
    shipment_id: int
    mesh_code: str
    product_type: str
    rebooking: bool = Field(description="true: after a failed delivery")
    slots: list[SlotOut]


class SlotChoice(_In):
    date: dt.date
    code: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


class SlotBookedAnswer(BaseModel):
    order_id: str
    shipment_id: int
    date: dt.date
    start: dt.time
    end: dt.time
    tariff_level: str
    product_code: str
    service_code: str
    as_code: str
    rebooked: bool
    skybill_numbers: list[str]


SLOT_STATUSES = (
    (SlotTakenError, 409),  # full or closed now: choose another
    (SlotExpiredError, 409),  # search again
    (SlotError, 422),  # out of zone, no slot: a clear refusal about the address
)


def status_of(error: Exception) -> int:
    """The HTTP status of a failure: unknown 404, not now 409, the order's data 400, our
    carrier account 502, later 503 (with Retry-After)."""
    status = getattr(error, "status", None)  # ApiError, AuthError
    if isinstance(status, int):
        return status
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    for kind, code in SLOT_STATUSES:  # Chrono Precise (issue 23)
        if isinstance(error, kind):
            return code
    if isinstance(error, CarrierAccountError):
        return 502
    if isinstance(error, PermanentError):
        return 400
    if isinstance(error, TransientError):
        return 503
    return 502 if isinstance(error, ChronoforceError) else 500


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an endpoint can answer."""
    return {status: {"model": ApiErrorBody} for status in statuses}
