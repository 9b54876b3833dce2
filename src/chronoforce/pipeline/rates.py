"""The rates use cases: live prices for a route and parcels, and writing a choice to the order.

Prices come from calculateProducts through the shared gates, one call per (route, weight band,
day), kept in the shared `rate_cache` table for the configured TTL so a repeated question costs
no carrier call. Dates and the chosen product come from domain/routing.py, and the product
chosen is always one Chronopost quoted for the route: when the rules pick another, the cheapest
quoted product the rules allow is chosen and the reason says so, or the refusal says why none
fits. It never invents a price Chronopost did not give; only `RateWriter` writes to Salesforce.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from chronoforce.domain.errors import CarrierValidationError, RoutingError
from chronoforce.domain.models import Parcel, Rate
from chronoforce.domain.routing import RoutingDecision, RoutingFacts, RoutingRules, route
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.locations import Locations, Site, routed_product
from chronoforce.salesforce.fields import PRODUCT, SHIPPING_COST
from chronoforce.store.db import Store
from chronoforce.store.models import RateCache


@dataclass(frozen=True)
class Place:
    country: str
    postal_code: str
    city: str = ""


@dataclass(frozen=True)
class ProductQuote:
    """One product Chronopost quoted: its price and what the routing rules say of it."""

    product_code: str
    product_name: str
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal
    vat: Decimal
    eligible: bool  # the routing rules' products table lets it carry this
    ship_date: dt.date | None = None
    promised_date: dt.date | None = None
    promised_before: str | None = None  # HH:MM on the promised date
    note: str = ""
    location: str = ""  # the shipper location it was priced from (issue 23); "" = no locations


@dataclass(frozen=True)
class ChosenProduct:
    product_code: str
    product_name: str
    rule: str
    reason: str


@dataclass(frozen=True)
class Quote:
    order_id: str | None
    departure: Place
    arrival: Place
    parcels: int
    products: list[ProductQuote]
    chosen: ChosenProduct | None  # what chronoforce would ship with (always a quoted product)
    routing_error: str
    cached: bool  # every price came from the rate cache
    carrier_calls: int
    quoted_at: dt.datetime


def product_key(code: str) -> str:
    """Chronopost's product codes are 2 characters; calculateProducts may answer "1" for "01"."""
    return code.zfill(2) if code.isdigit() and len(code) == 1 else code


@dataclass(frozen=True)
class Route:
    departure_country: str
    departure_postal_code: str
    country: str
    postal_code: str
    city: str = ""

    def key(self) -> str:
        return (
            f"{self.departure_country}{self.departure_postal_code}>"
            f"{self.country}{self.postal_code}:{self.city.upper()}"
        )


def band_of(weight_kg: Decimal, band_kg: float) -> Decimal:
    """The top of the weight band holding `weight_kg` (never above 30 kg, Chronopost's max)."""
    band = Decimal(str(band_kg))
    top = Decimal(math.ceil(weight_kg / band)) * band
    return min(max(top, band), Decimal(30)).normalize()


class RateCacheTable:
    """calculateProducts answers by key in the database, so every process shares them."""

    def __init__(self, store: Store, ttl_s: int) -> None:
        self.store, self.ttl_s = store, ttl_s

    def get(self, key: str, now: dt.datetime) -> list[Rate] | None:
        if self.ttl_s <= 0:
            return None
        with self.store.session() as session:
            row = session.get(RateCache, key)
            if row is None:
                return None
            expires = row.expires_at
            if (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)) <= now:
                return None
            return [_rate(item) for item in row.payload.get("rates", [])]

    def put(self, key: str, rates: Sequence[Rate], now: dt.datetime) -> None:
        if self.ttl_s <= 0:
            return
        values = {
            "key": key,
            "payload": {"rates": [_plain(r) for r in rates]},
            "expires_at": now + dt.timedelta(seconds=self.ttl_s),
            "created_at": now,
        }
        with self.store.session() as session:
            insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
            statement = insert(RateCache).values(values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"],
                    set_={
                        k: statement.excluded[k] for k in ("payload", "expires_at", "created_at")
                    },
                )
            )


def _plain(rate: Rate) -> dict[str, str]:
    return {
        "product_code": rate.product_code,
        "amount_excl_vat": str(rate.amount_excl_vat),
        "amount_incl_vat": str(rate.amount_incl_vat),
        "vat": str(rate.vat),
    }


def _rate(item: dict[str, Any]) -> Rate:
    return Rate(
        product_code=str(item["product_code"]),
        amount_excl_vat=Decimal(item["amount_excl_vat"]),
        amount_incl_vat=Decimal(item["amount_incl_vat"]),
        vat=Decimal(item["vat"]),
    )


@dataclass
class Quoter:
    """Rates for a route and parcels; `carrier` is a ChronopostClient (or anything alike)."""

    carrier: Any
    cache: RateCacheTable
    rules: RoutingRules
    band_kg: float
    now: Callable[[], dt.datetime]
    gates: Gates = field(default_factory=Gates)

    def prices(
        self, where: Route, parcels: Sequence[Parcel], location: str = ""
    ) -> tuple[dict[str, Rate], int]:
        """Summed prices per product offered for every parcel, and the carrier calls it took
        (under the contract of the shipper `location`, issue 23; "" = the main account)."""
        now = self.now()
        day = now.astimezone(self.rules.zone).date()
        totals: dict[str, Rate] = {}
        calls = 0
        contract = {"location": location} if location else {}
        for index, parcel in enumerate(parcels):
            band = band_of(parcel.weight_kg, self.band_kg)
            key = f"{where.key()}|{band}|{day.isoformat()}" + (f"|{location}" if location else "")
            rates = self.cache.get(key, now)
            if rates is None:
                calls += 1
                ask = partial(
                    self.carrier.calculate_products,
                    where.departure_postal_code,
                    where.postal_code,
                    Parcel(weight_kg=band),
                    departure_country=where.departure_country,
                    arrival_country=where.country,
                    arrival_city=where.city,
                    ship_date=day,
                    **contract,
                )
                rates = list(self.gates.call(ask))
                self.cache.put(key, rates, now)
            offered = {product_key(r.product_code): r for r in rates}
            if index == 0:
                totals = offered
                continue
            totals = {
                code: replace(
                    total,
                    amount_excl_vat=total.amount_excl_vat + offered[code].amount_excl_vat,
                    amount_incl_vat=total.amount_incl_vat + offered[code].amount_incl_vat,
                    vat=total.vat + offered[code].vat,
                )
                for code, total in totals.items()
                if code in offered
            }
        return totals, calls

    def quote(
        self,
        where: Route,
        facts: RoutingFacts,
        order_id: str | None = None,
        *,
        rules: RoutingRules | None = None,
        location: str = "",
    ) -> Quote:
        """`rules`: the shipper location's (its cut-offs and holidays, issue 23), else ours."""
        prices, calls = self.prices(where, facts.parcels, location)
        now = self.now()
        rules = rules or self.rules
        products = [self._product(rate, facts, now, rules) for rate in prices.values()]
        products.sort(key=lambda p: (not p.eligible, p.amount_excl_vat))
        chosen, problem = None, ""
        try:
            decision = route(facts, now, rules)
            chosen = ChosenProduct(
                product_code=decision.product_code,
                product_name=decision.product_name,
                rule=decision.rule_name,
                reason=decision.reason,
            )
        except RoutingError as exc:
            problem = exc.message
        if chosen is not None and product_key(chosen.product_code) not in prices:
            chosen, problem = self._quoted_instead(chosen, products, where)
        return Quote(
            order_id=order_id,
            departure=Place(where.departure_country, where.departure_postal_code),
            arrival=Place(where.country, where.postal_code, where.city),
            parcels=len(facts.parcels),
            products=products,
            chosen=chosen,
            routing_error=problem,
            cached=calls == 0,
            carrier_calls=calls,
            quoted_at=now,
        )

    def quote_located(
        self,
        locations: Locations,
        record: Mapping[str, Any],
        facts: RoutingFacts,
        to: Place,
        order_id: str | None = None,
        *,
        stored: Any = None,
    ) -> Quote:
        """An order's rates from its shipper locations (issue 23), chosen as the label does.

        The departure, the chosen product and every price come from where the label would be
        made (the routed product's location); a product a `products:` rule sends elsewhere is
        priced from that location instead (one more call per such location, cached like any
        other) and its note says so. An order whose label is made (`stored`, its outbound row
        with a location) is priced from there for every product: the parcel is already there."""
        label = locations.choose_for(
            record, facts, routed_product(facts, self.now(), self.rules), stored=stored
        )
        quotes: dict[str, Quote] = {}

        def quote_from(site: Site) -> Quote:
            if site.key not in quotes:
                home = site.party().address
                where = Route(
                    home.country or "FR", home.postal_code, to.country, to.postal_code, to.city
                )
                quotes[site.key] = self.quote(
                    where, facts, order_id, rules=locations.routing(site, self.rules),
                    location=site.key,
                )  # fmt: skip
            return quotes[site.key]

        base = quote_from(label.site)
        products: list[ProductQuote] = []
        for product in base.products:
            here = replace(product, location=label.key)
            if label.stored:
                products.append(here)
                continue
            choice = locations.choose_for(record, facts, product.product_code)
            if choice.key == label.key:
                products.append(here)
                continue
            there = quote_from(choice.site)
            code = product.product_code
            found = next((p for p in there.products if p.product_code == code), None)
            why = f"priced from location {choice.key} ({choice.reason})"
            if found is None:
                products.append(
                    replace(here, eligible=False, location=choice.key,
                            note=f"{why}, where Chronopost does not offer it")
                )  # fmt: skip
                continue
            note = f"{why}; {found.note}" if found.note else why
            products.append(replace(found, location=choice.key, note=note))
        products.sort(key=lambda p: (not p.eligible, p.amount_excl_vat))
        calls = sum(q.carrier_calls for q in quotes.values())
        return replace(base, products=products, carrier_calls=calls, cached=calls == 0)

    @staticmethod
    def _quoted_instead(
        picked: ChosenProduct, products: list[ProductQuote], where: Route
    ) -> tuple[ChosenProduct | None, str]:
        """The rules picked a product Chronopost does not quote for the route: the cheapest
        quoted one the rules allow instead, or no choice and why."""
        offered = ", ".join(p.product_code for p in products) or "none"
        allowed = [p for p in products if p.eligible]
        if not allowed:
            return None, (
                f"the routing rules pick {picked.product_code} ({picked.product_name}), which "
                f"Chronopost does not offer to {where.country} {where.postal_code} (offered: "
                f"{offered}); none of those fits the routing rules"
            )
        best = allowed[0]  # products are sorted eligible first, then by price
        return (
            ChosenProduct(
                product_code=best.product_code,
                product_name=best.product_name,
                rule="quoted",
                reason=(
                    f"the routing rules pick {picked.product_code}, which Chronopost does not "
                    f"offer to {where.country} {where.postal_code} (offered: {offered}): "
                    f"{best.product_code} is the cheapest offered product the rules allow"
                ),
            ),
            "",
        )

    def _product(
        self, rate: Rate, facts: RoutingFacts, now: dt.datetime, rules: RoutingRules
    ) -> ProductQuote:
        known = rules.product(rate.product_code)
        quote = ProductQuote(
            product_code=product_key(rate.product_code),
            product_name=known.name if known else "",
            amount_excl_vat=rate.amount_excl_vat,
            amount_incl_vat=rate.amount_incl_vat,
            vat=rate.vat,
            eligible=False,
        )
        if known is None:
            return replace(quote, note="not in the routing rules' product table")
        try:
            decision: RoutingDecision = route(
                replace(facts, product_override=known.code, override_field="quote"), now, rules
            )
        except RoutingError as exc:
            return replace(quote, note=exc.message)
        before = decision.promised_before
        return replace(
            quote,
            eligible=True,
            ship_date=decision.ship_date,
            promised_date=decision.promised_date,
            promised_before=before.strftime("%H:%M") if before else None,
        )


@dataclass(frozen=True)
class RateWritten:
    order_id: str
    product_code: str
    shipping_cost: Decimal
    includes_vat: bool


@dataclass
class RateWriter:
    """The chosen product and its cost onto the order: one update through the Salesforce
    adapter, only for a product Chronopost quoted for the order."""

    salesforce: Any  # SalesforceClient (collection)
    sf_object: str
    includes_vat: bool

    def write(
        self, quote: Quote, order_id: str, product_code: str, target_id: str = ""
    ) -> RateWritten:
        """`target_id`: the Order the fields go on when the trigger is a Shipment (whose object
        has no Chronopost_Product__c / Chronopost_Shipping_Cost__c)."""
        wanted = product_key(product_code.upper())
        chosen = next((p for p in quote.products if p.product_code == wanted), None)
        if chosen is None:
            offered = ", ".join(p.product_code for p in quote.products) or "none"
            raise CarrierValidationError(
                f"Chronopost offers no product {wanted} for this order (offered: {offered})",
                code="PRODUCT_NOT_OFFERED",
                record_id=order_id,
                field="product_code",
            )
        cost = chosen.amount_incl_vat if self.includes_vat else chosen.amount_excl_vat
        target = target_id or order_id
        fields: dict[str, Any] = {
            "Id": target,
            PRODUCT.api: chosen.product_code,
            SHIPPING_COST.api: float(cost),
        }
        sobject = "Order" if target_id else self.sf_object
        [result] = self.salesforce.collection("update", sobject, [fields])
        error = result.error(order_id, "api.rate")
        if error is not None:
            raise error
        return RateWritten(order_id, chosen.product_code, cost, self.includes_vat)
