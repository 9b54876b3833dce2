"""Postal code formats per destination, from Chronopost's own annex (data/postal_formats.csv).

Turns what a person typed into the form Chronopost takes ("1012 ab" -> "1012AB" for NL, as the
annex writes it) and says which change it needed. It only formats: whether a changed code is
right (a leading zero put back, a country prefix taken off) is decided against the city by
`address.py`, never here. A country absent from the annex is one no product reaches.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Formatted", "PostalFormat", "format_postal", "formats", "is_served"]


@dataclass(frozen=True, slots=True)
class PostalFormat:
    country: str
    alternatives: tuple[str, ...]  # "AAN NAA": A letter, N digit, anything else literal
    pattern: re.Pattern[str] | None
    example: str
    classic: bool  # Chrono Classic serves it (else Express only)


# Where the annex is looser or stricter than the country's real codes, these patterns apply on
# top of (IE: instead of) it. Sources: Andorra Correus parishes AD100-AD700; Royal Mail postcode
# shapes; PostNL (no leading zero); Canada Post (no D, F, I, O, Q, U; no W or Z first); Eircode
# routing key + unique identifier, whose last four mix letters and digits (A65 F4E2), which the
# annex's ANNANNN would refuse.
_STRICTER: dict[str, re.Pattern[str]] = {
    "AD": re.compile(r"AD[1-7]00"),
    "NL": re.compile(r"[1-9]\d{3}[A-Z]{2}"),
    "GB": re.compile(r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[A-Z]{2}|GIR ?0AA"),
    "CA": re.compile(r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\d[ABCEGHJ-NPRSTV-Z]\d"),
}
_EIRCODE = re.compile(r"(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[0-9AC-FHKNPRTV-Y]{4}")
# The French postal area outside the annex's own lines: Monaco is coded FR there and French
# Saint-Martin GP; Saint-Barthélemy shares Guadeloupe's network (97133).
_FRENCH_EXTRA = ("MC", "BL", "MF")
_FALLBACK = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]{0,7}[A-Z0-9])?")  # no format given: sane text


@cache
def formats() -> dict[str, PostalFormat]:
    text = resources.files("chronoforce.domain").joinpath("data", "postal_formats.csv")
    lines = [ln for ln in text.read_text("utf-8").splitlines() if not ln.startswith("#")]
    out: dict[str, PostalFormat] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        shape = row["format"].strip()
        out[row["country"]] = PostalFormat(
            country=row["country"],
            alternatives=tuple(a.strip() for a in shape.split("|")) if shape else (),
            pattern=re.compile(row["regex"]) if row["regex"] else None,
            example=row["example"],
            classic=row["classic"] == "yes",
        )
    for country in _FRENCH_EXTRA:
        out.setdefault(country, out["FR"])
    return out


def is_served(country: str) -> bool:
    return country in formats()


@dataclass(frozen=True, slots=True)
class Formatted:
    """The code in the annex's form; `change` names a correction beyond spacing and case."""

    code: str
    valid: bool
    change: str = ""  # "leading zero restored", "prefix F- removed", … ("" = formatting only)
    problem: str = ""  # why it is not valid
    note: str = ""  # a change that is certain whatever the city ("ZIP+4 extension dropped")


# Old European car-plate prefixes people still write before a code, per country.
_PLATES: dict[str, tuple[str, ...]] = {
    "FR": ("F", "FR"), "MC": ("MC",), "BE": ("B", "BE"), "LU": ("L", "LU"), "DE": ("D", "DE"),
    "ES": ("E", "ES"), "IT": ("I", "IT"), "AT": ("A", "AT"), "CH": ("CH",), "DK": ("DK",),
    "PT": ("P", "PT"), "NL": ("NL",), "PL": ("PL",), "LV": ("LV",), "LT": ("LT",),
    "SE": ("S", "SE"), "FI": ("FI", "SF"), "NO": ("N", "NO"), "CZ": ("CZ",), "SK": ("SK",),
    "SI": ("SI",), "HR": ("HR",), "HU": ("H", "HU"), "LI": ("FL", "LI"), "EE": ("EE",),
    "RO": ("RO",), "BG": ("BG",), "GR": ("GR",),
}  # fmt: skip
_PLATE_OWNER = {prefix: country for country, ps in _PLATES.items() for prefix in ps}
_PLATE = re.compile(r"^([A-Z]{1,2}) ?- ?(?=\d)|^([A-Z]{1,2}) (?=\d)")
# Codes that may start with 0, so that spreadsheets drop it (6500 for 06500).
_LEADING_ZERO = frozenset({"FR", "MC", "DE", "ES", "IT", "FI", "NO", "US", "PL", "RO", "LT"})
_CORSICA = re.compile(r"2[AB](\d{3})")
_SEPARATORS = re.compile(r"[\s\-.]")


def _fill(alternative: str, compact: str) -> str | None:
    """`compact` laid into one annex shape ("AAN NAA" + "GY12AB" -> "GY1 2AB"), or None."""
    slots = [c for c in alternative if c in "AN"]
    if len(slots) != len(compact):
        return None
    out, chars = [], iter(compact)
    for c in alternative:
        if c in "AN":
            ch = next(chars)
            if (c == "A") != ch.isalpha() or not ch.isalnum():
                return None
            out.append(ch)
        else:
            out.append(c)
    return "".join(out)


def _shape(country: str, spec: PostalFormat, compact: str) -> str | None:
    if country == "IE":  # see _EIRCODE: the annex's shape would refuse real Eircodes
        return compact if _EIRCODE.fullmatch(compact) else None
    for alternative in spec.alternatives:
        filled = _fill(alternative, compact)
        if filled is not None and (spec.pattern is None or spec.pattern.fullmatch(filled)):
            stricter = _STRICTER.get(country)
            if stricter is None or stricter.fullmatch(filled):
                return filled
    return None


def format_postal(country: str, raw: str) -> Formatted:
    """The code in the country's annex format, and the correction it took to get there."""
    text = " ".join(raw.strip().upper().split())
    spec = formats().get(country)
    if spec is None:
        return Formatted(text, False, problem=f"no Chronopost product reaches {country}")
    change = ""
    if (plate := _PLATE.match(text)) and country in _PLATES:
        prefix = plate.group(1) or plate.group(2)
        owner = _PLATE_OWNER.get(prefix)
        if owner == country or (owner and prefix in _PLATES.get(country, ())):
            text, change = text[plate.end() :], f"prefix {prefix}- removed"
        elif owner:
            return Formatted(text, False, problem=f"{raw.strip()!r} carries {owner}'s prefix")
    compact = _SEPARATORS.sub("", text)
    if not spec.alternatives and country != "IE":
        return Formatted(text, bool(_FALLBACK.fullmatch(text)), change)
    if country == "FR" and (corsica := _CORSICA.fullmatch(compact)):
        compact, change = "20" + corsica.group(1), "Corsican 2A/2B written as 20"
    if country == "AD" and re.fullmatch(r"[1-7]00", compact):
        compact, change = "AD" + compact, "AD prefix added"
    if country == "US" and re.fullmatch(r"\d{9}", compact):
        # ZIP+4 is longer than the annex's five digits; the five are enough to deliver.
        return Formatted(compact[:5], True, note="ZIP+4 extension dropped")
    if (shaped := _shape(country, spec, compact)) is not None:
        return Formatted(shaped, True, change)
    if country in _LEADING_ZERO and compact.isdigit():
        # A spreadsheet drops every leading zero (00184 -> 184): pad to the annex's length.
        digits = max((len(a) for a in spec.alternatives if set(a) == {"N"}), default=0)
        shaped = _shape(country, spec, compact.zfill(digits)) if digits > len(compact) else None
        if shaped is not None:
            return Formatted(
                shaped, True, ", ".join(filter(None, (change, "leading zero restored")))
            )
    example = f" (e.g. {spec.example})" if spec.example else ""
    return Formatted(
        text, False, change, f"{raw.strip()!r} is not a postal code of {country}{example}"
    )
