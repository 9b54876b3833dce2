"""What objects and fields the sandbox knows: standard ones from standard.py, custom ones from the
metadata package's XML files, and the describe JSON built from both.

It must never invent a custom field: the package under salesforce/force-app is the only source,
with salesforce/shipment-app (what names the Shipment object) loaded on top for orgs that have it.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from lxml import etree

from chronoforce.sandbox.salesforce.standard import (
    KEY_PREFIXES,
    LICENSED,
    OWNED,
    STANDARD_FIELDS,
)

MD_NS = "{http://soap.sforce.com/2006/04/metadata}"
NUMERIC = frozenset({"double", "currency", "percent", "int"})
TEXTUAL = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
)
SYSTEM_FIELDS = (
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)


# The API version of the request being served: a field added in a later version does not exist
# for it (REAL-ORG-FACTS.md R4; e.g. Shipment.FulfillmentOrderId is API 51.0+).
API_VERSION: ContextVar[float] = ContextVar("sandbox_api_version", default=99.0)


class SchemaError(Exception):
    """The metadata package cannot be read or contradicts itself."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # describe type: string, boolean, double, reference, …
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    required: bool = False  # REQUIRED_FIELD_MISSING on create when absent
    readonly: bool = False
    external_id: bool = False
    unique: bool = False
    restricted: bool = False
    name_field: bool = False
    byte_length: bool = False  # `length` counts UTF-8 bytes, not characters
    since: float = 0.0  # the API version that added the field (0: always there)
    auto_number: str | None = None  # display format, e.g. "TE-{0000000}"
    default: Any = None
    picklist: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    custom: bool = False

    @property
    def createable(self) -> bool:
        return not self.readonly and self.auto_number is None

    @property
    def sql_type(self) -> str:
        if self.type in ("boolean", "int"):
            return "INTEGER"
        if self.type in NUMERIC:
            return "REAL"
        if self.type in ("id", "reference", "date", "datetime"):
            return "TEXT"
        return "TEXT COLLATE NOCASE"  # SOQL compares text case-insensitively

    @property
    def stored(self) -> bool:
        return self.type != "base64"


@dataclass
class SObject:
    name: str
    label: str
    prefix: str
    fields: dict[str, Field] = field(default_factory=dict)
    custom: bool = False
    event: bool = False  # platform event: published, never stored

    @cached_property
    def by_lower(self) -> dict[str, Field]:
        return {name.lower(): f for name, f in self.fields.items()}

    @cached_property
    def relationships(self) -> dict[str, Field]:
        """Parent relationship name (lower case) -> the reference field it follows."""
        return {
            f.relationship_name.lower(): f
            for f in self.fields.values()
            if f.relationship_name is not None
        }

    @cached_property
    def stored_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.stored]

    def field(self, name: str) -> Field | None:
        """The field, if it exists in the API version of the request being served."""
        found = self.by_lower.get(name.lower())
        return found if found is not None and found.since <= API_VERSION.get() else None

    def visible_fields(self) -> list[Field]:
        """Fields of this object in the API version of the request being served."""
        return [f for f in self.fields.values() if f.since <= API_VERSION.get()]

    @property
    def table(self) -> str:
        return f'"{self.name}"'

    @property
    def topic(self) -> str:
        """The Change Data Capture channel (or platform-event channel) of this object."""
        if self.event:
            return f"/event/{self.name}"
        base = self.name[:-3] + "__" if self.name.endswith("__c") else self.name
        return f"/data/{base}ChangeEvent"


def _label(name: str) -> str:
    base = name.removesuffix("__c").removesuffix("Id") if name != "Id" else "Id"
    words: list[str] = []
    for part in base.split("_"):
        word = ""
        for ch in part:
            if ch.isupper() and word and not word[-1].isupper():
                words.append(word)
                word = ""
            word += ch
        if word:
            words.append(word)
    return " ".join(words) + (" ID" if name.endswith("Id") and name != "Id" else "")


def _relationship(name: str, custom: bool) -> str:
    if custom:
        return name[:-3] + "__r"
    return name[:-2] if name.endswith("Id") else name


def _parse_line(line: str) -> Field:
    name, kind, *flags = line.split()
    # Picklist values may contain spaces ("Customer - Direct"): glue them back.
    while flags and kind.startswith("picklist:") and flags[0] not in _FLAGS:
        if flags[0].startswith("default="):
            break
        kind += " " + flags.pop(0)
    type_, _, arg = kind.partition(":")
    opts: dict[str, Any] = {"name": name, "label": _label(name)}
    if type_ in ("string", "textarea"):
        opts["length"] = int(arg)
    elif type_ in ("email", "phone"):
        opts["length"] = 80 if type_ == "email" else 40
    elif type_ == "url":
        opts["length"] = 255
    elif type_ in ("double", "currency"):
        precision, scale = arg.split(",")
        opts.update(precision=int(precision), scale=int(scale))
    elif type_ == "picklist":
        opts.update(picklist=tuple(arg.split("|")), length=255)
    elif type_ == "ref":
        type_ = "reference"
        opts.update(reference_to=tuple(arg.split("|")), length=18)
        opts["relationship_name"] = _relationship(name, False)
    elif type_ == "auto":
        type_ = "string"
        opts.update(auto_number=arg, length=30)
    opts["type"] = type_
    for flag in flags:
        key, _, value = flag.partition("=")
        if key == "default":
            opts["default"] = value == "true" if type_ == "boolean" else value
        elif key == "since":
            opts["since"] = float(value)
        else:
            opts[_FLAGS[key]] = True
    return Field(**opts)


_FLAGS = {
    "required": "required",
    "readonly": "readonly",
    "ext": "external_id",
    "unique": "unique",
    "restricted": "restricted",
    "name": "name_field",
    "bytes": "byte_length",
}


def _system_fields(obj: SObject, owned: bool) -> None:
    obj.fields["Id"] = Field("Id", "id", "Record ID", length=18, readonly=True)
    for name in SYSTEM_FIELDS:
        kind = "boolean" if name.startswith("Is") else "datetime"
        if name.endswith("ById"):
            obj.fields[name] = Field(
                name,
                "reference",
                _label(name),
                length=18,
                readonly=True,
                reference_to=("User",),
                relationship_name=name[:-2],
            )
        else:
            obj.fields[name] = Field(name, kind, _label(name), readonly=True)
    if owned:
        obj.fields["OwnerId"] = Field(
            "OwnerId",
            "reference",
            "Owner ID",
            length=18,
            reference_to=("User",),
            relationship_name="Owner",
        )


def standard_objects() -> dict[str, SObject]:
    objects: dict[str, SObject] = {}
    for name, spec in STANDARD_FIELDS.items():
        obj = SObject(name, _label(name), KEY_PREFIXES[name])
        _system_fields(obj, name in OWNED)
        for line in spec.strip().splitlines():
            if line.strip():
                f = _parse_line(line.strip())
                obj.fields[f.name] = f
        objects[name] = obj
    return objects


def _text(node: Any, tag: str, default: str = "") -> str:
    found = node.find(MD_NS + tag)
    return default if found is None or found.text is None else str(found.text).strip()


def field_from_xml(path: Path) -> Field:
    """One CustomField file of the package as a sandbox field."""
    root = etree.parse(str(path)).getroot()
    name = _text(root, "fullName") or path.name.split(".")[0]
    kind = _text(root, "type")
    opts: dict[str, Any] = {"name": name, "label": _text(root, "label", name), "custom": True}
    opts["external_id"] = _text(root, "externalId") == "true"
    opts["unique"] = _text(root, "unique") == "true"
    opts["required"] = _text(root, "required") == "true"
    simple = {
        "Text": "string",
        "TextArea": "textarea",
        "LongTextArea": "textarea",
        "Email": "email",
        "Phone": "phone",
        "Url": "url",
        "Checkbox": "boolean",
        "Number": "double",
        "Currency": "currency",
        "Percent": "percent",
        "Date": "date",
        "DateTime": "datetime",
        "Picklist": "picklist",
        "MultiselectPicklist": "multipicklist",
        "Lookup": "reference",
    }
    if kind not in simple:
        raise SchemaError(f"{path}: field type {kind!r} is not supported by the sandbox")
    opts["type"] = simple[kind]
    if kind in ("Text", "LongTextArea", "TextArea"):
        opts["length"] = int(_text(root, "length", "255"))
    elif kind in ("Email", "Phone", "Url"):
        opts["length"] = {"Email": 80, "Phone": 40, "Url": 255}[kind]
    elif kind in ("Number", "Currency", "Percent"):
        opts["precision"] = int(_text(root, "precision", "18"))
        opts["scale"] = int(_text(root, "scale", "0"))
    elif kind == "Checkbox":
        opts["default"] = _text(root, "defaultValue", "false") == "true"
    elif kind in ("Picklist", "MultiselectPicklist"):
        value_set = root.find(MD_NS + "valueSet")
        values = [] if value_set is None else value_set.iter(MD_NS + "value")
        opts["picklist"] = tuple(_text(v, "fullName") for v in values)
        opts["restricted"] = value_set is not None and _text(value_set, "restricted") == "true"
        opts["length"] = 255
    elif kind == "Lookup":
        opts["reference_to"] = (_text(root, "referenceTo"),)
        opts["relationship_name"] = _relationship(name, True)
        opts["length"] = 18
    return Field(**opts)


def _custom_object(directory: Path, prefix: str) -> SObject:
    name = directory.name
    meta = directory / f"{name}.object-meta.xml"
    root = etree.parse(str(meta)).getroot()
    event = name.endswith("__e")
    obj = SObject(name, _text(root, "label", name), prefix, custom=True, event=event)
    _system_fields(obj, owned=not event)
    if event:
        del obj.fields["IsDeleted"], obj.fields["LastModifiedDate"]
        del obj.fields["LastModifiedById"], obj.fields["SystemModstamp"]
        obj.fields["ReplayId"] = Field("ReplayId", "string", "Replay ID", 255, readonly=True)
        obj.fields["EventUuid"] = Field("EventUuid", "string", "Event UUID", 36, readonly=True)
    else:
        name_node = root.find(MD_NS + "nameField")
        label = _text(name_node, "label", "Name") if name_node is not None else "Name"
        if name_node is not None and _text(name_node, "type") == "AutoNumber":
            fmt = _text(name_node, "displayFormat")
            obj.fields["Name"] = Field(
                "Name", "string", label, 80, auto_number=fmt, name_field=True
            )
        else:
            obj.fields["Name"] = Field("Name", "string", label, 80, name_field=True)
    return obj


def default_metadata_dir() -> Path:
    """The package shipped with chronoforce (CHRONOFORCE_SF_METADATA overrides)."""
    env = os.environ.get("CHRONOFORCE_SF_METADATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    # An installed wheel carries the package inside chronoforce/ (setup.py's build hook).
    packaged = here.parents[2] / "salesforce_package" / "force-app" / "main" / "default"
    if packaged.is_dir():
        return packaged
    for parent in here.parents:
        candidate = parent / "salesforce" / "force-app" / "main" / "default"
        if candidate.is_dir():
            return candidate
    raise SchemaError("metadata package not found: set CHRONOFORCE_SF_METADATA")


def shipment_metadata_dir(metadata_dir: Path) -> Path | None:
    """The Shipment package directory next to the base one (salesforce/shipment-app), if there."""
    root = Path(metadata_dir).resolve()
    if len(root.parents) < 3:
        return None
    candidate = root.parents[2] / "shipment-app" / "main" / "default"
    return candidate if candidate.is_dir() else None


def load_schema(
    metadata_dir: Path, shipment_dir: Path | None = None, *, shipment: bool = True
) -> dict[str, SObject]:
    """Standard objects plus everything the package under `metadata_dir` defines.

    The Shipment package directory (`shipment_dir`, by default the one next to `metadata_dir`)
    is loaded on top; `shipment=False` leaves it out, as deployed on an org without Shipment.
    """
    objects = standard_objects()
    custom_count = _load_package(objects, Path(metadata_dir), 0)
    if shipment:
        extra = shipment_dir or shipment_metadata_dir(metadata_dir)
        if extra is not None:
            _load_package(objects, Path(extra), custom_count)
    return objects


def _load_package(objects: dict[str, SObject], metadata_dir: Path, custom_count: int) -> int:
    """Adds the objects and fields of one package directory; answers the custom objects' count."""
    objects_dir = metadata_dir / "objects"
    if not objects_dir.is_dir():
        raise SchemaError(f"{objects_dir} is not a directory")
    for directory in sorted(p for p in objects_dir.iterdir() if p.is_dir()):
        name = directory.name
        if name not in objects:
            if not (directory / f"{name}.object-meta.xml").exists():
                raise SchemaError(f"{directory}: no {name}.object-meta.xml")
            if name.endswith("__e"):
                prefix = "e00"
            else:
                custom_count += 1
                prefix = f"a0{custom_count:X}"
            objects[name] = _custom_object(directory, prefix)
        for path in sorted((directory / "fields").glob("*.field-meta.xml")):
            f = field_from_xml(path)
            objects[name].fields[f.name] = f
    return custom_count


def restrict(
    objects: dict[str, SObject],
    hidden_objects: frozenset[str] = frozenset(),
    hidden_fields: dict[str, frozenset[str]] | None = None,
    read_only_fields: dict[str, frozenset[str]] | None = None,
) -> dict[str, SObject]:
    """The schema as one org (or one user) sees it: without the hidden objects and fields.

    An object the org lacks and one the user may not read answer alike (INVALID_TYPE, 404), and
    so do a missing field and one hidden by field-level security (REAL-ORG-FACTS.md R1, R2, R7).
    Lookups to a hidden object go too (the package's Shipment lookups on an Order-only org).
    `read_only_fields`: readable, not editable for the user (INVALID_FIELD_FOR_INSERT_UPDATE).
    """
    frozen = {k.lower(): {f.lower() for f in v} for k, v in (read_only_fields or {}).items()}
    hidden = {name.lower() for name in hidden_objects}
    by_object = {k.lower(): {f.lower() for f in v} for k, v in (hidden_fields or {}).items()}
    out: dict[str, SObject] = {}
    for name, obj in objects.items():
        if name.lower() in hidden:
            continue
        gone = by_object.get(name.lower(), set())
        kept: dict[str, Field] = {}
        for fname, f in obj.fields.items():
            targets = tuple(r for r in f.reference_to if r.lower() not in hidden)
            if fname.lower() in gone or (f.reference_to and not targets):
                continue
            kept[fname] = replace(f, reference_to=targets) if f.reference_to else f
            if fname.lower() in frozen.get(name.lower(), set()):
                kept[fname] = replace(kept[fname], readonly=True)
        out[name] = SObject(obj.name, obj.label, obj.prefix, kept, obj.custom, obj.event)
    return out


ORDER_ONLY = LICENSED  # the objects an org without Order Management / Field Service lacks
