"""The project's product table (domain/data/chronopost_products.csv) covers every product code
of Chronopost's documents (shared/reference/chronopost/products.csv), with their facts."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from chronoforce.domain.products import Family, catalogue, product_info, spell
from chronoforce.domain.routing import DEFAULT_RULES


def _reference(reference_dir: Path) -> list[dict[str, str]]:
    with (reference_dir / "chronopost" / "products.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_documented_product_code_is_in_the_table_with_two_characters(
    reference_dir: Path,
) -> None:
    documented = {spell(row["code"]) for row in _reference(reference_dir)}
    ours = set(catalogue())
    assert documented <= ours, f"missing: {sorted(documented - ours)}"
    assert all(len(code) == 2 for code in ours)


def test_each_code_keeps_the_documented_family_weight_and_saturday(reference_dir: Path) -> None:
    for row in _reference(reference_dir):
        info = product_info(row["code"])
        assert info is not None
        assert info.family == Family(row["family"]), row["code"]
        if row["max_weight_kg"]:
            assert info.max_weight_kg == Decimal(row["max_weight_kg"]), row["code"]
        assert info.saturday == (row["saturday_allowed"] == "yes"), row["code"]


def test_relay_products_take_20_kg_and_chronofresh_needs_its_expiry_date() -> None:
    relay = [p for p in catalogue().values() if p.relay]
    assert {p.code for p in relay} >= {"86", "80", "49", "3K", "4P", "5E", "5H"}
    assert all(p.max_weight_kg == 20 for p in relay)
    assert product_info("2R").expiry_required and product_info("2S").expiry_required  # type: ignore[union-attr]
    assert not product_info("01").expiry_required  # type: ignore[union-attr]
    assert product_info("1") is product_info("01")


def test_the_default_routing_products_are_documented_codes() -> None:
    for product in DEFAULT_RULES.products:
        assert product_info(product.code) is not None, product.code
