"""The label operations of the API as functions over an ApiService, for `chronoforce api` (cli).

The use cases live in pipeline/ (returns.py, cancel.py, pickups.py) and ApiService wires them;
these names stay only while the CLI calls them so. Nothing here but delegation.
"""

from __future__ import annotations

from chronoforce.web.api_models import (
    CancelAnswer,
    PickupAnswer,
    PickupRequest,
    ReturnAnswer,
    ReturnRequest,
)
from chronoforce.web.api_service import ApiService


def book_pickup(service: ApiService, order_id: str, ask: PickupRequest) -> PickupAnswer:
    return service.book_pickup(order_id, ask)


def return_label(service: ApiService, order_id: str, ask: ReturnRequest) -> ReturnAnswer:
    return service.return_label(order_id, ask)


def cancel(service: ApiService, shipment_id: int) -> CancelAnswer:
    return service.cancel(shipment_id)


def cancel_order(service: ApiService, order_id: str, intent: str) -> CancelAnswer:
    return service.cancel_order(order_id, intent)
