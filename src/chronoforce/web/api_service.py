"""What the API's endpoints do, over the process's runtime: read orders, quote, write a rate back.

One `ApiService` per app, built lazily from the runtime (carrier, Salesforce, store, mapping) on
the first call, so health and webhooks serve without Salesforce credentials. It raises ApiError
or the domain's typed errors; it must never answer for an order it could not read.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chronoforce.config import Settings
from chronoforce.domain.address import normalize_party, require_sendable
from chronoforce.domain.models import LabelFormat, Parcel, Party
from chronoforce.domain.routing import RoutingFacts, RoutingRules
from chronoforce.pipeline.runtime import shipper_party
from chronoforce.salesforce.mapping import (
    MappedOrder,
    fetch_items,
    items_for,
    map_record,
    soql_for_trigger,
)
from chronoforce.salesforce.soql import record_id
from chronoforce.store.db import Store
from chronoforce.web.api_config import ApiConfig
from chronoforce.web.api_models import (
    ApiError,
    PointAddress,
    RateChoice,
    RatesAnswer,
    RatesRequest,
    RateWritten,
    RelayPointOut,
    RelayPointsAnswer,
)
from chronoforce.web.api_rates import Quoter, RateCacheTable, Route


@dataclass(frozen=True)
class OrderRead:
    record: dict[str, Any]
    order: MappedOrder


def order_facts(order: MappedOrder, recipient: Party | None = None) -> RoutingFacts:
    """Routing facts of a mapped order, as the label pipeline's preparation builds them."""
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
        override_field="Chronopost_Product__c",
        facts=facts,
    )


class ApiService:
    """The API's use cases over one runtime (shared by every request; thread-safe).

    Without a runtime given, the carrier and the store are opened on first use and the full
    runtime (Salesforce included) only when an operation needs an order: quoting a postal code
    or listing relay points needs no Salesforce credentials.
    """

    def __init__(self, settings: Settings, config: ApiConfig, runtime: Any = None) -> None:
        self.settings = settings
        self.config = config
        self._runtime = runtime if getattr(runtime, "carrier", None) is not None else None
        self._carrier: Any = None
        self._store: Store | None = None
        self._runtime_built = False
        self._lock = threading.Lock()
        self._quoter: Quoter | None = None

    # --- wiring --------------------------------------------------------------------------

    @property
    def runtime(self) -> Any:
        with self._lock:
            if self._runtime is None:
                from chronoforce.pipeline.runtime import build_runtime

                self._runtime = build_runtime(self.settings, carrier=self._carrier)
                self._runtime_built = True
            return self._runtime

    @property
    def carrier(self) -> Any:
        if self._runtime is not None:
            return self._runtime.carrier
        with self._lock:
            if self._carrier is None:
                from chronoforce.chronopost import ChronopostClient

                self._carrier = ChronopostClient.from_settings(self.settings)
            return self._carrier

    @property
    def store(self) -> Store:
        if self._runtime is not None:
            store: Store = self._runtime.store
            return store
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings.database_url)
            return self._store

    def now(self) -> dt.datetime:
        if self._runtime is not None:
            now: dt.datetime = self._runtime.now()
            return now
        return dt.datetime.now(dt.UTC)

    def _prepared(self, name: str) -> Any:
        """What the runtime's label preparation holds (rules, shipper), if there is a runtime."""
        labels = getattr(self._runtime, "labels", None)
        return getattr(getattr(labels, "prepare", None), name, None)

    @property
    def rules(self) -> RoutingRules:
        rules = self._prepared("rules")
        if isinstance(rules, RoutingRules):
            return rules
        return RoutingRules.from_mapping(self.settings.routing)

    @property
    def shipper(self) -> Party:
        shipper = self._prepared("shipper")
        return shipper if isinstance(shipper, Party) else shipper_party(self.settings)

    @property
    def label_format(self) -> LabelFormat:
        return LabelFormat(self.settings.chronopost.label_format)

    @property
    def quoter(self) -> Quoter:
        if self._quoter is None:
            self._quoter = Quoter(
                carrier=self.carrier,
                cache=RateCacheTable(self.store, self.config.rate_cache_ttl_s),
                rules=self.rules,
                band_kg=self.config.weight_band_kg,
                now=self.now,
            )
        return self._quoter

    def close(self) -> None:
        """Close what this service opened itself (a runtime handed in is its owner's)."""
        if self._runtime_built and self._runtime is not None:
            self._runtime.close()  # with the carrier it was given
        elif self._carrier is not None:
            self._carrier.close()
        if self._store is not None:
            self._store.dispose()

    # --- orders --------------------------------------------------------------------------

    def read_order(self, order_id: str) -> OrderRead:
        """The order as the label pipeline reads it; 404 when Salesforce does not know it."""
        runtime = self.runtime
        mapping = runtime.mapping
        select = soql_for_trigger(mapping).split(" WHERE ")[0].split(" ORDER BY ")[0]
        soql = f"{select} WHERE Id = '{record_id(order_id)}'"
        records = list(runtime.salesforce.query_iter(soql))
        if not records:
            raise ApiError(
                404,
                "ORDER_NOT_FOUND",
                f"no {mapping.trigger_object} {order_id} in Salesforce",
                record_id=order_id,
            )
        by_order = fetch_items(runtime.salesforce.query_iter, mapping, records)
        record = dict(records[0])
        order = map_record(record, items_for(record, mapping, by_order), mapping)
        return OrderRead(record, order)

    # --- rates ---------------------------------------------------------------------------

    def _departure(self) -> tuple[str, str]:
        address = self.shipper.address
        return address.country or "FR", address.postal_code

    def rates(self, request: RatesRequest) -> RatesAnswer:
        dep_country, dep_postal = self._departure()
        if request.order_id:
            read = self.read_order(request.order_id)
            # The address as the label would carry it (country codes, postal code, city).
            recipient = normalize_party(read.order.recipient, "recipient").party
            address = recipient.address
            where = Route(
                dep_country, dep_postal, address.country.upper(), address.postal_code, address.city
            )
            return self.quoter.quote(where, order_facts(read.order, recipient), read.order.sf_id)
        assert request.to is not None and request.parcels
        to = request.to
        parcels = tuple(
            Parcel(p.weight_kg, p.length_cm, p.width_cm, p.height_cm) for p in request.parcels
        )
        where = Route(dep_country, dep_postal, to.country.upper(), to.postal_code.strip(), to.city)
        facts = RoutingFacts(
            country=where.country,
            postal_code=where.postal_code,
            parcels=parcels,
            relay_point_id=request.relay_point_id,
            priority=request.priority,
            saturday_delivery=request.saturday_delivery,
        )
        return self.quoter.quote(where, facts)

    def write_rate(self, order_id: str, choice: RateChoice) -> RateWritten:
        """Quote the order (the cache usually answers), then one update of the Order record."""
        answer = self.rates(RatesRequest(order_id=order_id))
        wanted = choice.product_code.upper()
        quote = next(
            (p for p in answer.products if p.product_code.lstrip("0") == wanted.lstrip("0")), None
        )
        if quote is None:
            offered = ", ".join(p.product_code for p in answer.products) or "none"
            raise ApiError(
                400,
                "PRODUCT_NOT_OFFERED",
                f"Chronopost offers no product {wanted} for this order (offered: {offered})",
                record_id=order_id,
                field="product_code",
            )
        with_vat = self.config.cost_includes_vat
        cost: Decimal = quote.amount_incl_vat if with_vat else quote.amount_excl_vat
        runtime = self.runtime
        sobject = runtime.mapping.trigger_object
        fields: dict[str, Any] = {"Id": order_id, "Chronopost_Product__c": quote.product_code}
        fields["Chronopost_Shipping_Cost__c"] = float(cost)
        [result] = runtime.salesforce.collection("update", sobject, [fields])
        error = result.error(order_id, "api.rate")
        if error is not None:
            raise error
        return RateWritten(
            order_id=order_id, product_code=quote.product_code, shipping_cost=cost,
            includes_vat=with_vat,
        )  # fmt: skip

    # --- relay points --------------------------------------------------------------------

    def relay_points(
        self, postal_code: str | None, country: str, city: str, near_order: str | None, limit: int
    ) -> RelayPointsAnswer:
        if near_order:
            order = self.read_order(near_order).order
            address = require_sendable(order.recipient, "recipient").address  # issue 20
            postal_code, country, city = address.postal_code, address.country, address.city
        if not postal_code:
            raise ApiError(
                400,
                "POSTAL_CODE_MISSING",
                f"order {near_order} has no shipping postal code",
                record_id=near_order or "",
                field="postal_code",
            )
        points = self.carrier.relay_points(postal_code, country.upper(), city, limit=limit)
        return RelayPointsAnswer(
            postal_code=postal_code,
            country=country.upper(),
            points=[
                RelayPointOut(
                    id=p.id,
                    name=p.name,
                    address=PointAddress(
                        line1=p.address.line1,
                        line2=p.address.line2,
                        postal_code=p.address.postal_code,
                        city=p.address.city,
                        country=p.address.country,
                    ),
                    opening_hours=list(p.opening_hours),
                    distance_m=p.distance_m,
                )
                for p in points
            ],
        )
