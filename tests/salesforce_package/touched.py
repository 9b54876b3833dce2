"""The Salesforce objects and fields chronoforce's code reads and writes, derived from the code.

Used by test_permission_sets.py to check the integration user's permission set. Three sources,
all read from the code as it is (so a field another change adds is caught):
- the SOQL the mapping presets produce (salesforce/mapping.py), both trigger objects;
- every SOQL statement written in src/chronoforce (string constants and f-strings);
- every write payload: dict literals whose keys are fields of an object the code writes, where
  written objects are the `sf_object=` / `"type":` / create-upsert-update arguments in the code.
Field and relationship names are resolved with the sandbox's schema, which is the package's
metadata plus the standard objects' fields (sandbox/salesforce/schema.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chronoforce.salesforce import fields as field_table
from chronoforce.salesforce.mapping import MappingConfig, items_soql, soql_for_trigger
from chronoforce.sandbox.salesforce.schema import SObject, default_metadata_dir, load_schema

SRC = Path(__file__).resolve().parents[2] / "src" / "chronoforce"
_SELECT = re.compile(r"SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)", re.S | re.I)
_WRITE_CALLS = {"create", "upsert", "update", "insert", "create_record", "update_record"}


@dataclass
class Touched:
    read: dict[str, set[str]] = field(default_factory=dict)  # object → fields
    written: dict[str, set[str]] = field(default_factory=dict)
    written_objects: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)  # mapping paths no schema field matches

    def objects(self) -> set[str]:
        return set(self.read) | set(self.written) | self.written_objects


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if "sandbox" in path.relative_to(SRC).parts:
            continue  # the sandbox plays Salesforce: what it touches is not chronoforce's
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _table_name(node: ast.AST) -> str | None:
    """A name of salesforce/fields.py as the code writes it: `STATUS.api`, `fields.STATUS.api`,
    `TRACKING_EVENT`, `fields.MANIFEST` → the API name it stands for."""

    def entry(name: str) -> object:
        return getattr(field_table, name, None)

    if isinstance(node, ast.Attribute) and node.attr == "api":
        inner = node.value
        if isinstance(inner, ast.Name):
            found = entry(inner.id)
        elif isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name):
            found = entry(inner.attr) if inner.value.id == "fields" else None
        else:
            found = None
        return found.api if isinstance(found, field_table.SalesforceField) else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        found = entry(node.attr) if node.value.id == "fields" else None
        return found if isinstance(found, str) else None
    if isinstance(node, ast.Name):
        found = entry(node.id)
        return found if isinstance(found, str) else None
    return None


def _text(node: ast.AST, names: dict[str, str] | None = None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and names and node.id in names:
        return names[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue):
                parts.append(_text(v.value, names) or "X")
            else:
                parts.append("X")
        return "".join(parts)
    return _table_name(node)


def _resolve(schema: dict[str, SObject], obj: str, path: str) -> tuple[str, str] | None:
    """`Order__r.ShipToContact.Phone` from Shipment → (Contact, Phone)."""
    current = schema.get(obj)
    *hops, last = path.split(".")
    for hop in hops:
        if current is None:
            return None
        ref = next((f for f in current.fields.values() if f.relationship_name == hop), None)
        if ref is None or not ref.reference_to:
            return None
        current = schema.get(ref.reference_to[0])
    if current is None or last not in current.fields:
        return None
    return current.name, last


def _add_select(
    touched: Touched, schema: dict[str, SObject], soql: str, strict: bool = False
) -> None:
    for match in _SELECT.finditer(soql):
        obj = match["object"]
        if obj not in schema:
            continue
        touched.read.setdefault(obj, set())
        for item in match["fields"].split(","):
            item = item.strip()
            if not re.fullmatch(r"[\w.]+", item):
                continue
            found = _resolve(schema, obj, item)
            if found:
                touched.read.setdefault(found[0], set()).add(found[1])
            elif strict:
                touched.unresolved.add(f"{obj}.{item}")


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "text" assignments (EVENT_OBJECT = "Chronopost_Tracking_Event__c"),
    and names of the field table (EVENT_OBJECT = TRACKING_EVENT, FIELD = POD_STATUS.api)."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            value = _text(node.value, out)
            if value is None:
                continue
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = value
    return out


def _scopes(tree: ast.Module) -> list[ast.AST]:
    """Each function (methods included) is one scope; the module's top level is another."""
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [tree, *functions]


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a scope, not descending into nested functions."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(ast.iter_child_nodes(node))


def _address_fields(touched: Touched, schema: dict[str, SObject]) -> None:
    """The console's (and the agent API's) address fix writes the mapped address fields."""
    from chronoforce.store.models import Shipment
    from chronoforce.web.console.actions import address_fields

    for trigger in ("Order", "Shipment"):
        mapping = MappingConfig.model_validate({"trigger_object": trigger})
        for f in address_fields(Shipment(source={"record": {}}), mapping):
            if f.sf_field in schema[trigger].fields:
                touched.written.setdefault(trigger, set()).add(f.sf_field)
                touched.written_objects.add(trigger)


def derive() -> Touched:
    schema = load_schema(default_metadata_dir())
    touched = Touched()
    for trigger in ("Order", "Shipment"):
        mapping = MappingConfig.model_validate({"trigger_object": trigger})
        _add_select(touched, schema, soql_for_trigger(mapping), strict=True)
        _add_select(touched, schema, items_soql(mapping, ["801000000000001AAA"]), strict=True)
    scoped: list[tuple[set[str], set[str]]] = []  # (objects named, payload keys) per scope
    for _, tree in _sources():
        constants = _constants(tree)

        def text(node: ast.AST, constants: dict[str, str] = constants) -> str | None:
            if isinstance(node, ast.Name) and node.id in constants:
                return constants[node.id]
            return _text(node, constants)

        for scope in _scopes(tree):
            named: set[str] = set()
            keys: set[str] = set()
            dynamic = False  # a write whose object is not written out: the trigger object
            for node in _own_nodes(scope):
                value = text(node)
                if value and "SELECT" in value.upper():
                    _add_select(touched, schema, value)
                if isinstance(node, ast.keyword) and node.arg in ("sf_object", "sobject"):
                    if text(node.value) in schema:
                        touched.written_objects.add(str(text(node.value)))
                    else:
                        dynamic = True
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    if name in _WRITE_CALLS or "enqueue" in name:
                        for arg in node.args[:1]:
                            if text(arg) in schema:
                                touched.written_objects.add(str(text(arg)))
                if isinstance(node, ast.Dict):
                    for key, item in zip(node.keys, node.values, strict=True):
                        key_text = text(key) if key is not None else None
                        if key_text == "type" and text(item) in schema:
                            touched.written_objects.add(str(text(item)))
                        elif key_text:
                            keys.add(key_text)
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                    key_text = text(node.slice)
                    if key_text:
                        keys.add(key_text)
                if value in schema:
                    named.add(value)
            scoped.append((named | ({"Order", "Shipment"} if dynamic else set()), keys))
    for named, keys in scoped:
        for obj in named & touched.written_objects:
            fields = schema[obj].fields
            written = {k for k in keys if k in fields and not fields[k].readonly}
            if written:
                touched.written.setdefault(obj, set()).update(written)
    _address_fields(touched, schema)
    return touched
