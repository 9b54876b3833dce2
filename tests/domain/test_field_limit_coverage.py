"""domain/address.py's limits agree with Chronopost's documented lengths (the reference
field_limits.csv, [D] §2.3.2.b3-b6): every address and reference field it sends, in characters.

The table is helper `address`'s (issue 18): this file only checks it against the documents.
"""

from __future__ import annotations

import csv
from pathlib import Path

from chronoforce.domain.address import CHRONOPOST_ELEMENTS, FIELD_LIMITS

PARTIES = ("shipper", "recipient")  # the blocks address.py normalizes
REFERENCES = {"shipperRef": "shipper_ref", "recipientRef": "recipient_ref",
              "customerSkybillNumber": "parcel_ref"}  # fmt: skip


def documented(reference_dir: Path) -> dict[str, int]:
    with (reference_dir / "chronopost" / "field_limits.csv").open(encoding="utf-8") as f:
        return {
            row["field"]: int(row["max_length"])
            for row in csv.DictReader(f)
            if row["group"] in ("shipperValue", "recipientValue", "refValue")
            and row["max_length"].isdigit()
        }


def test_every_address_field_the_normalizer_limits_has_the_documented_length(
    reference_dir: Path,
) -> None:
    lengths = documented(reference_dir)
    wrong = {
        f"{role}{suffix}": (FIELD_LIMITS[ours], lengths[f"{role}{suffix}"])
        for ours, suffix in CHRONOPOST_ELEMENTS.items()
        for role in PARTIES
        if FIELD_LIMITS[ours] != lengths[f"{role}{suffix}"]
    }
    assert wrong == {}, "ours vs documented"


def test_every_reference_field_has_the_documented_length(reference_dir: Path) -> None:
    lengths = documented(reference_dir)
    assert {name: FIELD_LIMITS[ours] for name, ours in REFERENCES.items()} == {
        name: lengths[name] for name in REFERENCES
    }
