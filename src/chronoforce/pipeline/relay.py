"""A relay shipment's recipient is the chosen relay point: find its name and address.

Chronopost wants the point's name and address as the label's recipient and the customer as the
person who collects ([D] §3.2). The point is looked up with the documented search around the
customer's address; a point it cannot find is an exception naming the Salesforce field, never a
guess. Transient carrier errors propagate, so the shipment is retried.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from chronoforce.domain.errors import RoutingError
from chronoforce.domain.models import Address, RelayPoint, ShipmentRequest
from chronoforce.domain.products import product_info

RELAY_FIELD = "Chronopost_Relay_Point_Id__c"

# (point id, near this address, heaviest parcel kg, product code, ship date) → point or None
RelayLookup = Callable[[str, Address, Decimal, str, dt.date], RelayPoint | None]


def family_of(product_code: str) -> str:
    """The product's family name (home, relay, international…), "" when unknown."""
    info = product_info(product_code)
    return info.family.value if info is not None else ""


def relay_lookup(carrier: Any) -> RelayLookup | None:
    """The carrier's relay point search as a RelayLookup (None for a carrier without one)."""
    find = getattr(carrier, "relay_point", None)
    if find is None:
        return None

    def lookup(
        point_id: str, near: Address, weight: Decimal, product: str, day: dt.date
    ) -> RelayPoint | None:
        point: RelayPoint | None = find(
            point_id, near, weight_kg=weight, product_code=product, ship_date=day
        )
        return point

    return lookup


def with_relay_point(
    request: ShipmentRequest, lookup: RelayLookup, record_id: str
) -> ShipmentRequest:
    """`request` with its relay point's name and address, or a RoutingError naming the field."""
    point_id = request.options.relay_point_id
    near = request.recipient.address
    heaviest = max((p.weight_kg for p in request.parcels), default=Decimal(1))
    point = lookup(point_id, near, heaviest, request.product_code, request.ship_date)
    if point is None:
        raise RoutingError(
            f"relay point {point_id} is not among the Chronopost relay points near "
            f"{near.postal_code} {near.city} ({near.country}) that take {heaviest} kg",
            code="RELAY_POINT_NOT_FOUND",
            record_id=record_id,
            field=RELAY_FIELD,
        )
    options = dataclasses.replace(request.options, relay_point=point)
    return dataclasses.replace(request, options=options)
