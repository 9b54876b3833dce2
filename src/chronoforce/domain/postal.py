"""Postal code against city: does this code belong to this city, and if not, what would?

Pure lookups over the committed tables in `data/` (see scripts/build_postal_data.py for their
sources): French postal codes from La Poste's base, European ones from a GeoNames-derived set.
It never guesses: a code and a city that contradict each other are reported with candidates,
and a city the data does not know is only "unchecked" outside France.

What is checked (LEVELS, decided from spot checks of each country's rows):
- France, Monaco, overseas (the La Poste base is complete): the code must exist and the city
  must be one of its communes, arrondissements, former communes or routing labels; a CEDEX
  code (not published) must lie in the département of the city named before "CEDEX".
- CITY countries: a known code whose city is known elsewhere in the country is a contradiction;
  an unknown code or city is only unchecked (company codes and hamlets are missing).
- CODE countries: the data's localities are sub-localities (1020 Laeken for Bruxelles), so only
  whether the code exists is known; it decides whether a correction is certain.
- every other country: the format of Chronopost's annex only (postal_formats.csv).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

__all__ = [
    "LEVELS",
    "Candidate",
    "Level",
    "PostalBook",
    "Verdict",
    "check_city",
    "city_candidates",
    "city_key",
    "code_ranges",
    "europe",
    "france",
    "level_of",
]

Candidate = tuple[str, str]  # (postal code, city) as they would be sent


class Level(StrEnum):
    """How far a country's postal code can be checked against its city."""

    FULL = "full"  # France and its postal area: every code and commune is known
    CITY = "city"
    CODE = "code"
    FORMAT = "format"


# Countries of the European file and what their rows allow (see the module docstring).
LEVELS: dict[str, Level] = {
    **dict.fromkeys(("AD", "AT", "CH", "DE", "DK", "FI", "LI", "LU", "NL", "NO", "SE"), Level.CITY),
    **dict.fromkeys(("BE", "CZ", "GB", "HR", "HU", "IT", "LV", "PL", "PT", "SI", "SK"), Level.CODE),
}
FRENCH_AREA = frozenset(
    {"FR", "MC", "GP", "MQ", "GF", "RE", "YT", "BL", "MF", "PM", "WF", "PF", "NC"}
)


def level_of(country: str) -> Level:
    if country in FRENCH_AREA:
        return Level.FULL
    return LEVELS.get(country, Level.FORMAT)


# --- names as people write them -------------------------------------------------------------------

_PUNCT = str.maketrans({c: " " for c in "-'’.,()/:_"})
_ARTICLES = frozenset({"le", "la", "les", "l", "the", "de", "het", "den"})
_SAINT = {"sainte": "ste", "saint": "st", "sankt": "st", "san": "s", "santa": "s"}
_PUT_BACK = re.compile(r"^(.*?) \((le|la|les|l)\)$")  # "PARADOU (LE)", La Poste's way


def city_key(text: str) -> str:
    """Comparison key: no accents, case or punctuation; SAINT/ST alike; no leading article."""
    base = text.strip()
    if not base.isascii():
        base = unicodedata.normalize("NFKD", base)
        base = "".join(c for c in base if not unicodedata.combining(c))
        base = base.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss").replace("ø", "o")
    base = base.lower()
    if base.endswith(")") and (found := _PUT_BACK.match(base)):
        base = f"{found.group(2)} {found.group(1)}"
    words = [_SAINT.get(w, w) for w in base.translate(_PUNCT).split()]
    if words and words[0] in _ARTICLES and len(words) > 1:
        words = words[1:]
    return " ".join(words)


_CEDEX = re.compile(r"^(.*?)\s*\bcedex(?:\s*(\d{1,3}))?$")
_ARRONDISSEMENT = re.compile(
    r"^(paris|lyon|marseille) (\d{1,2}|[ivx]{1,5})(?: ?(?:e|er|eme|ieme))?(?: arrondissement)?$"
)
_ROMAN_NUMERALS = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii",
                   "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx")  # fmt: skip
_ROMAN = {numeral: n for n, numeral in enumerate(_ROMAN_NUMERALS, start=1)}
_ARR_BASE = {"paris": 75000, "lyon": 69000, "marseille": 13000}


@dataclass(frozen=True, slots=True)
class _City:
    key: str
    cedex: bool = False
    arrondissement: int = 0


def _read_city(text: str) -> _City:
    key = city_key(text)
    cedex = False
    if found := _CEDEX.match(key):
        key, cedex = found.group(1), True
    if found := _ARRONDISSEMENT.match(key):
        number = found.group(2)
        if number.isdigit() or number in _ROMAN:  # "PARIS 8E", "PARIS VIIIE"
            return _City(found.group(1), cedex, int(number) if number.isdigit() else _ROMAN[number])
    return _City(key, cedex)


# --- the tables -----------------------------------------------------------------------------------


@dataclass(slots=True)
class PostalBook:
    """One country's codes: code -> printed names, name key -> codes (the only index kept:
    a code's own keys are derived from its few names when asked, to keep memory low)."""

    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_key: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def keys(self, code: str) -> frozenset[str]:
        out: set[str] = set()
        for name in self.names.get(code, ()):
            out |= _variants(name)
        return frozenset(out)

    def display(self, key: str) -> str:
        """The printed name of a key (the first code's spelling)."""
        code = self.by_key[key][0]
        return next((n for n in self.names[code] if key in _variants(n)), key.upper())


@lru_cache(maxsize=8192)  # the names of recently checked codes: bounded, unlike the tables
def _variants(name: str) -> frozenset[str]:
    """The keys a printed name answers to: "GRAZ, 01.BEZ.:INNERE STADT" also to "graz",
    "LAUSANNE 25" to "lausanne", "KOBENHAVN K" to "kobenhavn"."""
    key = city_key(name)
    out = {key}
    for mark in ",(":
        if mark in name:
            out.add(city_key(name.split(mark)[0]))
    words = key.split()
    while len(words) > 1 and (words[-1].isdigit() or len(words[-1]) <= 2):
        words = words[:-1]
        out.add(" ".join(words))
    return frozenset(k for k in out if k)


def _build(rows: dict[str, list[str]]) -> PostalBook:
    book = PostalBook()
    by_key: dict[str, list[str]] = defaultdict(list)
    shared: dict[str, str] = {}  # one string object per distinct name
    for code, names in rows.items():
        book.names[code] = tuple(shared.setdefault(n, n) for n in names)
        keys: set[str] = set()
        for name in names:
            keys |= _variants.__wrapped__(name)
        for key in keys:
            by_key[key].append(code)
    book.by_key = {shared.setdefault(k, k): tuple(sorted(codes)) for k, codes in by_key.items()}
    return book


def _data_lines(name: str) -> list[str]:
    text = resources.files("chronoforce.domain").joinpath("data", name).read_text("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@cache
def france() -> PostalBook:
    """La Poste's codes for France, Monaco and overseas (loaded once, on first use)."""
    rows: dict[str, list[str]] = {}
    for line in _data_lines("postal_fr.csv"):
        code, names = line.split(";", 1)
        rows[code] = names.split("|")
    return _build(rows)


@cache
def _europe_lines() -> dict[str, list[str]]:
    by_country: dict[str, list[str]] = defaultdict(list)
    for line in _data_lines("postal_europe.csv"):
        by_country[line[:2]].append(line[3:])
    return dict(by_country)


@cache
def europe(country: str) -> PostalBook | None:
    """One European country's codes, loaded on its first use."""
    lines = _europe_lines().get(country)
    if lines is None:
        return None
    rows: dict[str, list[str]] = defaultdict(list)
    only_codes = LEVELS.get(country) == Level.CODE  # its names are never compared: not kept
    for line in lines:
        name, codes = line.split(";", 1)
        for code in codes.split():
            names = rows[code]
            if name and not only_codes:
                names.append(name)
    return _build(dict(rows))


# --- the check ------------------------------------------------------------------------------------

Status = Literal["match", "near", "unknown_code", "city_elsewhere", "city_unknown", "unchecked"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the data says of (code, city); `candidates` are what the person may have meant."""

    status: Status
    message: str = ""
    candidates: tuple[Candidate, ...] = ()

    @property
    def agrees(self) -> bool:
        return self.status in ("match", "near")


def code_ranges(codes: tuple[str, ...] | list[str], limit: int = 8) -> str:
    """ "75001–75020, 75116": consecutive numeric codes folded into ranges."""
    parts: list[str] = []
    run: list[str] = []
    for code in sorted(codes):
        if run and code.isdigit() and run[-1].isdigit() and int(code) == int(run[-1]) + 1:
            run.append(code)
            continue
        if run:
            parts.append(run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}")
        run = [code]
    if run:
        parts.append(run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}")
    more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
    return ", ".join(parts[:limit]) + more


def _book(country: str) -> PostalBook | None:
    return france() if country in FRENCH_AREA else europe(country)


def lookup_key(country: str, code: str) -> str:
    """The key a code is stored under: Portugal by CP4, Great Britain by postcode area."""
    compact = "".join(ch for ch in code.upper() if ch.isalnum())
    if country in ("PT", "NL"):
        return compact[:4]
    if country == "GB":
        return re.match(r"[A-Z]*", compact).group(0)  # type: ignore[union-attr]
    return compact


def known_code(country: str, code: str) -> bool | None:
    """True/False when the data can tell, None when the country is not covered."""
    book = _book(country)
    if book is None or level_of(country) == Level.FORMAT:
        return None
    return lookup_key(country, code) in book.names


def _candidates(
    book: PostalBook, key: str, near: str = "", limit: int = 5
) -> tuple[Candidate, ...]:
    """The codes of a city, the ones most like `near` (what was typed) first."""
    codes = list(book.by_key.get(key, ()))
    if near:
        codes.sort(key=lambda c: _likeness(near, c), reverse=True)
    name = book.display(key) if codes else ""
    return tuple((code, name) for code in codes[:limit])


def _likeness(typed: str, code: str) -> tuple[bool, int, int]:
    """How much `code` looks like what was typed: all its characters in order ("7508" in
    75008), then the longest common start, then end. Cheap, unlike difflib, on 200 codes."""
    typed = "".join(ch for ch in typed.upper() if ch.isalnum())
    rest = iter(code)
    inside = all(ch in rest for ch in typed)
    return inside, _common_start(typed, code), _common_start(typed[::-1], code[::-1])


def _common_start(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _of_code(book: PostalBook, code: str, limit: int = 5) -> tuple[Candidate, ...]:
    return tuple((code, name) for name in book.names.get(code, ())[:limit])


def _names_of(book: PostalBook, code: str) -> str:
    names = book.names.get(code, ())
    more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


def city_candidates(country: str, city: str, typed: str = "") -> tuple[str, tuple[Candidate, ...]]:
    """("PARIS is 75001–75020, 75116", the codes most like `typed` first), or ("", ())."""
    book = _book(country)
    key = _read_city(city).key
    if book is None or level_of(country) in (Level.FORMAT, Level.CODE) or key not in book.by_key:
        return "", ()
    return f"{book.display(key)} is {code_ranges(book.by_key[key])}", _candidates(book, key, typed)


def check_city(country: str, code: str, city: str, typed: str = "") -> Verdict:
    """Does `city` belong to postal `code` of `country`? `typed` is the code as the person wrote
    it, to rank candidates ("7508" ranks 75008 first)."""
    level = level_of(country)
    book = _book(country)
    if book is None or level in (Level.FORMAT, Level.CODE) or not city.strip():
        if level == Level.CODE and book is not None:
            known = lookup_key(country, code) in book.names
            return Verdict("match" if known else "unknown_code")
        return Verdict("unchecked")
    wanted = _read_city(city)
    key, stored = wanted.key, lookup_key(country, code)
    near = typed or code
    if wanted.cedex and level == Level.FULL:
        return _check_cedex(book, code, wanted, city, near)
    if stored not in book.names:
        if key in book.by_key:
            name = book.display(key)
            where = code_ranges(book.by_key[key])
            message = f"{code} is not a postal code of {country}; {name} is {where}"
            return Verdict("unknown_code", message, _candidates(book, key, near))
        return Verdict("unknown_code", f"{code} is not a postal code of {country}")
    if stored in book.by_key.get(key, ()):  # the common case, without deriving any key
        return _check_arrondissement(book, stored, wanted, near)
    own = book.keys(stored)
    if key in own:
        return _check_arrondissement(book, stored, wanted, near)
    names = _names_of(book, stored)
    if key and any(k.startswith(key + " ") for k in own):
        # "Frankfurt" for "Frankfurt am Main", "Aix" for "Aix-en-Provence": the start of a name
        # of this code; a match abroad, a spelling to confirm in France.
        if level == Level.CITY:
            return Verdict("match")
        full = next(k for k in own if k.startswith(key + " "))
        return Verdict("near", f"{city!r} read as {book.display(full)} ({code})")
    if key in book.by_key:
        name = book.display(key)
        message = (
            f"{code} is {names}; {name} is {code_ranges(book.by_key[key])} — did you mean "
            f"{_candidates(book, key, near)[0][0]}?"
        )
        keep = _of_code(book, stored, 1)  # or the code was right and the city is not
        return Verdict("city_elsewhere", message, _candidates(book, key, near) + keep)
    if level == Level.CITY:
        return Verdict("unchecked", f"{city!r} is not in the data for {code}; not checked")
    close = difflib.get_close_matches(key, own, n=1, cutoff=0.8)
    if close:
        return Verdict("near", f"{city!r} read as {book.display(close[0])} ({code})")
    return Verdict(
        "city_unknown",
        f"{code} is {names}; no place {city!r} is known there",
        _of_code(book, stored),
    )


def _check_arrondissement(book: PostalBook, code: str, wanted: _City, near: str) -> Verdict:
    number = wanted.arrondissement
    if not number:
        return Verdict("match")
    base = _ARR_BASE[wanted.key]
    expected = {f"{base + number:05d}"} | ({"75116"} if base == 75000 and number == 16 else set())
    if code in expected:
        return Verdict("match")
    name = f"{wanted.key.upper()} {number}"
    options = tuple((c, wanted.key.upper()) for c in sorted(expected) if c in book.names)
    if not options:
        return Verdict("city_unknown", f"{wanted.key.upper()} has no arrondissement {number}")
    return Verdict(
        "city_elsewhere",
        f"{code} is not in {name}; {name} is {code_ranges(sorted(expected))} — did you mean "
        f"{options[0][0]}?",
        options,
    )


def _department(code: str) -> str:
    return code[:3] if code.startswith(("97", "98")) else code[:2]


def _check_cedex(book: PostalBook, code: str, wanted: _City, city: str, near: str) -> Verdict:
    """CEDEX codes are not published: the code must be in the département of the named city."""
    codes = book.by_key.get(wanted.key)
    if codes is None:
        if wanted.key in book.keys(code):
            return Verdict("match")
        return Verdict("unchecked", f"{city!r}: a CEDEX office the data does not list; not checked")
    if any(_department(c) == _department(code) for c in codes):
        return Verdict("match")
    name = book.display(wanted.key)
    return Verdict(
        "city_elsewhere",
        f"{code} is not in the département of {name} ({code_ranges(codes)}); a CEDEX code keeps "
        "the first digits of its city's codes",
        _candidates(book, wanted.key, near),
    )
