"""Salesforce record ids: 15-character case-sensitive ids and their 18-character form.

The 3-character suffix is Salesforce's published checksum (one character per 5-character chunk,
encoding which letters are upper case). This module never touches storage.
"""

from __future__ import annotations

import string

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID_CHARS = frozenset(_BASE62)
# Pod/instance characters after the key prefix; real orgs have e.g. "5g0", "Dn0".
_POD = "8d0"


class MalformedId(ValueError):
    """The text is not a 15- or 18-character Salesforce id."""


def checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character id case-insensitively unique."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if ch.isupper())
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of record `number` of an object with key prefix `prefix`."""
    digits = ""
    n = number
    for _ in range(9):
        n, rem = divmod(n, 62)
        digits = _BASE62[rem] + digits
    id15 = prefix + _POD + digits
    return id15 + checksum(id15)


def to_18(value: str) -> str:
    """Normalize a 15- or 18-character id to its 18-character form (case restored from suffix)."""
    if len(value) not in (15, 18) or not set(value) <= _ID_CHARS:
        raise MalformedId(value)
    if len(value) == 15:
        return value + checksum(value)
    suffix = value[15:].upper()
    if any(ch not in _SUFFIX_ALPHABET for ch in suffix):
        raise MalformedId(value)
    # An 18-character id may arrive in any case: the suffix says which letters are upper case.
    chars = []
    for index, ch in enumerate(value[:15]):
        bits = _SUFFIX_ALPHABET.index(suffix[index // 5])
        chars.append(ch.upper() if bits & (1 << (index % 5)) else ch.lower())
    id15 = "".join(chars)
    if checksum(id15) != suffix:
        raise MalformedId(value)
    return id15 + suffix


def is_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        to_18(value)
    except MalformedId:
        return False
    return True
