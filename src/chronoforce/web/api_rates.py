"""Live rates for a destination and parcels: Chronopost's prices, our dates, the routing choice.

Prices come from calculateProducts, one call per (route, weight band, day), kept in the shared
`rate_cache` table for the configured TTL so a repeated question costs no carrier call. Dates
and the chosen product come from domain/routing.py. It must never invent a price Chronopost did
not give, and never write to Salesforce.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from chronoforce.domain.errors import RoutingError
from chronoforce.domain.models import Parcel, Rate
from chronoforce.domain.routing import RoutingDecision, RoutingFacts, RoutingRules, route
from chronoforce.store.db import Store
from chronoforce.store.models import RateCache
from chronoforce.web.api_models import ChosenProduct, Destination, ProductQuote, RatesAnswer


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

    def prices(self, where: Route, parcels: Sequence[Parcel]) -> tuple[dict[str, Rate], int]:
        """Summed prices per product offered for every parcel, and the carrier calls it took."""
        now = self.now()
        day = now.astimezone(self.rules.zone).date()
        totals: dict[str, Rate] = {}
        calls = 0
        for index, parcel in enumerate(parcels):
            band = band_of(parcel.weight_kg, self.band_kg)
            key = f"{where.key()}|{band}|{day.isoformat()}"
            rates = self.cache.get(key, now)
            if rates is None:
                calls += 1
                rates = list(
                    self.carrier.calculate_products(
                        where.departure_postal_code,
                        where.postal_code,
                        Parcel(weight_kg=band),
                        departure_country=where.departure_country,
                        arrival_country=where.country,
                        arrival_city=where.city,
                        ship_date=day,
                    )
                )
                self.cache.put(key, rates, now)
            offered = {r.product_code: r for r in rates}
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

    def quote(self, where: Route, facts: RoutingFacts, order_id: str | None = None) -> RatesAnswer:
        prices, calls = self.prices(where, facts.parcels)
        now = self.now()
        products = [self._product(rate, facts, now) for rate in prices.values()]
        products.sort(key=lambda p: (not p.eligible, p.amount_excl_vat))
        chosen, problem = None, ""
        try:
            decision = route(facts, now, self.rules)
            chosen = ChosenProduct(
                product_code=decision.product_code,
                product_name=decision.product_name,
                rule=decision.rule_name,
                reason=decision.reason,
            )
        except RoutingError as exc:
            problem = exc.message
        return RatesAnswer(
            order_id=order_id,
            departure=Destination(
                country=where.departure_country, postal_code=where.departure_postal_code
            ),
            arrival=Destination(
                country=where.country, postal_code=where.postal_code, city=where.city
            ),
            parcels=len(facts.parcels),
            products=products,
            chosen=chosen,
            routing_error=problem,
            cached=calls == 0,
            carrier_calls=calls,
            quoted_at=now,
        )

    def _product(self, rate: Rate, facts: RoutingFacts, now: dt.datetime) -> ProductQuote:
        known = self.rules.product(rate.product_code)
        quote = ProductQuote(
            product_code=rate.product_code,
            product_name=known.name if known else "",
            amount_excl_vat=rate.amount_excl_vat,
            amount_incl_vat=rate.amount_incl_vat,
            vat=rate.vat,
            eligible=False,
        )
        if known is None:
            return quote.model_copy(update={"note": "not in the routing rules' product table"})
        try:
            decision: RoutingDecision = route(
                replace(facts, product_override=known.code, override_field="quote"), now, self.rules
            )
        except RoutingError as exc:
            return quote.model_copy(update={"note": exc.message})
        before = decision.promised_before
        return quote.model_copy(
            update={
                "eligible": True,
                "ship_date": decision.ship_date,
                "promised_date": decision.promised_date,
                "promised_before": before.strftime("%H:%M") if before else None,
            }
        )
