"""The return label use case: the customer sends an order back to the configured warehouse.

Built as Chronopost documents a return (SPEC-FACTS §2.5 "Returns", [D] §3.6): the consumer is the
shipper, the warehouse's return address the recipient, a return product (4R/4S/4T/4U in France,
3T from Europe) and label mode PPR; `modeRetour` says how the label reaches the customer. A
return is a `return` shipment row made by the label pipeline (same gates, same lease and
`calling` discipline, its own shipper reference `R-<order number>`), tracked like any parcel.
It never calls the carrier itself and never writes to Salesforce but through the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from chronoforce.config import ConfigError, Settings, ShipperConfig
from chronoforce.domain.address import normalize_party, require_sendable
from chronoforce.domain.errors import (
    ChronoforceError,
    ConflictError,
    MappingError,
    RoutingError,
)
from chronoforce.domain.models import (
    Address,
    Civility,
    Contact,
    LabelFormat,
    Party,
    ShipmentOptions,
    ShipmentRequest,
    ShipmentStatus,
)
from chronoforce.domain.routing import EU_COUNTRIES, is_working_day, next_working_day
from chronoforce.domain.shipment_state import LabelOutcome, ShipmentState, check_transition
from chronoforce.pipeline import writeback
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.labels import LabelPipeline, Prepared, StoredLabel, shipper_ref
from chronoforce.pipeline.locations import Locations
from chronoforce.salesforce.fields import CASE_ORDER, RETURN_TRACKING_NUMBER, RETURNS_REFERENCE
from chronoforce.salesforce.mapping import MappedOrder, MappingConfig, map_record
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment
from chronoforce.store.ops import insert_ignore

RETURN_INTENT = "return"

# Return products (products.csv, family "return"; SPEC-FACTS §2.5): the consumer drops the
# parcel at a Pickup relay point, in France for Chrono Reverse, in Europe for Chrono Retour Europe.
ReturnProduct = Literal["4R", "4S", "4T", "4U"]
DOMESTIC_RETURN_PRODUCTS = ("4R", "4S", "4T", "4U")  # Chrono Reverse 9 / 10 / 13 / 18
EUROPE_RETURN_PRODUCT = "3T"  # Chrono Retour Europe
RETURN_LABEL_MODE = LabelFormat.PPR  # "use mode=PPR" ([D] §3.6): lists drop-off relay points
DOMESTIC_COUNTRIES = ("FR", "MC")  # Monaco is inside the French postal network (980xx)


class LabelDelivery(StrEnum):
    """How the return label reaches the customer (`modeRetour`, SPEC-FACTS §2.4 and §2.5)."""

    EMAIL = "email"  # 1: Chronopost e-mails the label to the consumer (shipperEmail)
    CASE = "case"  # 2: not sent; the PDF is attached to the Case for the agent to send
    POST_OFFICE = "post_office"  # 3: printable at a post-office machine; code by SMS and e-mail

    @property
    def mode_retour(self) -> str:
        return {"email": "1", "case": "2", "post_office": "3"}[self.value]


class ReturnsConfig(BaseModel):
    """The return keys of the `api:` section (the rest of the section is the API's own)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    return_product: ReturnProduct = "4T"  # Chrono Reverse 13
    return_delivery: LabelDelivery = LabelDelivery.CASE
    return_address: ShipperConfig | None = None  # the warehouse; default chronopost.shipper


def returns_config(raw: Mapping[str, Any] | BaseModel) -> ReturnsConfig:
    """Validate the return keys of `Settings.api` (typed at load, or a mapping)."""
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
    try:
        return ReturnsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"key 'api.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid api configuration: {problems}") from exc


def party_of(config: ShipperConfig) -> Party:
    """A configured address (ours, a warehouse's) as a normalized party."""
    party = Party(
        Address(
            config.name, config.name2, config.line1, config.line2, config.postal_code,
            config.city, config.country,
        ),
        Contact(config.contact_name, Civility(config.civility), config.phone, "", config.email),
    )  # fmt: skip
    return normalize_party(party, "recipient").party


def return_product(config: ReturnsConfig, country: str) -> str:
    """The return product for a consumer in `country`, or RoutingError saying why none fits."""
    if country in DOMESTIC_COUNTRIES:
        return config.return_product
    if country in EU_COUNTRIES:
        return EUROPE_RETURN_PRODUCT
    raise RoutingError(
        f"no Chronopost return product from {country}: Chrono Reverse drops off in France, "
        "Chrono Retour Europe in the European Union",
        field="ShippingCountryCode",
    )


@dataclass
class ReturnPreparation:
    """A `return` shipment row → the request: consumer → warehouse, return product, PPR."""

    mapping: MappingConfig
    config: ReturnsConfig
    merchant: Party  # the account holder (customerValue)
    warehouse: Party  # where returns go
    now: Callable[[], dt.datetime]
    zone: str = "Europe/Paris"
    # The order's shipper location (issue 23): its address is the merchant, its return address
    # the warehouse, its contract ships the return. None: `merchant` and `warehouse` always.
    locations: Locations | None = None

    def __call__(self, shipment: Shipment) -> Prepared:
        source = shipment.source or {}
        order = map_record(source.get("record", {}), source.get("items", []), self.mapping)
        consumer = require_sendable(order.recipient, "shipper")
        self._check_contact(order, consumer)
        merchant, warehouse, location, why = self.merchant, self.warehouse, "", ""
        zone, holidays = self.zone, "FR"
        product = return_product(self.config, consumer.address.country)
        if self.locations is not None:
            # Back to where the outbound left from (its row, as `Returns` read it); without
            # one, the label's rules with the return's product.
            outbound = source.get("outbound")
            stored = SimpleNamespace(**outbound) if isinstance(outbound, dict) else None
            choice = self.locations.choose_for(
                source.get("record", {}), order_facts(order, consumer), product, stored=stored
            )
            merchant, location, why = choice.site.party(), choice.key, choice.reason
            warehouse = party_of(choice.site.return_address)
            zone = choice.site.timezone or zone
            holidays = choice.site.holiday_country or holidays
        refs = replace(
            order.references,
            returns_reference=shipment.returns_reference or order.references.returns_reference,
        )
        request = ShipmentRequest(
            shipper=consumer,
            recipient=warehouse,
            parcels=order.parcels,
            product_code=product,
            ship_date=self._ship_date(zone, holidays),
            references=refs,
            options=ShipmentOptions(
                is_return=True,
                label_format=RETURN_LABEL_MODE,
                mode_retour=self.config.return_delivery.mode_retour,
            ),
            customer=merchant,
            location=location,
        )
        reason = f"return product {product}, label {self.config.return_delivery.value}"
        return Prepared(
            request=request, reason=reason, queue=self._queue, location=location,
            location_reason=why,
        )  # fmt: skip

    def _check_contact(self, order: MappedOrder, consumer: Party) -> None:
        """Chronopost reaches the consumer by e-mail (1), or e-mail and a mobile (3)."""
        delivery = self.config.return_delivery
        contact = consumer.contact
        missing = ""
        if delivery is not LabelDelivery.CASE and not contact.email:
            missing = "e-mail"
        elif delivery is LabelDelivery.POST_OFFICE and not (contact.mobile or contact.phone):
            missing = "mobile phone"
        if missing:
            raise MappingError(
                f"a return label delivered by '{delivery.value}' needs the customer's {missing}",
                record_id=order.sf_id,
                field="email" if missing == "e-mail" else "phone",
            )

    def _ship_date(self, zone: str, holidays: str = "FR") -> dt.date:
        """Today where the return goes (the location's time zone and holidays), or the next
        working day there."""
        today = self.now().astimezone(ZoneInfo(zone)).date()
        return today if is_working_day(today, holidays) else next_working_day(today, holidays)

    def _queue(self, session: Any, stored: StoredLabel) -> None:
        """The return's Salesforce writes: numbers on the Order (and Case), the label file."""
        row, parcels = stored.row, stored.parcels
        case_id = str((row.source or {}).get("case_id") or "")
        numbers = writeback.tracking_number([p.skybill_number for p in parcels])
        # The return fields live on the Order: with a Shipment trigger, the Order it reaches
        # (source["order_id"]; Shipment has no such fields, and a real org refuses them).
        order_id = str((row.source or {}).get("order_id") or "")
        if not order_id and row.sf_object == "Order":
            order_id = row.sf_id
        rows = []
        if order_id:
            rows.append(
                writeback.outbox_row(
                    sf_object="Order",
                    operation="update",
                    sf_id=order_id,
                    shipment_id=row.id,
                    payload={
                        RETURN_TRACKING_NUMBER.api: numbers,
                        RETURNS_REFERENCE.api: row.returns_reference,
                    },
                )
            )
        if case_id:
            rows.append(
                writeback.outbox_row(
                    sf_object="Case",
                    operation="update",
                    sf_id=case_id,
                    shipment_id=row.id,
                    payload={
                        RETURN_TRACKING_NUMBER.api: numbers,
                        CASE_ORDER.api: order_id or None,
                    },
                )
            )
        # With modeRetour 2 the agent sends the PDF from the Case; with 1 or 3 Chronopost
        # reaches the customer, and the file stays on the order for reference.
        on_case = case_id and self.config.return_delivery is LabelDelivery.CASE
        rows.append(
            writeback.label_file_row(
                shipment_id=row.id,
                generation=row.generation,
                parcels=[(p.id, p.size) for p in parcels],
                label_format=parcels[0].label_format,
                title=f"Chronopost return label {row.order_number or row.sf_id}",
                name=f"chronopost-return-{parcels[0].skybill_number}",
                attach_to=[case_id, row.sf_id] if on_case else [row.sf_id],
            )
        )
        writeback.enqueue_rows(session, rows)


def returns_preparation(
    settings: Settings,
    mapping: MappingConfig,
    now: Callable[[], dt.datetime],
    locations: Locations | None = None,
) -> ReturnPreparation:
    config = returns_config(settings.api)
    return ReturnPreparation(
        mapping=mapping,
        config=config,
        merchant=party_of(settings.chronopost.shipper),
        warehouse=party_of(config.return_address or settings.chronopost.shipper),
        now=now,
        locations=locations,
    )


# --- the use case ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnLabel:
    """A return shipment and its live parcels; `created` when this ask made the label."""

    shipment_id: int
    sf_id: str
    case_id: str
    skybill_numbers: list[str]
    returns_reference: str
    status: str
    created: bool


@dataclass
class Returns:
    """One return label per order: asking again answers the existing one."""

    store: Store
    labels: LabelPipeline
    now: Callable[[], dt.datetime]

    def ask(
        self, order: MappedOrder, record: dict[str, Any], items: list[Any], *, case_id: str = "",
        returns_reference: str = "", order_id: str = "",
    ) -> ReturnLabel:  # fmt: skip
        """Record the return intent (once), then have the label pipeline make it now.

        `order_id`: the Order the return's fields are written on (Runtime.order_of: the record
        itself for an Order trigger, the Order a Shipment reaches).

        A Chronopost failure raises the pipeline's error; the row stays and the workers make
        the label as soon as it can be made (asking again then answers it)."""
        shipment_id = self._record(order, record, items, case_id, returns_reference, order_id)
        errors: list[ChronoforceError] = []
        outcome = self.labels.process(shipment_id, errors)
        made = self._answer(shipment_id, created=outcome == LabelOutcome.LABELED)
        if made is not None:
            return made
        if errors:
            raise errors[-1].with_context(record_id=order.sf_id, operation="return.create")
        raise ConflictError(
            "a return label is being made for this order; try again",
            code="SHIPMENT_BUSY",
            record_id=order.sf_id,
        )

    def _record(
        self, order: MappedOrder, record: dict[str, Any], items: list[Any], case_id: str,
        returns_reference: str, order_id: str = "",
    ) -> int:  # fmt: skip
        reference = (returns_reference or order.references.returns_reference or "")[:15]
        reference = reference or f"R{order.order_number}"[:15]
        with self.store.session() as session:  # the row first, once, whoever races us
            insert_ignore(
                session,
                Shipment,
                [
                    {
                        "sf_object": order.sf_object,
                        "sf_id": order.sf_id,
                        "intent": RETURN_INTENT,
                        "order_number": order.order_number,
                        "shipper_ref": shipper_ref(order.order_number, RETURN_INTENT, order.sf_id),
                        "state": ShipmentState.PENDING,
                        "status": ShipmentStatus.PENDING.value,
                        "source": {},
                    }
                ],
            )
        with self.store.session() as session:
            row = session.scalars(
                select(Shipment).where(
                    Shipment.sf_object == order.sf_object,
                    Shipment.sf_id == order.sf_id,
                    Shipment.intent == RETURN_INTENT,
                )
            ).one()
            if row.state in (ShipmentState.LABELED, ShipmentState.CALLING):
                return row.id  # answered as it is, or recovered by the pipeline
            source: dict[str, Any] = {
                "record": record, "items": items, "case_id": case_id, "order_id": order_id,
            }  # fmt: skip
            outbound = session.scalars(
                select(Shipment).where(
                    Shipment.sf_object == order.sf_object,
                    Shipment.sf_id == order.sf_id,
                    Shipment.intent == "outbound",
                )
            ).one_or_none()
            if outbound is not None:  # the return goes back to where it left from (issue 23)
                source["outbound"] = {
                    "id": outbound.id, "intent": "outbound", "location": outbound.location,
                    "location_reason": outbound.location_reason,
                    "generation": outbound.generation,
                }  # fmt: skip
            row.source = source
            row.returns_reference = reference
            row.customer_id = order.references.customer_id
            if row.state in (ShipmentState.EXCEPTION, ShipmentState.CANCELLED):  # a fresh try
                row.state = check_transition(row.state, ShipmentState.RETRY, record_id=row.sf_id)
                row.status = ShipmentStatus.PENDING.value
                row.attempts, row.next_attempt_at = 0, None
            return row.id

    def _answer(self, shipment_id: int, *, created: bool) -> ReturnLabel | None:
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            if row.state != ShipmentState.LABELED:
                return None
            return ReturnLabel(
                shipment_id=row.id,
                sf_id=row.sf_id,
                case_id=str((row.source or {}).get("case_id") or ""),
                skybill_numbers=[p.skybill_number for p in row.parcels if p.live],
                returns_reference=row.returns_reference or "",
                status=row.status,
                created=created,
            )
