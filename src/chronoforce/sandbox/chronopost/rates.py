"""Rates service of the sandbox: quickCost and calculateProducts from a price table file.

Prices come from data/prices.csv (by product, zone and weight band, before VAT). It must never
pretend to be Chronopost's tariff: the numbers are made up.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.tables import (
    BAD_CREDENTIALS,
    EU_COUNTRIES,
    INSURANCE_CEILING,
    INSURANCE_RATE,
    INVALID_DEPARTMENTS,
    PRODUCT_ALIASES,
    PRODUCTS,
    RATE_BAD_WEIGHT,
    RATE_BAD_ZIP,
    RATE_NO_PRODUCT,
    RATE_SPELLING,
    VAT_RATE,
)

Band = tuple[float, float]  # (max_kg, price before VAT)


@cache
def price_table() -> dict[tuple[str, str], list[Band]]:
    text = (resources.files("chronoforce.sandbox.chronopost") / "data" / "prices.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    table: dict[tuple[str, str], list[Band]] = {}
    for row in rows:
        key = (row["product"], row["zone"])
        table.setdefault(key, []).append((float(row["max_kg"]), float(row["price_ht"])))
    for bands in table.values():
        bands.sort()
    return table


def price(product: str, zone: str, weight: float) -> float | None:
    """Price before VAT of the first weight band holding `weight`, or None when not offered."""
    for max_kg, amount in price_table().get((product, zone), []):
        if weight <= max_kg:
            return amount
    return None


def _zone(country: str, zip_code: str) -> str:
    country = country.upper()
    if country == "FR":
        if not re.fullmatch(r"\d{5}", zip_code) or zip_code[:2] in INVALID_DEPARTMENTS:
            raise BusinessError.of(RATE_BAD_ZIP)
        return "CORSE" if zip_code.startswith("20") else "FR"
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise BusinessError.of(RATE_BAD_ZIP)
    return "EU" if country in EU_COUNTRIES else "WORLD"


def _weight(raw: str | None) -> float:
    try:
        weight = float((raw or "").strip().replace(",", "."))
    except ValueError as exc:
        raise BusinessError.of(RATE_BAD_WEIGHT) from exc
    if not 0 < weight <= 30:
        raise BusinessError.of(RATE_BAD_WEIGHT)
    return weight


def _amounts(amount: float) -> list[tuple[str, float]]:
    vat = round(amount * VAT_RATE, 2)
    return [("amount", amount), ("amountTTC", round(amount + vat, 2)), ("amountTVA", vat)]


def _authenticate(ctx: Context, op: etree._Element) -> None:
    if ctx.authenticate(op.findtext("accountNumber"), op.findtext("password")) is None:
        raise BusinessError.of(BAD_CREDENTIALS)


def quick_cost(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Price of one product between two postal codes (arrCode may be a country code abroad)."""
    _authenticate(ctx, op)
    _zone("FR", (op.findtext("depCode") or "").strip())
    arrival = (op.findtext("arrCode") or "").strip()
    zone = _zone("FR", arrival) if arrival[:1].isdigit() else _zone(arrival, "")
    weight = _weight(op.findtext("weight"))
    code = (op.findtext("productCode") or "").strip()
    product = PRODUCT_ALIASES.get(code, code)
    amount = price(product, zone, weight) if product in PRODUCTS else None
    if amount is None:
        raise BusinessError.of(RATE_NO_PRODUCT)
    add_all(result, [*_amounts(amount), ("errorCode", 0), ("zone", zone)])
    assurance = add(result, "assurance")
    add_all(assurance, [("plafond", INSURANCE_CEILING), ("taux", INSURANCE_RATE)])


def calculate_products(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Every product offered for the route and weight, with its price."""
    _authenticate(ctx, op)
    departure = (op.findtext("depCountryCode") or "FR").strip().upper()
    _zone(departure, (op.findtext("depZipCode") or "").strip())
    zone = _zone(
        (op.findtext("arrCountryCode") or "FR").strip(), (op.findtext("arrZipCode") or "").strip()
    )
    weight = _weight(op.findtext("weight"))
    add(result, "errorCode", 0)
    # Only the products open on the route come back ([D] §2.7.3). Unconfirmed, the sandbox's
    # reading: a French contract opens none from a departure outside France and Monaco.
    if departure not in ("FR", "MC"):
        return
    for code in PRODUCTS:
        amount = price(code, zone, weight)
        if amount is not None:
            entry = add(result, "productList")
            # Chronopost answers "1" for Chrono 13 here ([S] §3.2.4), not the shipping "01".
            add_all(entry, [*_amounts(amount), ("productCode", RATE_SPELLING.get(code, code))])
