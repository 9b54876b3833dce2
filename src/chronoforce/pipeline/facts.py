"""The routing facts of a mapped order: the one builder labels, rates and returns share.

What `domain/routing.py` decides on (destination, parcels, value, relay point, wishes) read from
a `MappedOrder` and the recipient as the label will carry it. Pure: no I/O.
"""

from __future__ import annotations

from chronoforce.domain.models import Party
from chronoforce.domain.routing import RoutingFacts
from chronoforce.salesforce.fields import PRODUCT
from chronoforce.salesforce.mapping import MappedOrder

OVERRIDE_FIELD = PRODUCT.api  # where an order asks for a product


def order_facts(order: MappedOrder, recipient: Party | None = None) -> RoutingFacts:
    """Routing facts of `order`, sent to `recipient` (the normalized one; default the order's)."""
    address = (recipient or order.recipient).address
    facts = order.facts
    return RoutingFacts(
        country=address.country,
        postal_code=address.postal_code,
        parcels=order.parcels,
        order_value=facts.get("order_value"),
        relay_point_id=order.relay_point_id,
        priority=bool(facts.get("priority")),
        customer_tier=str(facts.get("customer_tier") or ""),
        saturday_delivery=order.saturday,
        product_override=order.product_override,
        override_field=OVERRIDE_FIELD,
        facts=facts,
    )
