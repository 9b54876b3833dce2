"""Preparation: a shipment row becomes the carrier request (`ShipmentRequest`) of its label.

The stored record is mapped (`salesforce/mapping.py`), the recipient's address normalized and
checked (`domain/address.py`), the product routed (`domain/routing.py`); the record is read again
from Salesforce first when a retry asked for it (`reread_at`), so a fix made there is what the
retried label uses. The label use case (`labels.py`) calls it; it never calls the carrier.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chronoforce.config import Settings
from chronoforce.domain.address import require_sendable
from chronoforce.domain.models import (
    Address,
    Civility,
    Contact,
    LabelFormat,
    Party,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.products import family_of
from chronoforce.domain.routing import RoutingFacts, RoutingRules, route
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.labels import Prepared
from chronoforce.pipeline.locations import Locations, routed_product
from chronoforce.salesforce.mapping import MappedOrder, MappingConfig, map_record
from chronoforce.store.models import Shipment


def shipper_party(settings: Settings) -> Party:
    s = settings.chronopost.shipper
    party = Party(
        Address(s.name, s.name2, s.line1, s.line2, s.postal_code, s.city, s.country),
        Contact(s.contact_name, Civility(s.civility), s.phone, "", s.email),
    )
    # The warehouse is where pickups come: the same checks as any recipient (issue 20).
    return require_sendable(party, "shipper")


@dataclass
class Preparation:
    """Shipment row → ShipmentRequest: map the stored record, check the address, route."""

    mapping: MappingConfig
    rules: RoutingRules
    shipper: Party
    label_format: LabelFormat
    now: Callable[[], dt.datetime]
    # Reads the record again and stores it (Runtime.refresh_source); None: the stored copy only.
    reread: Callable[[Shipment], dict[str, Any]] | None = None
    locations: Locations | None = None  # where it leaves from (issue 23); None: `shipper` always
    # The product the label carries when routing does not decide it (a confirmed Chrono Precise
    # slot's, labels.py): what a location rule's `products:` sees then. Asked only by such a rule.
    fixed_product: Callable[[Shipment], str | None] | None = None

    def __call__(self, shipment: Shipment) -> Prepared:
        if shipment.reread_at is not None and self.reread is not None:
            shipment.source = self.reread(shipment)
        source = shipment.source or {}
        order = map_record(source.get("record", {}), source.get("items", []), self.mapping)
        recipient = require_sendable(order.recipient, "recipient")
        facts = self._facts(order, recipient)
        rules, shipper, location, why = self.rules, self.shipper, "", ""
        if self.locations is not None:  # the order's shipper location (issue 23)
            # The label makes the choice (a retry chooses again, so a fixed field counts).
            routed, fixed = routed_product(facts, self.now(), self.rules), self.fixed_product
            choice = self.locations.choose_for(
                source.get("record", {}), facts, lambda: (fixed and fixed(shipment)) or routed()
            )
            rules = self.locations.routing(choice.site, self.rules)
            shipper, location, why = choice.site.party(), choice.key, choice.reason
        decision = route(facts, self.now(), rules)
        request = ShipmentRequest(
            shipper=shipper,
            recipient=recipient,
            parcels=order.parcels,
            product_code=decision.product_code,
            ship_date=decision.ship_date,
            references=order.references,
            options=ShipmentOptions(
                saturday_delivery=decision.options.saturday_delivery,
                relay_point_id=decision.options.relay_point_id,
                label_format=self.label_format,
                insured_value=order.insured_value,
                declared_value=order.declared_value,
                contents=order.contents_or_default(self.mapping, family_of(decision.product_code)),
            ),
            location=location,
        )
        return Prepared(
            request=request, reason=decision.reason, location=location, location_reason=why
        )

    def _facts(self, order: MappedOrder, recipient: Party) -> RoutingFacts:
        return order_facts(order, recipient)  # the one builder, shared with rates and returns
