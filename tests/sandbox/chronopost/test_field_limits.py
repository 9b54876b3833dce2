"""The sandbox's field limits cover every limit of Chronopost's shipping request (the reference
field_limits.csv, from [D] §2.3.2 and [S] §3.12.4): each field, the same number of characters."""

from __future__ import annotations

import csv
from pathlib import Path

from chronoforce.sandbox.chronopost.tables import (
    MAX_LENGTHS,
    OTHER_MAX_LENGTHS,
    REF_MAX_LENGTHS,
    SKYBILL_MAX_LENGTHS,
)

PARTIES = {"shipperValue": "shipper", "customerValue": "customer", "recipientValue": "recipient"}
SHIPPING_GROUPS = {
    *PARTIES,
    "headerValue",
    "refValue",
    "skybillValue",
    "skybillParamsValue",
    "shippingMultiParcelV4 (root variables)",
}


def shipping_limits(reference_dir: Path) -> list[tuple[str, str, int]]:
    with (reference_dir / "chronopost" / "field_limits.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        (row["group"], row["field"], int(row["max_length"]))
        for row in rows
        if row["group"] in SHIPPING_GROUPS and row["max_length"].isdigit()
    ]


def sandbox_limit(group: str, field: str) -> int | None:
    prefix = PARTIES.get(group)
    if prefix is not None and field.startswith(prefix):
        suffix = field.removeprefix(prefix)
        if suffix in MAX_LENGTHS:
            return MAX_LENGTHS[suffix]
    for table in (REF_MAX_LENGTHS, SKYBILL_MAX_LENGTHS, OTHER_MAX_LENGTHS):
        if field in table:
            return table[field]
    return None


def test_every_documented_length_of_the_shipping_request_is_in_the_sandbox_tables(
    reference_dir: Path,
) -> None:
    limits = shipping_limits(reference_dir)
    assert len(limits) > 60
    wrong = [(g, f, n, sandbox_limit(g, f)) for g, f, n in limits if sandbox_limit(g, f) != n]
    assert wrong == []


def test_the_e_mail_limit_is_the_documented_80_characters(reference_dir: Path) -> None:
    emails = {n for _, f, n in shipping_limits(reference_dir) if f.endswith("Email")}
    assert emails == {80} and MAX_LENGTHS["Email"] == 80
