"""Values made to fit the org's fields before a write: lengths from describe, never guessed.

Salesforce refuses an over-long value for the whole record (`STRING_TOO_LONG`, REST has no
truncation switch: REAL-ORG-FACTS.md §1.3). Where shortening is safe it is done here with a
note: free text (place names, event labels, errors, Case comments) is cut with an ellipsis, and
lists of skybill numbers (a tracking number list, a tracking URL) keep whole numbers only — every
parcel's number stays on its tracking event and label file. Anything else is sent as is, so the
org's refusal names the record and field. A field the org does not have (or hides from the user
through field-level security, which looks the same) is reported, never sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ELLIPSIS = "…"
# CaseComment.CommentBody: 4,000 *bytes* of UTF-8 through the API (HELP:000382141).
BYTE_LIMITS: dict[tuple[str, str], int] = {("casecomment", "commentbody"): 4000}
# Free-text fields where a shortened value is still true (a place, a label, a message).
_FREE_TEXT = re.compile(
    r"(place|label|last_error|message|subject|description|commentbody|comments)(__c)?$", re.I
)
# Fields that hold skybill numbers separated by commas (or a URL listing them).
_NUMBER_LISTS = re.compile(r"(tracking_number|skybill_numbers|trackingnumber)(__c)?$", re.I)
_URL_LIST = re.compile(
    r"^(?P<head>https?://[^?]+\?(?:[^=&]+=[^&]*&)*listeNumerosLT=)(?P<list>[^&]*)$"
)
_TEXT_TYPES = frozenset({"string", "textarea", "url", "email", "phone", "picklist", "combobox"})


@dataclass
class Fitted:
    """A record as it will be sent, with what was changed and what the org lacks."""

    record: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # fields not in the org's describe


def utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-8 bytes (never half a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def shorten(text: str, limit: int, *, in_bytes: bool = False) -> str:
    """`text` within `limit` characters (or UTF-8 bytes), ending in an ellipsis if cut."""
    size = len(text.encode("utf-8")) if in_bytes else len(text)
    if size <= limit:
        return text
    room = limit - (len(ELLIPSIS.encode("utf-8")) if in_bytes else 1)
    head = utf8_prefix(text, room) if in_bytes else text[:room]
    return head.rstrip() + ELLIPSIS


def _whole_numbers(head: str, numbers: str, limit: int) -> tuple[str, int, int]:
    parts = [p for p in numbers.split(",") if p]
    kept: list[str] = []
    for part in parts:
        if len(head) + len(",".join([*kept, part])) > limit:
            break
        kept.append(part)
    return head + ",".join(kept), len(kept), len(parts)


def fit_value(sobject: str, described: Mapping[str, Any], value: Any) -> tuple[Any, str]:
    """(value to send, note) for one field; the note is "" when nothing changed."""
    name = str(described.get("name", ""))
    if not isinstance(value, str) or str(described.get("type", "")) not in _TEXT_TYPES:
        return value, ""
    byte_limit = BYTE_LIMITS.get((sobject.lower(), name.lower()))
    limit = byte_limit or int(described.get("length") or 0)
    size = len(value.encode("utf-8")) if byte_limit else len(value)
    if not limit or size <= limit:
        return value, ""
    url = _URL_LIST.match(value)
    if url and "," in url.group("list"):
        fitted, kept, total = _whole_numbers(url.group("head"), url.group("list"), limit)
        if kept:
            return fitted, f"{name}: URL lists {kept} of {total} parcels (max length={limit})"
    if _NUMBER_LISTS.search(name) and "," in value:
        fitted, kept, total = _whole_numbers("", value, limit)
        if kept:
            return fitted, f"{name}: {kept} of {total} numbers kept (max length={limit})"
    if _FREE_TEXT.search(name):
        unit = "bytes" if byte_limit else "characters"
        return (
            shorten(value, limit, in_bytes=bool(byte_limit)),
            f"{name}: shortened from {size} to {limit} {unit}",
        )
    return value, ""  # not safe to cut: the org's STRING_TOO_LONG names the field


def fit_record(
    sobject: str, record: Mapping[str, Any], fields: Mapping[str, Mapping[str, Any]] | None
) -> Fitted:
    """Fit every value of `record` to `fields` (lower-case name → describe of the field).

    Without a describe (`fields` None) the record passes unchanged."""
    out = Fitted(dict(record))
    if fields is None:
        return out
    for key, value in record.items():
        if key == "attributes" or key.lower() == "id" or isinstance(value, Mapping):
            continue  # a relationship by external id (`Order__r: {…}`) is no field of its own
        described = fields.get(key.lower())
        if described is None:
            out.unknown.append(key)
            continue
        fitted, note = fit_value(sobject, described, value)
        if note:
            out.record[key] = fitted
            out.notes.append(note)
    return out
