"""Chronopost's product catalogue: what each product code is (family, reach, weight, Saturday,
Chronofresh expiry), read from `data/chronopost_products.csv`, the one table of product codes.

Pure lookups. Routing (which product ships an order) lives in routing.py and may only pick
codes known here; the request builder asks this table which rules of a family apply. It must
never guess a product: an unknown code is None, for the caller to refuse.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = [
    "DOMESTIC_COUNTRIES",
    "MAX_PARCEL_WEIGHT_KG",
    "Family",
    "ProductInfo",
    "catalogue",
    "family_of",
    "is_international",
    "product_info",
    "spell",
]


class Family(StrEnum):
    """Product groups of the Chronopost documents ([D] §3.1-§3.6; [S] Annexe 8)."""

    HOME = "home"
    RELAY = "relay"
    INTERNATIONAL = "international"
    RETURN = "return"
    FRESH = "fresh"
    SAMEDAY = "sameday"
    OTHER = "other"


MAX_PARCEL_WEIGHT_KG = Decimal(30)  # Chronopost's parcel limit (reference NOTES.md, products)
# Destinations inside the French network: no customs, Saturday possible. Monaco is served by
# French postcodes (980xx); overseas departments carry their own ISO codes (RE, GP…) and are
# treated as abroad for customs contents ([D] §2.3.2.b3-b5: XCountry).
DOMESTIC_COUNTRIES = frozenset({"FR", "MC"})


@dataclass(frozen=True, slots=True)
class ProductInfo:
    code: str  # always 2 characters
    name: str
    family: Family
    international: bool | None  # None: the documents do not say
    max_weight_kg: Decimal
    saturday: bool  # service 6 allowed (in France only)
    expiry_required: bool  # Chronofresh: scheduledValue/expirationDate mandatory
    source: str

    @property
    def relay(self) -> bool:
        return self.family is Family.RELAY

    @property
    def is_return(self) -> bool:
        return self.family is Family.RETURN


def spell(code: str) -> str:
    """A product code as the shipping service takes it: 2 characters ("1" → "01")."""
    text = str(code).strip().upper()
    return text.zfill(2) if len(text) == 1 else text  # "" stays "" for the caller to refuse


def _row(row: dict[str, str]) -> ProductInfo:
    weight = row["max_weight_kg"].strip()
    return ProductInfo(
        code=row["code"],
        name=row["name"],
        family=Family(row["family"]),
        international={"yes": True, "no": False}.get(row["international"]),
        max_weight_kg=Decimal(weight) if weight else MAX_PARCEL_WEIGHT_KG,
        saturday=row["saturday"] == "yes",
        expiry_required=row["expiry_required"] == "yes",
        source=row["source"],
    )


@cache
def catalogue() -> dict[str, ProductInfo]:
    """Every product code of the documents, by its 2-character code."""
    text = (resources.files("chronoforce.domain") / "data" / "chronopost_products.csv").read_text(
        encoding="utf-8"
    )
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {info.code: info for info in map(_row, rows)}


def product_info(code: str) -> ProductInfo | None:
    return catalogue().get(spell(code))


def family_of(code: str) -> str:
    """The product's family name (home, relay, international…), "" when the code is unknown."""
    info = product_info(code)
    return info.family.value if info is not None else ""


def is_international(country: str) -> bool:
    """A destination outside the French network: contents and customs value go with it."""
    return country.strip().upper() not in DOMESTIC_COUNTRIES
