"""SOQL literals built safely: quoted strings, checked ids and field names, IN lists, datetimes.

Every value that reaches a SOQL string goes through here. It must never pass raw input into a
query: a value is either escaped into a literal or refused with `SoqlInjectionError`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

from chronoforce.domain.errors import MappingError

# Escape sequences of SOQL string literals (Salesforce SOQL and SOSL Reference, "Quoted String
# Escape Sequences"): \n \r \t \b \f \" \' \\ — anything else after a backslash is an error.
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_ESCAPE_RE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")

# Ids: 15 case-sensitive or 18 case-insensitive alphanumeric characters (REST API reference).
_ID_RE = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# API names: letters, digits and single underscores; `__c`/`__r` suffixes; dotted relationships.
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")


class SoqlInjectionError(MappingError, ValueError):
    """A value meant for a SOQL query is not what it claims to be (an id, a field name).

    A ValueError too, so pydantic reports it as a validation error of the configuration.
    """

    default_code = "SOQL_REFUSED"


def quote(value: str) -> str:
    """A SOQL string literal: single quotes around the value, specials backslash-escaped."""
    return "'" + _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], value) + "'"


def soql_datetime(value: dt.datetime) -> str:
    """A dateTime literal in UTC (`2024-05-01T10:00:00.000Z`); naive values are refused."""
    if value.tzinfo is None:
        raise ValueError("SOQL datetimes must be timezone-aware")
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def literal(value: object) -> str:
    """Any Python value as a SOQL literal (strings quoted, dates unquoted, null, booleans)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return soql_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


def record_id(value: str) -> str:
    """The id itself when it is a well-formed 15/18-character Salesforce id, else refused."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise SoqlInjectionError(f"not a Salesforce id: {value!r}")
    return value


def is_record_id(value: object) -> bool:
    """Whether `value` is a well-formed 15/18-character Salesforce id (to filter, not raise)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def field_name(value: str) -> str:
    """An API name (`Account.AccountNumber`, `Order__r.Name`) fit to place in a query."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise SoqlInjectionError(f"not a Salesforce field or object name: {value!r}", field=value)
    return value


def in_list(values: Iterable[object]) -> str:
    """`('a', 'b')` for `WHERE X IN …`; an empty list is refused (SOQL has no empty IN)."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(items) + ")"


def id_list(values: Iterable[str]) -> str:
    """`IN` list of record ids, each checked with `record_id`."""
    return in_list(record_id(v) for v in values)


def by_key_soql(sf_object: str, key_field: str, keys: Sequence[str]) -> str:
    """`SELECT Id, <key> FROM <object> WHERE <key> IN (...)`: records known by an external id
    (a slip's file waits for its `Chronopost_Manifest__c` record, pipeline/writeback.py)."""
    return f"SELECT Id, {key_field} FROM {sf_object} WHERE {key_field} IN {in_list(keys)}"
