"""Turn request JSON into column values (with Salesforce's validation errors) and back.

Pure functions over the schema: no storage, no HTTP. Messages follow Salesforce's wording, e.g.
`Order Number: data value too large: … (max length=255)`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from chronoforce.sandbox.salesforce.errors import ApiError, RecordErrors
from chronoforce.sandbox.salesforce.ids import MalformedId, to_18
from chronoforce.sandbox.salesforce.schema import NUMERIC, TEXTUAL, Field, SObject
from chronoforce.sandbox.salesforce.soql import normalize_datetime

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IGNORED_KEYS = frozenset({"attributes"})


def _parser_error(f: Field, value: Any, wanted: str) -> ApiError:
    token = "VALUE_STRING" if isinstance(value, str) else type(value).__name__.upper()
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {wanted} from {token} value {value} or request may be "
        f"missing a required field",
        [f.name],
    )


def _text(f: Field, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _parser_error(f, value, "string")
    text = str(value)
    if text == "":
        return None  # Salesforce stores empty text as null
    # CaseComment bodies count UTF-8 bytes (HELP:000382141): 4,000 bytes can be fewer chars.
    size = len(text.encode("utf-8")) if f.byte_length else len(text)
    if f.length and size > f.length:
        raise ApiError(
            400,
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {text} (max length={f.length})",
            [f.name],
        )
    if f.type in ("picklist", "multipicklist") and f.restricted:
        allowed = set(f.picklist)
        chosen = text.split(";") if f.type == "multipicklist" else [text]
        if any(v not in allowed for v in chosen):
            raise ApiError(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{f.label}: bad value for restricted picklist field: {text}",
                [f.name],
            )
    if f.type == "email" and not _EMAIL.match(text):
        raise ApiError(
            400, "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name]
        )
    return text


def _number(f: Field, value: Any) -> float | int:
    if isinstance(value, bool):
        raise _parser_error(f, value, "double")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _parser_error(f, value, "double") from None
    if not number.is_finite():
        raise _parser_error(f, value, "double")
    if f.precision:
        integer_digits = len(str(abs(int(number)))) if int(number) else 0
        if integer_digits > f.precision - f.scale:
            raise ApiError(
                400,
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{f.label}: value outside of valid range on numeric field: {value}",
                [f.name],
            )
        number = round(number, f.scale)
    return int(number) if f.type == "int" else float(number)


def _date(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _parser_error(f, value, "date")
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise _parser_error(f, value, "date") from None


def _datetime(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _parser_error(f, value, "datetime")
    try:
        if len(value) == 10:
            value += "T00:00:00Z"
        # Salesforce writes offsets without a colon (+0000): accept both spellings.
        value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
        return normalize_datetime(value)
    except ValueError:
        raise _parser_error(f, value, "datetime") from None


def _reference(f: Field, value: Any, prefixes: dict[str, str]) -> str:
    if not isinstance(value, str):
        raise _parser_error(f, value, "id")
    try:
        record_id = to_18(value)
    except MalformedId:
        raise ApiError(
            400, "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name]
        ) from None
    allowed = {prefixes[t] for t in f.reference_to if t in prefixes}
    if allowed and record_id[:3] not in allowed:
        raise ApiError(
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            f"{f.label}: id value of incorrect type: {value}",
            [f.name],
        )
    return record_id


def convert(f: Field, value: Any, prefixes: dict[str, str]) -> Any:
    """One JSON value as its column value; raises ApiError with Salesforce's code."""
    if value is None:
        return False if f.type == "boolean" else None
    if f.type == "boolean":
        if not isinstance(value, bool):
            raise _parser_error(f, value, "boolean")
        return value
    if f.type in NUMERIC:
        return _number(f, value)
    if f.type == "date":
        return _date(f, value)
    if f.type == "datetime":
        return _datetime(f, value)
    if f.type == "reference":
        return _reference(f, value, prefixes)
    if f.type == "base64":
        if not isinstance(value, str):
            raise _parser_error(f, value, "base64")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _parser_error(f, value, "base64") from None
    if f.type in TEXTUAL:
        return _text(f, value)
    raise _parser_error(f, value, f.type)


def to_storage(
    obj: SObject, body: dict[str, Any], creating: bool, prefixes: dict[str, str]
) -> dict[str, Any]:
    """Validated column values of a create/update body, keyed by canonical field name."""
    errors: list[ApiError] = []
    values: dict[str, Any] = {}
    unknown = [k for k in body if k not in IGNORED_KEYS and obj.field(k) is None]
    if unknown:
        raise RecordErrors(
            [
                ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{unknown[0]}' on sobject of type {obj.name}",
                    [],
                )
            ]
        )
    readonly = []
    for key, value in body.items():
        if key in IGNORED_KEYS:
            continue
        f = obj.by_lower[key.lower()]
        if not f.createable or (f.name == "Id"):
            readonly.append(f.name)
            continue
        try:
            values[f.name] = convert(f, value, prefixes)
        except ApiError as exc:
            errors.append(exc)
    if readonly:
        errors.insert(0, _not_writable(readonly))
    missing = _missing_required(obj, values, creating)
    if missing:
        errors.append(
            ApiError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        )
    if errors:
        raise RecordErrors(errors)
    return values


def _not_writable(names: list[str]) -> ApiError:
    return ApiError(
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {', '.join(names)}. Please check the security settings "
        "of this field and verify that it is read/write for your profile or permission set.",
        names,
    )


def _missing_required(obj: SObject, values: dict[str, Any], creating: bool) -> list[str]:
    missing = []
    for f in obj.fields.values():
        if not f.required or f.default is not None:
            continue
        if (creating and values.get(f.name) is None) or (
            not creating and f.name in values and values[f.name] is None
        ):
            missing.append(f.name)
    return missing


def defaults(obj: SObject) -> dict[str, Any]:
    """Column values a new record gets when the body does not set them."""
    result: dict[str, Any] = {}
    for f in obj.stored_fields:
        if f.default is not None:
            result[f.name] = f.default
        elif f.type == "boolean" and f.name != "IsDeleted":
            result[f.name] = False  # checkboxes are never null
    return result


def to_json(f: Field, value: Any) -> Any:
    """A column value as Salesforce writes it in JSON."""
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "int":
        return int(value)
    if f.type in NUMERIC:
        return float(value)
    return value
