"""Avro side of the sandbox's Pub/Sub API: schemas derived from describe, payloads encoded.

Change events get Salesforce's CDC layout (a ChangeEventHeader first, then every field as a
nullable union) and platform events their fields plus CreatedDate/CreatedById. It must never
talk gRPC or read the database: it only turns describe JSON and event payloads into Avro.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastavro

NAMESPACE = "com.sforce.eventbus"
# ChangeEventHeader.changeType symbols (Change Data Capture developer guide, "ChangeEventHeader").
CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)
_DATE = {"type": "int", "logicalType": "date"}
_DATETIME = {"type": "long", "logicalType": "timestamp-millis"}
_AVRO_TYPES: dict[str, Any] = {
    "boolean": "boolean",
    "int": "int",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "date": _DATE,
    "datetime": _DATETIME,
}
# Not carried by change events: the record id travels in the header; binary and compound
# values are not part of the sandbox's flat field model.
_SKIPPED_TYPES = frozenset({"id", "base64", "address", "location"})
_STRING_LIST = {"type": "array", "items": "string"}


class PayloadError(ValueError):
    """An event payload does not fit the topic's schema."""


@dataclass(frozen=True)
class TopicSchema:
    """One Avro schema with its stable id (a hash of its canonical JSON)."""

    schema: dict[str, Any]
    schema_id: str
    schema_json: str
    parsed: Any

    @classmethod
    def of(cls, schema: dict[str, Any]) -> TopicSchema:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).digest()[:16]
        # 22 URL-safe characters, the length of Salesforce's schema ids.
        schema_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        return cls(schema, schema_id, json.dumps(schema), fastavro.parse_schema(schema))

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema["fields"]]


def _nullable(name: str, sf_type: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", _AVRO_TYPES.get(sf_type, "string")], "default": None}


def _header_schema() -> dict[str, Any]:
    fields: list[tuple[str, Any]] = [
        ("entityName", "string"),
        ("recordIds", _STRING_LIST),
        ("changeType", {"type": "enum", "name": "ChangeType", "symbols": list(CHANGE_TYPES)}),
        ("changeOrigin", "string"),
        ("transactionKey", "string"),
        ("sequenceNumber", "int"),
        ("commitTimestamp", "long"),
        ("commitNumber", "long"),
        ("commitUser", "string"),
        ("nulledFields", _STRING_LIST),
        ("diffFields", _STRING_LIST),
        ("changedFields", _STRING_LIST),
    ]
    return {
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": NAMESPACE,
        "fields": [{"name": n, "type": t} for n, t in fields],
    }


def cdc_schema(describe: Mapping[str, Any]) -> TopicSchema:
    """`{Object}ChangeEvent`: the header, then each field of the object, nullable, in order."""
    name = str(describe["name"])
    event_name = (name[:-3] + "__" if name.endswith("__c") else name) + "ChangeEvent"
    fields = [{"name": "ChangeEventHeader", "type": _header_schema()}]
    fields += [
        _nullable(f["name"], f["type"])
        for f in describe["fields"]
        if f["type"] not in _SKIPPED_TYPES
    ]
    return TopicSchema.of(
        {"type": "record", "name": event_name, "namespace": NAMESPACE, "fields": fields}
    )


def event_schema(describe: Mapping[str, Any]) -> TopicSchema:
    """A platform event: CreatedDate and CreatedById, then its custom fields."""
    fields: list[dict[str, Any]] = [
        {"name": "CreatedDate", "type": _DATETIME},
        {"name": "CreatedById", "type": "string"},
    ]
    fields += [
        _nullable(f["name"], f["type"])
        for f in describe["fields"]
        if f["name"].endswith("__c") and f["type"] not in _SKIPPED_TYPES
    ]
    return TopicSchema.of(
        {"type": "record", "name": str(describe["name"]), "namespace": NAMESPACE, "fields": fields}
    )


# ---- values ------------------------------------------------------------------------------------


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        # Epoch seconds or milliseconds: anything past year 33658 in seconds is milliseconds.
        seconds = value / 1000 if value > 1e12 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _epoch_ms(value: Any) -> int:
    return int(_instant(value).timestamp() * 1000)


def _avro_value(avro_type: Any, value: Any) -> Any:
    """A JSON value from the sandbox as the Python value fastavro writes for `avro_type`."""
    if value is None:
        return None
    if isinstance(avro_type, list):  # ["null", T]
        return _avro_value(avro_type[1], value)
    if avro_type == _DATETIME:
        return _instant(value)
    if avro_type == _DATE:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    if avro_type == "boolean":
        return bool(value)
    if avro_type == "int":
        return int(value)
    if avro_type == "double":
        return float(value)
    if isinstance(value, list):  # multipicklists arrive as lists in some payloads
        return ";".join(str(v) for v in value)
    return str(value)


def field_bitmap(field_names: Sequence[str], changed: Iterable[str]) -> list[str]:
    """Salesforce's field bitmap: bit i set when the i-th schema field is named.

    Returned as ["0x…"] (upper-case hex), or [] when nothing is named. Names the schema does not
    hold are dropped. (Pub/Sub API guide, "Event Deserialization Considerations".)
    """
    index = {name: i for i, name in enumerate(field_names)}
    bits = 0
    for name in changed:
        if name in index:
            bits |= 1 << index[name]
    return [f"0x{bits:X}"] if bits else []


def cdc_record(topic_schema: TopicSchema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A CDC payload (`{"ChangeEventHeader": {...}, field: value…}`) as an Avro-ready record."""
    header = dict(payload.get("ChangeEventHeader") or {})
    names = topic_schema.field_names
    change_type = str(header.get("changeType", "UPDATE"))
    if change_type not in CHANGE_TYPES:
        raise PayloadError(f"unknown changeType {change_type!r}")
    record: dict[str, Any] = {
        "ChangeEventHeader": {
            "entityName": str(header.get("entityName", "")),
            "recordIds": [str(r) for r in header.get("recordIds") or []],
            "changeType": change_type,
            "changeOrigin": str(header.get("changeOrigin") or ""),
            "transactionKey": str(header.get("transactionKey") or ""),
            "sequenceNumber": int(header.get("sequenceNumber") or 1),
            "commitTimestamp": _epoch_ms(header.get("commitTimestamp") or 0),
            "commitNumber": int(header.get("commitNumber") or 0),
            "commitUser": str(header.get("commitUser") or ""),
            "nulledFields": field_bitmap(names, header.get("nulledFields") or []),
            "diffFields": field_bitmap(names, header.get("diffFields") or []),
            "changedFields": field_bitmap(names, header.get("changedFields") or []),
        }
    }
    return _fill(topic_schema, payload, record)


def event_record(topic_schema: TopicSchema, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A platform-event payload (its fields, CreatedDate, CreatedById) as an Avro-ready record."""
    record: dict[str, Any] = {
        "CreatedDate": _instant(payload.get("CreatedDate") or 0),
        "CreatedById": str(payload.get("CreatedById") or ""),
    }
    return _fill(topic_schema, payload, record)


def _fill(
    topic_schema: TopicSchema, payload: Mapping[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    for f in topic_schema.schema["fields"]:
        if f["name"] not in record:
            try:
                record[f["name"]] = _avro_value(f["type"], payload.get(f["name"]))
            except (TypeError, ValueError) as exc:
                raise PayloadError(f"{f['name']}: {exc}") from exc
    return record


def encode(topic_schema: TopicSchema, record: Mapping[str, Any]) -> bytes:
    """Avro binary of `record`, with no container framing (what ProducerEvent.payload holds)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, topic_schema.parsed, dict(record))
    return out.getvalue()


def decode(topic_schema: TopicSchema, payload: bytes) -> dict[str, Any]:
    """The record in a published ProducerEvent.payload."""
    data = fastavro.schemaless_reader(io.BytesIO(payload), topic_schema.parsed)
    if not isinstance(data, dict):
        raise PayloadError("payload is not an Avro record")
    return data
