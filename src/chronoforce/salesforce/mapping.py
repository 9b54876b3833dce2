"""Which Salesforce fields make a shipment: the mapping model, its SOQL, and record → domain.

`MappingConfig` is validated from `settings.mapping`; presets for Order and Shipment match the
metadata package under salesforce/force-app. `map_record` is pure: it never calls Salesforce and
never guesses — a missing or malformed value raises MappingError naming the record and field.
Address fields are passed through as read; the address checker judges them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chronoforce.domain.errors import MappingError
from chronoforce.domain.models import Address, Civility, Contact, Parcel, Party, References
from chronoforce.salesforce import soql
from chronoforce.salesforce.fields import CASE_ORDER, CASE_TYPE, SHIPMENT_ORDER

Kind = Literal["text", "number", "boolean", "any"]
MAX_PARCELS = 99
ITEMS_PER_QUERY = 200  # order ids per `WHERE OrderId IN (…)`: keeps the SOQL short


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _paths(value: Any) -> tuple[str, ...]:
    """A field spec is one path or a list of fallbacks (first non-empty wins); "" = unmapped."""
    items = [value] if isinstance(value, str) else list(value or ())
    return tuple(soql.field_name(str(v)) for v in items if str(v).strip())


Paths = tuple[str, ...]


class _Fields(_Model):
    @field_validator("*", mode="before")
    @classmethod
    def _as_paths(cls, value: Any) -> Any:
        return _paths(value) if isinstance(value, str | list | tuple) else value


class RecipientFields(_Fields):
    name: Paths = ()
    name2: Paths = ()
    lines: Paths = ()  # each value split on new lines: line 1, then the rest as line 2
    postal_code: Paths = ()
    city: Paths = ()
    country: Paths = ()
    state: Paths = ()


class ContactFields(_Fields):
    name: Paths = ()
    salutation: Paths = ()
    phone: Paths = ()
    mobile: Paths = ()
    email: Paths = ()


class ItemsConfig(_Model):
    """Order lines giving the weight when the order has none: Σ quantity × product weight."""

    object: str = "OrderItem"
    order_field: str = "OrderId"
    quantity: str = "Quantity"
    weight: str = "Product2.Chronopost_Weight_Kg__c"
    # "query": a second batched SELECT … WHERE OrderId IN (…) (works everywhere);
    # "subquery": a child relationship subquery in the trigger SELECT (real orgs only).
    mode: Literal["query", "subquery"] = "query"
    relationship: str = "OrderItems"

    @field_validator("object", "order_field", "quantity", "weight", "relationship")
    @classmethod
    def _name(cls, value: str) -> str:
        return soql.field_name(value)


_ORDER_PRESET: dict[str, Any] = {
    "trigger_condition": "Chronopost_Ship__c = true AND Chronopost_Label_Status__c = 'Requested'",
    "order_number": "OrderNumber",
    "order_id": "Id",
    "recipient": {
        "name": ["Account.Name", "ShipToContact.Name"],
        "name2": "ShipToContact.Name",
        "lines": "ShippingStreet",
        "postal_code": "ShippingPostalCode",
        "city": "ShippingCity",
        # Country names (France) work with or without state/country picklists; codes don't exist
        # in orgs without them. The address checker turns names into ISO codes.
        "country": "ShippingCountry",
        "state": "ShippingState",
    },
    "contact": {
        "name": "ShipToContact.Name",
        "salutation": "ShipToContact.Salutation",
        "phone": "ShipToContact.Phone",
        "mobile": "ShipToContact.MobilePhone",
        "email": "ShipToContact.Email",
    },
    "weight": "Chronopost_Weight_Kg__c",
    "parcel_count": "Chronopost_Parcel_Count__c",
    "product_override": "Chronopost_Product__c",
    "relay_point_id": "Chronopost_Relay_Point_Id__c",
    "saturday": "Chronopost_Saturday_Delivery__c",
    "customer_id": ["Account.AccountNumber", "AccountId"],
    "returns_reference": "Chronopost_Returns_Reference__c",
    "insured_value": "Chronopost_Insured_Value__c",
    "declared_value": "Chronopost_Declared_Value__c",
    "contents": "Chronopost_Contents__c",
    "facts": {
        "order_value": "TotalAmount",
        "priority": "Chronopost_Priority__c",
        "customer_tier": "Account.Type",
    },
}


def _via_order(spec: Any) -> Any:
    """The Order preset seen from a Shipment through its `Order__c` lookup."""
    if isinstance(spec, dict):
        return {k: _via_order(v) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_via_order(v) for v in spec]
    return f"Order__r.{spec}" if spec else spec


_SHIPMENT_PRESET: dict[str, Any] = {
    **{k: _via_order(v) for k, v in _ORDER_PRESET.items() if k != "trigger_condition"},
    "trigger_condition": "Chronopost_Label_Status__c = 'Requested'",
    "order_number": ["Order__r.OrderNumber", "ShipmentNumber"],
    # No standard field links Shipment to Order: the package's lookup when someone fills it,
    # else Order Management's OrderSummary (directly or through the FulfillmentOrder) and its
    # original Order (REAL-ORG-FACTS.md §1.2). Paths the org lacks are dropped at start-up.
    "order_id": [
        "Order__c",
        "OrderSummary.OriginalOrderId",
        "FulfillmentOrder.OrderSummary.OriginalOrderId",
    ],
    "recipient": {
        "name": "ShipToName",
        "name2": "Order__r.ShipToContact.Name",
        "lines": "ShipToStreet",
        "postal_code": "ShipToPostalCode",
        "city": "ShipToCity",
        "country": "ShipToCountry",
        "state": "ShipToState",
    },
    "product_override": "Chronopost_Product__c",
}

PRESETS: dict[str, dict[str, Any]] = {"Order": _ORDER_PRESET, "Shipment": _SHIPMENT_PRESET}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "facts":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class MappingConfig(_Model):
    """The field mapping of one org (`mapping:` in chronoforce.yaml); docs/salesforce-mapping.md."""

    trigger_object: str = "Order"
    trigger_condition: str = ""  # a SOQL condition, trusted configuration (not user input)
    modstamp_field: str = "SystemModstamp"
    order_number: Paths = ()
    order_id: Paths = ()  # the Order id the items hang from
    recipient: RecipientFields = RecipientFields()
    contact: ContactFields = ContactFields()
    weight: Paths = ()  # total kg of the shipment; items are summed when empty
    items: ItemsConfig | None = ItemsConfig()
    parcel_count: Paths = ()
    product_override: Paths = ()
    relay_point_id: Paths = ()
    saturday: Paths = ()
    customer_id: Paths = ()
    returns_reference: Paths = ()
    insured_value: Paths = ()  # EUR; any value buys Chronopost's paid insurance
    declared_value: Paths = ()  # EUR; customs value of international goods
    contents: Paths = ()  # English descriptions, one per line (or ";"), at most 5
    # Contents when the order has none, by product family (home, relay, international, return,
    # fresh…: domain/products.py); international parcels need one ([D] §2.3.2.b7).
    content_defaults: dict[str, str] = Field(default_factory=dict)
    facts: dict[str, Paths] = Field(default_factory=dict)  # routing facts: name → field
    # The shipper location the order leaves from (issue 23, pipeline/locations.py): a value
    # naming a `locations.sites` key or alias, e.g. Chronopost_Location__c; "" = not mapped.
    location: Paths = ()

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        trigger = str(data.get("trigger_object") or "Order")
        return _merge(PRESETS.get(trigger, {}), {**data, "trigger_object": trigger})

    @field_validator("trigger_object", "modstamp_field")
    @classmethod
    def _name(cls, value: str) -> str:
        return soql.field_name(value)

    @field_validator(
        "order_number",
        "order_id",
        "weight",
        "parcel_count",
        "product_override",
        "relay_point_id",
        "saturday",
        "customer_id",
        "returns_reference",
        "insured_value",
        "declared_value",
        "contents",
        "location",
        mode="before",
    )
    @classmethod
    def _as_paths(cls, value: Any) -> Any:
        return _paths(value)

    @field_validator("facts", mode="before")
    @classmethod
    def _facts(cls, value: Any) -> Any:
        return {str(k): _paths(v) for k, v in (value or {}).items()}

    def specs(self) -> list[FieldSpec]:
        """Every mapped field of the trigger object, with the kind of value it must hold."""
        out = [FieldSpec("order_number", self.order_number, "text")]
        out.append(FieldSpec("order_id", self.order_id, "text"))
        for group in (self.recipient, self.contact):
            prefix = "recipient" if group is self.recipient else "contact"
            for name, paths in group:
                out.append(FieldSpec(f"{prefix}.{name}", paths, "text"))
        out += [
            FieldSpec("weight", self.weight, "number"),
            FieldSpec("parcel_count", self.parcel_count, "number"),
            FieldSpec("product_override", self.product_override, "text"),
            FieldSpec("relay_point_id", self.relay_point_id, "text"),
            FieldSpec("saturday", self.saturday, "boolean"),
            FieldSpec("customer_id", self.customer_id, "text"),
            FieldSpec("returns_reference", self.returns_reference, "text"),
            FieldSpec("insured_value", self.insured_value, "number"),
            FieldSpec("declared_value", self.declared_value, "number"),
            FieldSpec("contents", self.contents, "text"),
            FieldSpec("location", self.location, "text"),
        ]
        out += [FieldSpec(f"facts.{k}", v, "any") for k, v in self.facts.items()]
        return [s for s in out if s.paths]

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any] | None) -> MappingConfig:
        return cls.model_validate(dict(raw or {}))


@dataclass(frozen=True)
class FieldSpec:
    key: str  # where it sits in the mapping configuration, e.g. recipient.city
    paths: Paths
    kind: Kind


@dataclass(frozen=True)
class MappedOrder:
    """One Salesforce order read through the mapping: what the pipeline ships."""

    sf_object: str
    sf_id: str
    modstamp: str
    order_number: str
    recipient: Party
    parcels: tuple[Parcel, ...]
    references: References
    product_override: str = ""
    relay_point_id: str = ""
    saturday: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    insured_value: Decimal | None = None  # EUR
    declared_value: Decimal | None = None  # EUR
    contents: tuple[str, ...] = ()  # English descriptions of the contents

    def contents_or_default(self, mapping: MappingConfig, family: str) -> tuple[str, ...]:
        """The order's own contents, else the configured default of the product's family."""
        if self.contents:
            return self.contents
        default = mapping.content_defaults.get(family, "").strip()
        return (default,) if default else ()


# --- SOQL ---------------------------------------------------------------------------------


def selected_fields(mapping: MappingConfig) -> list[str]:
    """Id, the modstamp and every mapped path, each once, in a stable order."""
    wanted = ["Id", mapping.modstamp_field]
    for spec in mapping.specs():
        wanted.extend(spec.paths)
    seen: dict[str, str] = {}
    for name in wanted:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def soql_for_trigger(
    mapping: MappingConfig,
    since: str | None = None,
    *,
    limit: int | None = None,
    after: bool = False,
    ids: Sequence[str] | None = None,
    condition: bool = True,
) -> str:
    """SELECT … FROM the trigger object WHERE the condition [AND modstamp >= since], oldest first.

    `since` is a SOQL dateTime literal (`soql.soql_datetime`) or a date (`2024-05-01`); with
    `after`, only records stamped strictly later (`>`). `ids` narrows it to those records (the
    ones events named); `condition=False` leaves the trigger condition out (a retry reads an
    order that no longer says `Requested`).
    """
    where = (
        [f"({mapping.trigger_condition})"]
        if condition and mapping.trigger_condition.strip()
        else []
    )
    if since:
        where.append(f"{mapping.modstamp_field} {'>' if after else '>='} {_since_literal(since)}")
    if ids is not None:
        where.append(f"Id IN {soql.in_list(ids)}")
    text = trigger_select(mapping)
    if where:
        text += " WHERE " + " AND ".join(where)
    text += f" ORDER BY {mapping.modstamp_field} ASC, Id ASC"
    return text + (f" LIMIT {int(limit)}" if limit else "")


def trigger_select(mapping: MappingConfig) -> str:
    """`SELECT <the mapped fields> FROM <the trigger object>`, with no clause."""
    columns = selected_fields(mapping)
    items = mapping.items
    if items is not None and items.mode == "subquery":
        columns.append(f"(SELECT Id, {items.quantity}, {items.weight} FROM {items.relationship})")
    return f"SELECT {', '.join(columns)} FROM {mapping.trigger_object}"


def soql_for_record(mapping: MappingConfig, record_id: str) -> str:
    """The trigger's SELECT of one record by its (checked) id, whatever the condition says."""
    return f"{trigger_select(mapping)} WHERE Id = '{soql.record_id(record_id)}'"


def linked_shipments_soql(order_ids: Sequence[str]) -> str:
    """The Shipments of these Orders, by the package's lookup (`Shipment.Order__c`)."""
    link = SHIPMENT_ORDER.api
    return f"SELECT Id, {link} FROM Shipment WHERE {link} IN {soql.in_list(order_ids)}"


def case_soql(case_id: str) -> str:
    """One Case's type and the Order it names (a return label's Case)."""
    return (
        f"SELECT Id, {CASE_TYPE.api}, {CASE_ORDER.api} FROM Case "
        f"WHERE Id = '{soql.record_id(case_id)}'"
    )


def _since_literal(since: str) -> str:
    """Accept only a date or dateTime literal shape: the watermark is data, not SOQL."""
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2}))?", since
    ):
        raise soql.SoqlInjectionError(f"not a SOQL date or dateTime: {since!r}")
    return since


def items_soql(mapping: MappingConfig, order_ids: Sequence[str]) -> str:
    items = mapping.items or ItemsConfig()
    return (
        f"SELECT Id, {items.order_field}, {items.quantity}, {items.weight} FROM {items.object} "
        f"WHERE {items.order_field} IN {soql.id_list(order_ids)}"
    )


def fetch_items(
    query_iter: Any, mapping: MappingConfig, records: Iterable[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Items of these records by order id: from the subquery, or batched second queries."""
    items = mapping.items
    records = list(records)
    found: dict[str, list[dict[str, Any]]] = {}
    if items is None:
        return found
    if items.mode == "subquery":
        for record in records:
            child = record.get(items.relationship) or {}
            found[str(record["Id"])] = list(child.get("records", []) if child else [])
        return found
    order_ids = sorted({str(v) for r in records if (v := _first(r, mapping.order_id))})
    for start in range(0, len(order_ids), ITEMS_PER_QUERY):
        batch = order_ids[start : start + ITEMS_PER_QUERY]
        for item in query_iter(items_soql(mapping, batch)):
            found.setdefault(str(item[items.order_field]), []).append(item)
    return found


def items_for(
    record: Mapping[str, Any], mapping: MappingConfig, by_order: Mapping[str, list[Any]]
) -> list[dict[str, Any]]:
    return list(by_order.get(str(_first(record, mapping.order_id) or ""), []))


# --- record → domain ----------------------------------------------------------------------


def value_at(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`Account.AccountNumber`); None if any step is missing."""
    current: Any = record
    for step in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = next((v for k, v in current.items() if k.lower() == step.lower()), None)
    return current


def _first(record: Mapping[str, Any], paths: Paths) -> Any:
    for path in paths:
        value = value_at(record, path)
        if value not in (None, ""):
            return value
    return None


def _text(record: Mapping[str, Any], paths: Paths) -> str:
    value = _first(record, paths)
    return "" if value is None else str(value).strip()


def _decimal(value: Any, record_id: str, field_name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise MappingError(
            f"expected a number, got {value!r}", record_id=record_id, field=field_name
        )
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MappingError(
            f"expected a number, got {value!r}", record_id=record_id, field=field_name
        ) from None
    if not number.is_finite():
        raise MappingError(
            f"expected a number, got {value!r}", record_id=record_id, field=field_name
        )
    return number


class _Reader:
    """Reads one record; every error names the record and the first configured path."""

    def __init__(self, record: Mapping[str, Any], mapping: MappingConfig) -> None:
        self.record = record
        self.mapping = mapping
        self.sf_id = str(record.get("Id") or "")

    def text(self, paths: Paths) -> str:
        return _text(self.record, paths)

    def number(self, paths: Paths) -> Decimal | None:
        for path in paths:
            value = _decimal(value_at(self.record, path), self.sf_id, path)
            if value is not None:
                return value
        return None

    def flag(self, paths: Paths) -> bool:
        value = _first(self.record, paths)
        if value is None or isinstance(value, bool):
            return bool(value)
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise MappingError(
            f"expected true or false, got {value!r}", record_id=self.sf_id, field=paths[0]
        )

    def fail(self, message: str, paths: Paths | str) -> MappingError:
        where = paths if isinstance(paths, str) else (paths[0] if paths else "")
        return MappingError(message, record_id=self.sf_id, field=where)


def _weight(reader: _Reader, items: Sequence[Mapping[str, Any]]) -> Decimal:
    mapping = reader.mapping
    weight = reader.number(mapping.weight)
    if weight is not None and weight > 0:
        return _shippable(reader, weight, mapping.weight)
    config = mapping.items
    if config is None or not items:
        raise reader.fail(
            "no weight: the field is empty and the order has no items", mapping.weight
        )
    total = Decimal(0)
    for item in items:
        where = f"{config.object}.{config.weight}"
        quantity = _decimal(
            value_at(item, config.quantity), reader.sf_id, f"{config.object}.{config.quantity}"
        )
        unit = _decimal(value_at(item, config.weight), reader.sf_id, where)
        if unit is None:
            raise reader.fail(f"item {item.get('Id', '?')} has no product weight", where)
        total += unit * (quantity if quantity is not None else Decimal(1))
    if total <= 0:
        raise reader.fail("the items weigh nothing", f"{config.object}.{config.weight}")
    return _shippable(reader, total, f"{config.object}.{config.weight}")


def _shippable(reader: _Reader, total: Decimal, where: Paths | str) -> Decimal:
    """Refuse a weight no shipment can carry (it would also overflow splitting to the gram)."""
    limit = MAX_PARCELS * PARCEL_MAX_KG
    if total > limit:
        raise reader.fail(f"weight {total} kg is more than the {limit} kg of 99 parcels", where)
    return total


PARCEL_MAX_KG = Decimal(30)  # Chronopost ships up to 30 kg per parcel


def split_weight(total: Decimal, count: int) -> tuple[Decimal, ...]:
    """`count` parcels sharing `total` kg to the gram; the last one takes the remainder."""
    share = (total / count).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    return (share,) * (count - 1) + (total - share * (count - 1),)


def _parcels(
    reader: _Reader, items: Sequence[Mapping[str, Any]], order_number: str
) -> tuple[Parcel, ...]:
    paths = reader.mapping.parcel_count
    count_value = reader.number(paths)
    count = 1 if count_value is None else int(count_value)
    if count_value is not None and (count != count_value or not 1 <= count <= MAX_PARCELS):
        raise reader.fail(
            f"parcel count must be a whole number 1-{MAX_PARCELS}, got {count_value}", paths
        )
    total = _weight(reader, items)
    if count_value is None:
        # No count given: as few parcels as Chronopost's 30 kg per parcel allows (NOTES.md).
        count = min(MAX_PARCELS, max(1, math.ceil(total / PARCEL_MAX_KG)))
    weights = split_weight(total, count)
    return tuple(
        Parcel(weight_kg=w, reference=f"{order_number}-{i}" if count > 1 else order_number)
        for i, w in enumerate(weights, start=1)
    )


_CIVILITY = {"ms.": Civility.MADAME, "mrs.": Civility.MADAME, "mr.": Civility.MONSIEUR}


def _recipient(reader: _Reader) -> Party:
    fields, contact = reader.mapping.recipient, reader.mapping.contact
    lines = [
        part.strip()
        for path in fields.lines
        for part in str(value_at(reader.record, path) or "").splitlines()
        if part.strip()
    ]
    name = reader.text(fields.name)
    name2 = reader.text(fields.name2)
    address = Address(
        name=name,
        name2="" if name2 == name else name2,
        line1=lines[0] if lines else "",
        line2=" ".join(lines[1:]),
        postal_code=reader.text(fields.postal_code),
        city=reader.text(fields.city),
        country=reader.text(fields.country),
        state=reader.text(fields.state),
    )
    person = Contact(
        name=reader.text(contact.name) or name2 or name,
        civility=_CIVILITY.get(reader.text(contact.salutation).lower(), Civility.MONSIEUR),
        phone=reader.text(contact.phone),
        mobile=reader.text(contact.mobile),
        email=reader.text(contact.email),
    )
    return Party(address=address, contact=person)


def _fact(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return value


def map_record(
    record: Mapping[str, Any], items: Sequence[Mapping[str, Any]], mapping: MappingConfig
) -> MappedOrder:
    """The record (with its items) as a `MappedOrder`; MappingError names record and field."""
    reader = _Reader(record, mapping)
    if not reader.sf_id:
        raise MappingError("the record has no Id", field="Id")
    order_number = reader.text(mapping.order_number)
    if not order_number:
        raise reader.fail("no order number", mapping.order_number)
    return MappedOrder(
        sf_object=mapping.trigger_object,
        sf_id=reader.sf_id,
        modstamp=str(value_at(record, mapping.modstamp_field) or ""),
        order_number=order_number,
        recipient=_recipient(reader),
        parcels=_parcels(reader, items, order_number),
        references=References(
            order_number=order_number,
            customer_id=reader.text(mapping.customer_id),
            returns_reference=reader.text(mapping.returns_reference),
        ),
        product_override=reader.text(mapping.product_override),
        relay_point_id=reader.text(mapping.relay_point_id),
        saturday=reader.flag(mapping.saturday),
        facts={k: _fact(_first(record, p)) for k, p in mapping.facts.items()},
        insured_value=_money(reader, mapping.insured_value),
        declared_value=_money(reader, mapping.declared_value),
        contents=_contents(reader.text(mapping.contents)),
    )


def _money(reader: _Reader, paths: Paths) -> Decimal | None:
    """An amount in EUR; zero is no amount (nothing to insure or declare), below zero an error."""
    value = reader.number(paths)
    if value is not None and value < 0:
        raise reader.fail(f"a negative amount ({value})", paths)
    return value if value else None


def _contents(text: str) -> tuple[str, ...]:
    """Descriptions one per line or separated by ";" (the Chronopost request checks lengths)."""
    return tuple(part.strip() for part in text.replace(";", "\n").splitlines() if part.strip())


def map_records(
    records: Iterable[Mapping[str, Any]], query_iter: Any, mapping: MappingConfig
) -> Iterator[MappedOrder | MappingError]:
    """Map a page of records, fetching their items in batches; errors are yielded, not raised."""
    page = list(records)
    by_order = fetch_items(query_iter, mapping, page)
    for record in page:
        try:
            yield map_record(record, items_for(record, mapping, by_order), mapping)
        except MappingError as error:
            yield error
