"""Normalize and validate a shipper or recipient so Chronopost accepts it as is.

Pure functions over `Party`: every change and every problem is reported as a typed `AddressIssue`.
It must never do I/O (but read the package's own postal tables once, on first use), never cut a
word in two, never silently drop text that does not fit and never change a postal code the city
does not confirm (docs/addresses.md).

Decisions (where the reference notes are silent), all overridable through `AddressPolicy`:
- characters: printable ASCII only by default. The notes do not say Chronopost accepts accents,
  and its label printers and sorting hubs are known to show them badly, so "é" becomes "e";
  `keep_accents=True` keeps French letters (lengths are then counted in characters, not bytes).
- case: the city is upper-cased (it is the sorting line of a French label, NF Z10-011); names and
  street lines are kept as written.
- overseas departments (971-976) get their own ISO code (GP, MQ, GF, RE, YT) by default, since
  Chronopost prices and clears them as export destinations; `overseas_country="FR"` sends FR.
- a field with an error is returned empty (never half-fixed); its original is in the issue.
- postal codes (issue 20): sent in the form of Chronopost's annex (`postal_formats.py`); checked
  against the city where data allows (`postal.py`); a leading zero, a country prefix or Corsica's
  2A/2B is corrected only when the city agrees, else an error with candidates; a city the data
  does not know for a valid code is a warning, not an error (the code routes the parcel).
- an e-mail keeps an accented local part (another letter is another mailbox); a Unicode domain
  is sent as its punycode.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import Literal

import phonenumbers
import pycountry

from chronoforce.domain import postal, postal_formats
from chronoforce.domain.errors import AddressError
from chronoforce.domain.models import Party

__all__ = [
    "ABBREVIATIONS",
    "CHRONOPOST_ELEMENTS",
    "DEFAULT_POLICY",
    "FIELD_LIMITS",
    "AddressIssue",
    "AddressPolicy",
    "IssueCode",
    "NormalizedParty",
    "Role",
    "Severity",
    "UnsendableAddressError",
    "fit_reference",
    "normalize_party",
    "require_sendable",
    "resolve_country",
]

Role = Literal["shipper", "recipient"]
Severity = Literal["error", "warning", "info"]

# Chronopost field limits in characters. Source: roulier's Chronopost schema
# (akretion/roulier, roulier/carriers/chronopost_fr/api.py), as quoted in the reference notes;
# the official XSD carries no maxLength facet. Keys are our field names (see CHRONOPOST_ELEMENTS).
FIELD_LIMITS: dict[str, int] = {
    "name": 100,
    "name2": 100,
    "line1": 38,
    "line2": 38,
    "postal_code": 9,
    "city": 50,
    "country": 2,
    "contact_name": 100,
    "email": 80,  # [D] §2.3.2.b3-b5 (field_limits.csv); roulier's 50 was an older reading
    "phone": 17,
    "mobile": 17,  # the notes give one phone limit; assumed for the mobile field as well
    "shipper_ref": 35,
    "recipient_ref": 35,
    "parcel_ref": 15,
}

# Our field name -> Chronopost element suffix; the element is role + suffix
# (`recipientAdress1`, `shipperZipCode`; "Adress" is Chronopost's spelling).
CHRONOPOST_ELEMENTS: dict[str, str] = {
    "name": "Name",
    "name2": "Name2",
    "line1": "Adress1",
    "line2": "Adress2",
    "postal_code": "ZipCode",
    "city": "City",
    "country": "Country",
    "contact_name": "ContactName",
    "email": "Email",
    "phone": "Phone",
    "mobile": "MobilePhone",
}


class IssueCode(StrEnum):
    """Every finding the normalizer reports (the `code` of an `AddressIssue`)."""

    FIELD_MISSING = "FIELD_MISSING"
    ADDRESS_TOO_LONG = "ADDRESS_TOO_LONG"
    LINE_WRAPPED = "LINE_WRAPPED"
    ABBREVIATED = "ABBREVIATED"
    TRANSLITERATED = "TRANSLITERATED"
    CHARACTERS_REMOVED = "CHARACTERS_REMOVED"
    NON_LATIN_TEXT = "NON_LATIN_TEXT"
    COUNTRY_UNKNOWN = "COUNTRY_UNKNOWN"
    COUNTRY_DEFAULTED = "COUNTRY_DEFAULTED"
    COUNTRY_NORMALIZED = "COUNTRY_NORMALIZED"
    COUNTRY_FROM_POSTAL_CODE = "COUNTRY_FROM_POSTAL_CODE"
    POSTAL_CODE_MISSING = "POSTAL_CODE_MISSING"
    POSTAL_CODE_INVALID = "POSTAL_CODE_INVALID"
    POSTAL_CODE_FIXED = "POSTAL_CODE_FIXED"
    POSTAL_CODE_CITY_MISMATCH = "POSTAL_CODE_CITY_MISMATCH"
    POSTAL_CODE_UNKNOWN = "POSTAL_CODE_UNKNOWN"
    POSTAL_CODE_UNCHECKED = "POSTAL_CODE_UNCHECKED"
    CITY_UNKNOWN = "CITY_UNKNOWN"
    CITY_SPELLING = "CITY_SPELLING"
    COUNTRY_NOT_SERVED = "COUNTRY_NOT_SERVED"
    PHONE_INVALID = "PHONE_INVALID"
    PHONE_MISSING = "PHONE_MISSING"
    PHONE_EXTENSION_DROPPED = "PHONE_EXTENSION_DROPPED"
    MOBILE_FROM_PHONE = "MOBILE_FROM_PHONE"
    PHONE_FROM_MOBILE = "PHONE_FROM_MOBILE"
    MOBILE_NOT_MOBILE = "MOBILE_NOT_MOBILE"
    EMAIL_INVALID = "EMAIL_INVALID"
    REFERENCE_TOO_LONG = "REFERENCE_TOO_LONG"


@dataclass(frozen=True, slots=True)
class AddressIssue:
    """One finding on one field, with the value before and after, for a person to review."""

    code: str
    field: str
    severity: Severity
    message: str
    original: str = ""
    fixed: str = ""
    # What the person may have meant, as (postal code, city) pairs to choose from.
    candidates: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NormalizedParty:
    """The party as it would be sent, what was changed or found, and whether it can be sent."""

    party: Party
    issues: tuple[AddressIssue, ...]
    ok: bool

    @property
    def errors(self) -> tuple[AddressIssue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The choices the reference data leaves open (see the module docstring)."""

    keep_accents: bool = False
    overseas_country: Literal["territory", "FR"] = "territory"
    default_country: str = "FR"  # used when the country is empty
    uppercase_city: bool = True
    require_phone: bool = False  # no valid phone nor mobile is an error, not a warning
    require_mobile: bool = False  # e.g. relay delivery, where the SMS is the notice


DEFAULT_POLICY = AddressPolicy()


class UnsendableAddressError(AddressError):
    """An `AddressError` carrying every issue; `code`/`field` are those of the first error."""

    def __init__(self, role: Role, issues: tuple[AddressIssue, ...]) -> None:
        errors = [i for i in issues if i.severity == "error"]
        first = errors[0]
        others = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{role}: {first.message}{others}", code=first.code, field=first.field)
        self.role = role
        self.issues = issues


# --- characters ---------------------------------------------------------------------------------

_ASCII_OK = frozenset(chr(c) for c in range(0x20, 0x7F))
_FRENCH_LETTERS = frozenset("àâäçéèêëîïôöùûüÿÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ")
# What NFKD cannot bring to ASCII but has an obvious ASCII spelling.
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "…": "...",
    "œ": "oe",
    "Œ": "OE",
    "æ": "ae",
    "Æ": "AE",
    "ß": "ss",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "°": "o",  # "n°" in French street numbers
    "€": "EUR",
}
_TRANSLITERATED, _REMOVED, _NON_LATIN = 1, 2, 4


@lru_cache(maxsize=16384)
def _clean_text(text: str, keep_accents: bool) -> tuple[str, int]:
    """The text in characters Chronopost takes, whitespace collapsed, and what happened (flags)."""
    if text.isascii() and text.isprintable():
        return " ".join(text.split()), 0
    flags = 0
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _ASCII_OK or (keep_accents and ch in _FRENCH_LETTERS):
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
            flags |= _TRANSLITERATED
        else:
            ascii_, flag = _transliterate_char(ch)
            out.append(ascii_)
            flags |= flag
    return " ".join("".join(out).split()), flags


def _transliterate_char(ch: str) -> tuple[str, int]:
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in _ASCII_OK for c in base):
        return base, _TRANSLITERATED
    category = unicodedata.category(ch)
    if category == "Nd":
        return str(unicodedata.digit(ch)), _TRANSLITERATED
    if category.startswith("L") and "LATIN" not in unicodedata.name(ch, ""):
        return "", _NON_LATIN  # Cyrillic, CJK, Arabic…: no faithful spelling without a person
    if category == "Mn":
        return "", _TRANSLITERATED
    return "", _REMOVED  # emoji, symbols, control and invisible characters


def _fold(text: str) -> str:
    """Comparison key: no accents, lower case, punctuation as spaces."""
    base = unicodedata.normalize("NFKD", text)
    base = "".join(c for c in base if not unicodedata.combining(c)).casefold()
    return " ".join(_FOLD_PUNCT.sub(" ", base).split())


_FOLD_PUNCT = re.compile(r"[-'’.,()/]+")


# --- abbreviations --------------------------------------------------------------------------------

# Applied one word at a time, in this order, only when a field does not fit otherwise. Street-type
# abbreviations are those of La Poste's address standard (AFNOR NF Z10-011) and the FANTOIR
# street-type list; titles and "Saint" follow the same standard's usage.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("Avenue", "Av"),
    ("Boulevard", "Bd"),
    ("Résidence", "Rés"),
    ("Bâtiment", "Bât"),
    ("Appartement", "Appt"),
    ("Escalier", "Esc"),
    ("Immeuble", "Imm"),
    ("Chemin", "Ch"),
    ("Route", "Rte"),
    ("Impasse", "Imp"),
    ("Place", "Pl"),
    ("Allée", "All"),
    ("Faubourg", "Fg"),
    ("Lotissement", "Lot"),
    ("Square", "Sq"),
    ("Quartier", "Qua"),
    ("Promenade", "Prom"),
    ("Passage", "Pass"),
    ("Hameau", "Ham"),
    ("Domaine", "Dom"),
    ("Zone", "Z"),
    ("Industrielle", "I"),
    ("Général", "Gén"),
    ("Maréchal", "Mal"),
    ("Président", "Pdt"),
    ("Docteur", "Dr"),
    ("Professeur", "Pr"),
    ("Saint", "St"),
    ("Sainte", "Ste"),
    ("Société", "Sté"),
    ("Compagnie", "Cie"),
    ("Établissements", "Éts"),
)
_ABBREVIATION_RANK = {_fold(word): rank for rank, (word, _) in enumerate(ABBREVIATIONS)}


def _abbreviate_once(text: str, keep_accents: bool) -> tuple[str, str, str] | None:
    """Replace the highest-ranked abbreviable word: (new text, word, abbreviation) or None.

    Words are split on spaces and hyphens, so "Saint-Laurent" becomes "St-Laurent".
    """
    tokens = _WORD_SPLIT.split(text)
    best: tuple[int, int] | None = None
    for index in range(0, len(tokens), 2):  # odd indexes hold the separators
        rank = _ABBREVIATION_RANK.get(_fold(tokens[index].rstrip(",;")))
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, index)
    if best is None:
        return None
    rank, index = best
    token = tokens[index]
    core = token.rstrip(",;")
    short = _clean_text(ABBREVIATIONS[rank][1], keep_accents)[0]
    if core.isupper():
        short = short.upper()
    tokens[index] = short + token[len(core) :]
    return "".join(tokens), core, short


_WORD_SPLIT = re.compile(r"([ -])")


# --- countries ------------------------------------------------------------------------------------

# Names pycountry does not know: French names and a few native or everyday ones, keyed by `_fold`.
_COUNTRY_NAMES: dict[str, str] = {
    "allemagne": "DE", "deutschland": "DE", "belgique": "BE", "belgie": "BE", "suisse": "CH",
    "schweiz": "CH", "svizzera": "CH", "espagne": "ES", "espana": "ES", "italie": "IT",
    "italia": "IT", "royaume uni": "GB", "angleterre": "GB", "ecosse": "GB", "pays de galles": "GB",
    "grande bretagne": "GB", "great britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "uk": "GB", "northern ireland": "GB", "irlande du nord": "GB",
    "pays bas": "NL", "hollande": "NL", "holland": "NL", "nederland": "NL", "the netherlands": "NL",
    "autriche": "AT", "osterreich": "AT", "danemark": "DK", "danmark": "DK", "irlande": "IE",
    "eire": "IE", "pologne": "PL", "polska": "PL", "etats unis": "US", "usa": "US",
    "etats unis d amerique": "US", "united states of america": "US", "portugal": "PT",
    "luxembourg": "LU", "monaco": "MC", "principaute de monaco": "MC", "andorre": "AD",
    "suede": "SE", "sverige": "SE", "norvege": "NO", "norge": "NO", "finlande": "FI",
    "suomi": "FI", "grece": "GR", "tchequie": "CZ", "republique tcheque": "CZ", "hongrie": "HU",
    "roumanie": "RO", "bulgarie": "BG", "croatie": "HR", "slovenie": "SI", "slovaquie": "SK",
    "estonie": "EE", "lettonie": "LV", "lituanie": "LT", "chypre": "CY", "malte": "MT",
    "islande": "IS", "japon": "JP", "chine": "CN", "maroc": "MA", "algerie": "DZ",
    "tunisie": "TN", "bresil": "BR", "mexique": "MX", "australie": "AU", "inde": "IN",
    "russie": "RU", "russia": "RU", "turquie": "TR", "coree du sud": "KR", "south korea": "KR",
    "france metropolitaine": "FR", "corse": "FR", "la reunion": "RE", "reunion": "RE",
    "guyane": "GF", "guyane francaise": "GF", "nouvelle caledonie": "NC",
    "polynesie francaise": "PF", "saint pierre et miquelon": "PM", "saint barthelemy": "BL",
    "saint martin": "MF", "wallis et futuna": "WF",
}  # fmt: skip
# EU's own codes for the UK and Greece, and for Northern Ireland (XI, Windsor Framework VAT and
# customs code; Northern Ireland is in the ISO country GB).
_COUNTRY_CODE_ALIASES = {"UK": "GB", "EL": "GR", "XI": "GB"}


@lru_cache(maxsize=2048)
def resolve_country(value: str) -> str | None:
    """ISO 3166 alpha-2 for a code (alpha-2/alpha-3, any case) or an English/French name."""
    text = value.strip()
    upper = text.upper()
    if upper in _COUNTRY_CODE_ALIASES:
        return _COUNTRY_CODE_ALIASES[upper]
    if len(upper) == 2 and upper.isalpha():
        found = pycountry.countries.get(alpha_2=upper)
        return str(found.alpha_2) if found else None
    if len(upper) == 3 and upper.isalpha():
        found = pycountry.countries.get(alpha_3=upper)
        if found:
            return str(found.alpha_2)
    key = _fold(text)
    if key in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[key]
    for candidate in (text, key):
        try:
            return str(pycountry.countries.lookup(candidate).alpha_2)
        except LookupError:
            continue
    return None


# Territories recognised from a French-style postal code: prefix -> ISO code. Monaco is its own
# country; the five overseas departments follow `AddressPolicy.overseas_country`; the other
# collectivities always have their own code. Source: La Poste postal code allocation.
_TERRITORY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("980", "MC"),
    ("97133", "BL"),
    ("97150", "MF"),
    ("971", "GP"),
    ("972", "MQ"),
    ("973", "GF"),
    ("974", "RE"),
    ("975", "PM"),
    ("976", "YT"),
    ("986", "WF"),
    ("987", "PF"),
    ("988", "NC"),
)
_OVERSEAS_DEPARTMENTS = frozenset({"GP", "MQ", "GF", "RE", "YT"})
_FRENCH_POSTAL_AREA = frozenset({"FR", "MC", "BL", "MF", "PM", "WF", "PF", "NC"}) | (
    _OVERSEAS_DEPARTMENTS
)


def _territory_of(postal_code: str) -> str | None:
    for prefix, code in _TERRITORY_PREFIXES:
        if postal_code.startswith(prefix):
            return code
    return None


# --- postal codes ---------------------------------------------------------------------------------
# Formats: postal_formats.py (Chronopost's annex); code against city: postal.py (La Poste's base
# and a European set). Here: which change is certain enough to make, and what to tell a person.

_CODE_AND_WORDS = re.compile(r"(\d{4,5})\s+([^\d].*)")
_INSEE_CORSICA = re.compile(r"2[AB]\d{3}")
_ANY_POSTAL = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]{0,7}[A-Z0-9])?")
_POSTAL_OPTIONAL = frozenset({"IE"})  # Eircodes are recent and often left out


# --- phones and e-mail ----------------------------------------------------------------------------

_EXTENSION = re.compile(r"\s*(?:poste|ext\.?|extension|x|#)\s*(\d{1,6})\s*$", re.IGNORECASE)
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
# Deliberately simple (not RFC 5322): a local part of letters (any script: "josé", RFC 6531),
# digits and the usual characters, without leading, trailing or double dots; a domain of
# letter/digit/hyphen labels ending in an alphabetic TLD (a Unicode domain goes out in its exact
# punycode form, which changes nothing for delivery).
_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


@dataclass(frozen=True, slots=True)
class _Phone:
    number: str  # as Chronopost takes it, "" when invalid
    mobile: bool
    extension: str = ""


@lru_cache(maxsize=8192)
def _parse_phone(raw: str, region: str, address_country: str) -> _Phone:
    """Parse with the address's region; national digits for French numbers in France."""
    text = raw.strip()
    extension = ""
    if found := _EXTENSION.search(text):
        extension, text = found.group(1), text[: found.start()]
    number = _try_parse(text, region)
    digits = re.sub(r"\D", "", text)
    if number is None and not text.startswith("+") and len(digits) >= 10:
        number = _try_parse("+" + digits, None)  # "33612345678": a country code without "+"
    if number is None:
        return _Phone("", False, extension)
    if address_country == "FR" and number.country_code == 33:
        formatted = re.sub(
            r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        )
    else:
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(formatted) > FIELD_LIMITS["phone"]:
        return _Phone("", False, extension)
    return _Phone(formatted, phonenumbers.number_type(number) in _MOBILE_TYPES, extension)


def _try_parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


# --- the normalizer -------------------------------------------------------------------------------

_TEXT_FIELDS = ("name", "name2", "line1", "line2", "city", "contact_name")


class _Work:
    """The fields being normalized and the issues found so far (one per call, never shared)."""

    def __init__(self, party: Party, role: Role, policy: AddressPolicy) -> None:
        a, c = party.address, party.contact
        self.role = role
        self.policy = policy
        self.original = {
            "name": a.name,
            "name2": a.name2,
            "line1": a.line1,
            "line2": a.line2,
            "postal_code": a.postal_code,
            "city": a.city,
            "country": a.country,
            "contact_name": c.name,
            "phone": c.phone,
            "mobile": c.mobile,
            "email": c.email,
        }
        self.f = dict(self.original)
        self.issues: list[AddressIssue] = []
        self.failed: set[str] = set()
        self.phone_region = ""

    def note(
        self,
        code: IssueCode,
        field: str,
        severity: Severity,
        message: str,
        *,
        original: str | None = None,
        fixed: str | None = None,
        candidates: tuple[tuple[str, str], ...] = (),
    ) -> None:
        was = self.original.get(field, "") if original is None else original
        now = self.f.get(field, "") if fixed is None else fixed
        self.issues.append(AddressIssue(code.value, field, severity, message, was, now, candidates))

    def fail(
        self,
        code: IssueCode,
        field: str,
        message: str,
        *,
        candidates: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """An error: the field is emptied so that nothing half-fixed is ever sent."""
        self.f[field] = ""
        self.failed.add(field)
        self.note(code, field, "error", message, fixed="", candidates=candidates)


def normalize_party(
    party: Party, role: Role, *, policy: AddressPolicy = DEFAULT_POLICY
) -> NormalizedParty:
    """Normalize every field of `party` for Chronopost; never raises, reports instead."""
    work = _Work(party, role, policy)
    _clean_characters(work)
    _normalize_country(work)
    _normalize_postal_code(work)
    _normalize_city(work)
    _fit_pair(work, "line1", "line2", merge=True)
    _fit_pair(work, "name", "name2", merge=not work.f["name2"])
    _fit_single(work, "contact_name")
    _normalize_phones(work)
    _normalize_email(work)
    _check_required(work)
    f = work.f
    address = replace(
        party.address,
        name=f["name"],
        name2=f["name2"],
        line1=f["line1"],
        line2=f["line2"],
        postal_code=f["postal_code"],
        city=f["city"],
        country=f["country"],
    )
    contact = replace(
        party.contact,
        name=f["contact_name"],
        phone=f["phone"],
        mobile=f["mobile"],
        email=f["email"],
    )
    issues = tuple(work.issues)
    ok = not any(i.severity == "error" for i in issues)
    return NormalizedParty(Party(address=address, contact=contact), issues, ok)


def require_sendable(party: Party, role: Role, *, policy: AddressPolicy = DEFAULT_POLICY) -> Party:
    """The normalized party, or `UnsendableAddressError` (an `AddressError`) with every issue."""
    result = normalize_party(party, role, policy=policy)
    if not result.ok:
        raise UnsendableAddressError(role, result.issues)
    return result.party


def fit_reference(value: str, field: str) -> tuple[str, tuple[AddressIssue, ...]]:
    """A shipper/recipient/parcel reference cleaned to ASCII; too long is an error, not a cut."""
    text, flags = _clean_text(value, False)
    issues: list[AddressIssue] = []
    if flags & (_REMOVED | _NON_LATIN):
        message = f"{field}: characters Chronopost cannot take were removed"
        issues.append(
            AddressIssue(IssueCode.CHARACTERS_REMOVED, field, "warning", message, value, text)
        )
    elif flags & _TRANSLITERATED:
        message = f"{field} spelled in ASCII"
        issues.append(AddressIssue(IssueCode.TRANSLITERATED, field, "info", message, value, text))
    limit = FIELD_LIMITS[field]
    if len(text) > limit:
        message = f"{field} has {len(text)} characters; Chronopost takes {limit}"
        issues.append(AddressIssue(IssueCode.REFERENCE_TOO_LONG, field, "error", message, value))
        text = ""
    return text, tuple(issues)


def _clean_characters(work: _Work) -> None:
    for field in (*_TEXT_FIELDS, "postal_code"):  # the country is resolved, not spelled
        raw = work.f[field]
        text, flags = _clean_text(raw, work.policy.keep_accents)
        work.f[field] = text
        if flags & _NON_LATIN:
            work.fail(IssueCode.NON_LATIN_TEXT, field, f"{field} is not in Latin script")
            continue
        if flags & _TRANSLITERATED:
            work.note(IssueCode.TRANSLITERATED, field, "info", f"{field} spelled without accents")
        if flags & _REMOVED:
            work.note(
                IssueCode.CHARACTERS_REMOVED,
                field,
                "warning",
                f"{field}: symbols, emoji or control characters removed",
            )


def _normalize_country(work: _Work) -> None:
    raw = work.f["country"].strip()
    if not raw:
        work.f["country"] = work.policy.default_country
        work.note(
            IssueCode.COUNTRY_DEFAULTED,
            "country",
            "warning",
            f"no country given: {work.policy.default_country} assumed",
        )
        return
    code = resolve_country(raw)
    if code is None:
        work.fail(IssueCode.COUNTRY_UNKNOWN, "country", f"unknown country {raw!r}")
        return
    if not postal_formats.is_served(code):
        found = pycountry.countries.get(alpha_2=code)
        name = f" ({found.name})" if found else ""
        work.fail(
            IssueCode.COUNTRY_NOT_SERVED,
            "country",
            f"no Chronopost product reaches {code}{name}: it is not in Chronopost's country list",
        )
        return
    work.f["country"] = code
    if code != raw.upper():
        work.note(IssueCode.COUNTRY_NORMALIZED, "country", "info", f"{raw!r} is {code}")


def _normalize_postal_code(work: _Work) -> None:
    if "postal_code" in work.failed:
        return
    country = work.f["country"]
    if country in _FRENCH_POSTAL_AREA:
        _split_code_and_words(work)
    raw = work.f["postal_code"]
    if not raw:
        if "country" in work.failed:
            return
        spec = postal_formats.formats().get(country)
        if spec is not None and spec.alternatives and country not in _POSTAL_OPTIONAL:
            work.fail(IssueCode.POSTAL_CODE_MISSING, "postal_code", f"no postal code ({country})")
        else:
            work.note(IssueCode.POSTAL_CODE_MISSING, "postal_code", "warning", "no postal code")
        return
    if "country" in work.failed:  # no country, no format: only keep it if it could be one
        if not _ANY_POSTAL.fullmatch(raw.upper()):
            work.fail(IssueCode.POSTAL_CODE_INVALID, "postal_code", f"{raw!r} is not a postal code")
        return
    formatted = postal_formats.format_postal(country, raw)
    limit = FIELD_LIMITS["postal_code"]
    if formatted.valid and len(formatted.code) > limit:
        formatted = replace(formatted, valid=False, problem=f"{raw!r} is longer than {limit}")
    if not formatted.valid:
        _refuse_code(work, raw, formatted.problem)
        return
    work.f["postal_code"] = formatted.code
    if formatted.note:
        work.note(IssueCode.POSTAL_CODE_FIXED, "postal_code", "info", formatted.note)
    if country in _FRENCH_POSTAL_AREA:
        _apply_territory(work, formatted.code)
        if "postal_code" in work.failed:
            return
    _check_against_city(work, raw, formatted)


def _refuse_code(work: _Work, raw: str, problem: str) -> None:
    """A code that is not one: say so, with the city's codes when the city is known."""
    country, city = work.f["country"], work.f["city"]
    message = problem
    candidates: tuple[postal.Candidate, ...] = ()
    if city:
        where, candidates = postal.city_candidates(country, city, typed=raw)
        message += f"; {where}" if where else ""
    if country == "FR" and _INSEE_CORSICA.fullmatch(raw.strip().upper()):
        message += (
            " (2A/2B are Corsica's département codes in INSEE commune codes, not postal codes)"
        )
    work.fail(IssueCode.POSTAL_CODE_INVALID, "postal_code", message, candidates=candidates)


def _did_you_mean(verdict: postal.Verdict, said: str) -> str:
    if not verdict.candidates or "did you mean" in said:
        return ""
    return f" — did you mean {verdict.candidates[0][0]}?"


def _insee_hint(country: str, raw: str) -> str:
    if country == "FR" and _INSEE_CORSICA.fullmatch(raw.strip().upper()):
        return " (2A/2B begin Corsica's INSEE commune codes, not its postal codes, which are 20xxx)"
    return ""


def _check_against_city(work: _Work, raw: str, formatted: postal_formats.Formatted) -> None:
    """Postal code against city: a correction stands only where the city agrees with it."""
    country, code, city = work.f["country"], work.f["postal_code"], work.f["city"]
    level = postal.level_of(country)
    verdict = postal.check_city(country, code, city, typed=raw)
    if formatted.change:
        known = postal.known_code(country, code)
        certain = verdict.agrees or (
            level in (postal.Level.CITY, postal.Level.CODE)
            and known is True
            and verdict.status not in ("city_elsewhere", "city_unknown")
        )
        if not certain:
            what = f"{raw.strip()!r} would be {code} ({formatted.change})"
            why = verdict.message or (
                f"{code} is not a known postal code of {country}"
                if known is False
                else "it cannot be checked against the city"
            )
            work.fail(
                IssueCode.POSTAL_CODE_INVALID,
                "postal_code",
                f"{what}, but {why}{_insee_hint(country, raw)}{_did_you_mean(verdict, why)} "
                "(not changed without a person)",
                candidates=verdict.candidates,
            )
            return
        work.note(
            IssueCode.POSTAL_CODE_FIXED, "postal_code", "info", f"postal code: {formatted.change}"
        )
    _report_verdict(work, verdict, code, level)


def _report_verdict(work: _Work, verdict: postal.Verdict, code: str, level: postal.Level) -> None:
    status = verdict.status
    if status == "city_elsewhere":
        work.fail(
            IssueCode.POSTAL_CODE_CITY_MISMATCH,
            "postal_code",
            verdict.message,
            candidates=verdict.candidates,
        )
        work.f["postal_code"] = ""
    elif status == "city_unknown":  # a hamlet or a typo: the code still routes the parcel
        work.note(
            IssueCode.CITY_UNKNOWN, "city", "warning", verdict.message,
            candidates=verdict.candidates,
        )  # fmt: skip
    elif status == "unknown_code" and level == postal.Level.FULL:
        message = verdict.message or f"{code} is not a postal code of {work.f['country']}"
        work.fail(
            IssueCode.POSTAL_CODE_UNKNOWN, "postal_code", message, candidates=verdict.candidates
        )
    elif status == "unknown_code":
        message = verdict.message or f"{code} is not in the postal data of {work.f['country']}"
        work.note(
            IssueCode.POSTAL_CODE_UNKNOWN, "postal_code", "warning", message,
            candidates=verdict.candidates,
        )  # fmt: skip
    elif status == "near":
        work.note(IssueCode.CITY_SPELLING, "city", "warning", verdict.message)
    elif verdict.message:
        work.note(IssueCode.POSTAL_CODE_UNCHECKED, "city", "info", verdict.message)


def _split_code_and_words(work: _Work) -> None:
    """ "75381 CEDEX 08" in the postal code, or "75008 Paris" in the city: split them."""
    postal, city = work.f["postal_code"], work.f["city"]
    if postal and (found := _CODE_AND_WORDS.fullmatch(postal)):
        code, words = found.groups()
        if _fold(words).startswith("cedex") and "CEDEX" not in city.upper():
            work.f["city"] = f"{city} {words}".strip()
        elif not city:
            work.f["city"] = words
        work.f["postal_code"] = code
        work.note(
            IssueCode.POSTAL_CODE_FIXED, "postal_code", "info", f"{words!r} moved to the city"
        )
    elif not postal and (found := _CODE_AND_WORDS.fullmatch(city)):
        work.f["postal_code"], work.f["city"] = found.groups()
        work.note(
            IssueCode.POSTAL_CODE_FIXED, "postal_code", "info", "postal code taken from the city"
        )


def _apply_territory(work: _Work, code: str) -> None:
    """Within the French postal area the postal code decides the country (Monaco, DOM-TOM)."""
    country = work.f["country"]
    territory = _territory_of(code)
    expected = territory or "FR"
    if expected in _OVERSEAS_DEPARTMENTS and work.policy.overseas_country == "FR":
        expected = "FR"
    work.phone_region = territory or "FR"
    if territory is None and not "01" <= code[:2] <= "95":
        work.fail(IssueCode.POSTAL_CODE_INVALID, "postal_code", f"{code} is not a French code")
    elif expected != country and (country == "FR" or country == territory):
        work.f["country"] = expected
        work.note(
            IssueCode.COUNTRY_FROM_POSTAL_CODE,
            "country",
            "info",
            f"postal code {code} is in {expected}",
        )
    elif expected != country:
        work.fail(
            IssueCode.POSTAL_CODE_INVALID,
            "postal_code",
            f"{code} is not a postal code of {country}",
        )


_CEDEX_NUMBER = re.compile(r"\bCEDEX\s*(\d+)\b")


def _normalize_city(work: _Work) -> None:
    if "city" in work.failed:
        return
    city = work.f["city"]
    if work.policy.uppercase_city:
        city = _CEDEX_NUMBER.sub(r"CEDEX \1", city.upper())
    work.f["city"] = city
    _fit_single(work, "city")


def _reflow(first: str, second: str, limit: int) -> tuple[str, str] | None:
    """Fill the first line with whole words, the rest on the second; None if it cannot fit."""
    words = first.split() + second.split()
    if any(len(word) > limit for word in words):
        return None
    line = ""
    for index, word in enumerate(words):
        candidate = f"{line} {word}" if line else word
        if len(candidate) > limit:
            rest = " ".join(words[index:])
            # A comma that ended the first line only separated it from the second.
            return (line.rstrip(",;") or line, rest) if len(rest) <= limit else None
        line = candidate
    return line, ""


def _fit_pair(work: _Work, a: str, b: str, *, merge: bool) -> None:
    """Two lines of one limit: words move between them, abbreviations only if still too long."""
    if a in work.failed or b in work.failed or not merge:
        _fit_single(work, a)
        _fit_single(work, b)
        return
    first, second = work.f[a], work.f[b]
    limit = FIELD_LIMITS[a]
    if len(first) <= limit and len(second) <= limit:
        if not first and second:
            work.f[a], work.f[b] = second, ""
            work.note(IssueCode.LINE_WRAPPED, a, "info", f"{b} moved up to {a}", original="")
        return
    steps: list[tuple[str, str, str]] = []
    new_first, new_second = first, second
    while (fitted := _reflow(new_first, new_second, limit)) is None:
        target = a
        step = _abbreviate_once(new_first, work.policy.keep_accents)
        if step is None:
            target, step = b, _abbreviate_once(new_second, work.policy.keep_accents)
        if step is None:
            total = len(f"{first} {second}".strip())
            message = f"{a} and {b} hold {total} characters: more than two lines of {limit}"
            for field in [f for f in (a, b) if len(work.f[f]) > limit] or [b]:
                work.fail(IssueCode.ADDRESS_TOO_LONG, field, message)
            return
        if target == a:
            new_first = step[0]
        else:
            new_second = step[0]
        steps.append((target, step[1], step[2]))
    for target, word, short in steps:
        work.note(
            IssueCode.ABBREVIATED, target, "info", f"{word} -> {short}", original=word, fixed=short
        )
    work.f[a], work.f[b] = fitted
    if fitted != (new_first, new_second):
        work.note(
            IssueCode.LINE_WRAPPED,
            a,
            "info",
            f"words moved between {a} and {b} to fit {limit} characters",
            original=f"{first} / {second}",
            fixed=" / ".join(fitted),
        )


def _fit_single(work: _Work, field: str) -> None:
    """One line: abbreviations if too long, then ADDRESS_TOO_LONG; never cut."""
    text, limit = work.f[field], FIELD_LIMITS[field]
    if field in work.failed or len(text) <= limit:
        return
    steps: list[tuple[str, str]] = []
    while len(text) > limit and (step := _abbreviate_once(text, work.policy.keep_accents)):
        text = step[0]
        steps.append((step[1], step[2]))
    if len(text) > limit:
        work.fail(
            IssueCode.ADDRESS_TOO_LONG,
            field,
            f"{field} has {len(work.f[field])} characters; Chronopost takes {limit}",
        )
        return
    work.f[field] = text
    for word, short in steps:
        work.note(
            IssueCode.ABBREVIATED, field, "info", f"{word} -> {short}", original=word, fixed=short
        )


def _read_phone(work: _Work, field: str) -> _Phone | None:
    raw = work.f[field].strip()
    if not raw:
        work.f[field] = ""
        return None
    country = "" if "country" in work.failed else work.f["country"]
    phone = _parse_phone(raw, work.phone_region or country, country)
    if not phone.number:
        work.f[field] = ""
        work.note(
            IssueCode.PHONE_INVALID, field, "warning", f"{field} {raw!r} is not a valid number"
        )
        return None
    work.f[field] = phone.number
    if phone.extension:
        work.note(
            IssueCode.PHONE_EXTENSION_DROPPED,
            field,
            "info",
            f"extension {phone.extension} dropped: Chronopost has no field for it",
        )
    return phone


def _normalize_phones(work: _Work) -> None:
    phone, mobile = _read_phone(work, "phone"), _read_phone(work, "mobile")
    if mobile is not None and not mobile.mobile:
        work.f["mobile"] = ""
        work.note(IssueCode.MOBILE_NOT_MOBILE, "mobile", "warning", "a landline cannot get SMS")
        if phone is None:
            work.f["phone"], phone = mobile.number, mobile
        mobile = None
    if mobile is None and phone is not None and phone.mobile:
        work.f["mobile"] = phone.number
        work.note(
            IssueCode.MOBILE_FROM_PHONE, "mobile", "info", "the phone is a mobile: used for SMS"
        )
    elif phone is None and mobile is not None:
        work.f["phone"] = mobile.number
        work.note(IssueCode.PHONE_FROM_MOBILE, "phone", "info", "the mobile is also the phone")
    if work.policy.require_phone and not work.f["phone"]:
        work.fail(IssueCode.PHONE_MISSING, "phone", f"the {work.role} needs a valid phone")
    if work.policy.require_mobile and not work.f["mobile"]:
        work.fail(IssueCode.PHONE_MISSING, "mobile", f"the {work.role} needs a valid mobile")


def _normalize_email(work: _Work) -> None:
    raw = work.f["email"].strip()
    email = unicodedata.normalize("NFC", raw.removeprefix("mailto:"))
    if not email:
        work.f["email"] = ""
        return
    if "@" in email:
        local, domain = email.rsplit("@", 1)
        with contextlib.suppress(UnicodeError):  # not a domain name: refused below
            email = f"{local}@{domain.encode('idna').decode('ascii').lower()}"
    if _EMAIL.fullmatch(email) and len(email) <= FIELD_LIMITS["email"]:
        work.f["email"] = email
        return
    work.f["email"] = ""
    why = "is too long" if _EMAIL.fullmatch(email) else "is not an e-mail address"
    work.note(IssueCode.EMAIL_INVALID, "email", "warning", f"e-mail {raw!r} {why}: dropped")


def _check_required(work: _Work) -> None:
    for field in ("name", "line1", "city", "country"):
        if not work.f[field] and field not in work.failed:
            work.fail(IssueCode.FIELD_MISSING, field, f"the {work.role}'s {field} is missing")
