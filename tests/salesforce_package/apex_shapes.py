"""What the package's Apex expects of chronoforce's API, read from the Apex source, and the check
of it against the app's OpenAPI document (used by test_apex_openapi.py).

Apex classes marked `OpenAPI: Name` (an answer) or `OpenAPI request: Name` (a body sent) in the
doc comment just above them mirror that schema's JSON field names; path templates are the string
literals passed with an HTTP method ('POST', '/orders/{0}/label').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLASSES = REPO / "salesforce" / "force-app" / "main" / "default" / "classes"

_MARKED = re.compile(
    r"/\*\*(?P<doc>(?:(?!\*/).)*?)OpenAPI(?P<request> request)?:\s*(?P<schema>\w+)(?:(?!\*/).)*\*/"
    r"\s*public\s+(?:with\s+sharing\s+|without\s+sharing\s+)?class\s+(?P<apex>\w+)\s*\{",
    re.S,
)
_FIELD = re.compile(
    r"^\s*(?:@AuraEnabled\s+)?public\s+(?P<type>[\w<>, .]+?)\s+(?P<name>\w+)\s*(?:=[^;]*)?;", re.M
)
_ENDPOINT = re.compile(r"ENDPOINT\s*=\s*'callout:\w+(/[^']*)'")
_CALL = re.compile(r"'(?P<method>GET|POST|PUT|PATCH|DELETE)',\s*'(?P<path>/[^']*)'")

# Apex type → the JSON Schema types it can carry.
_PRIMITIVE = {
    "String": {"string"},
    "Id": {"string"},
    "Integer": {"integer"},
    "Long": {"integer"},
    "Decimal": {"number", "integer"},
    "Double": {"number", "integer"},
    "Boolean": {"boolean"},
    "Date": {"string:date"},
    "Datetime": {"string:date-time"},
}


@dataclass(frozen=True)
class ApexShape:
    file: str
    apex_class: str
    schema: str
    request: bool
    fields: dict[str, str]  # JSON name → Apex type


def _body(text: str, start: int) -> str:
    """The text of the class body opened at `start` (just after its `{`), nested braces kept."""
    depth, i = 1, start
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start : i - 1]


def shapes(sources: dict[str, str]) -> list[ApexShape]:
    found = []
    for name, text in sorted(sources.items()):
        for match in _MARKED.finditer(text):
            body = _body(text, match.end())
            fields = {m["name"]: m["type"].replace(" ", "") for m in _FIELD.finditer(body)}
            found.append(
                ApexShape(name, match["apex"], match["schema"], bool(match["request"]), fields)
            )
    return found


def paths(sources: dict[str, str]) -> list[tuple[str, str, str]]:
    """(file, method, path template) of every API call the Apex makes."""
    return [
        (name, m["method"], m["path"])
        for name, text in sorted(sources.items())
        for m in _CALL.finditer(text)
    ]


def read_sources() -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CLASSES.glob("*.cls"))
        if not p.stem.endswith("Test") and p.stem != "ChronoforceHttpMock"
    }


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref and drop the `null` branch of an optional field."""
    if "$ref" in schema:
        return _resolve(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec)
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        return _resolve(branches[0], spec)
    return schema


def _kinds(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type", "object" if "properties" in schema else "")
    fmt = schema.get("format")
    if kind == "string" and fmt in ("date", "date-time"):
        return {f"string:{fmt}", "string"}
    return {kind}


def _type_problem(apex_type: str, prop: dict[str, Any], spec: dict[str, Any]) -> str:
    resolved = _resolve(prop, spec)
    kinds = _kinds(resolved)
    list_of = re.fullmatch(r"List<(.+)>", apex_type)
    if list_of:
        if "array" not in kinds:
            return f"Apex List, API {sorted(kinds)}"
        return _type_problem(list_of[1], resolved.get("items", {}), spec)
    if apex_type.startswith("Map<"):
        return "" if "object" in kinds else f"Apex Map, API {sorted(kinds)}"
    if apex_type in _PRIMITIVE:
        wanted = _PRIMITIVE[apex_type]
        # A date or date-time answered as text still fits an Apex String.
        if wanted & kinds or (apex_type == "String" and "string" in kinds):
            return ""
        return f"Apex {apex_type}, API {sorted(kinds)}"
    # An Apex class: the API must answer an object there.
    return "" if "object" in kinds else f"Apex class {apex_type}, API {sorted(kinds)}"


def problems(sources: dict[str, str], spec: dict[str, Any]) -> list[str]:
    """Every way the Apex and the OpenAPI document disagree (empty when they agree)."""
    out: list[str] = []
    schemas = spec["components"]["schemas"]
    for shape in shapes(sources):
        where = f"{shape.file}: {shape.apex_class} (OpenAPI {shape.schema})"
        schema = schemas.get(shape.schema)
        if schema is None:
            out.append(f"{where}: no such schema in /openapi.json")
            continue
        props: dict[str, Any] = schema.get("properties", {})
        for name, apex_type in shape.fields.items():
            if name not in props:
                out.append(f"{where}: field {name} is not in the API's {shape.schema}")
                continue
            problem = _type_problem(apex_type, props[name], spec)
            if problem:
                out.append(f"{where}: field {name}: {problem}")
        if shape.request:
            for name in schema.get("required", []):
                if name not in shape.fields:
                    out.append(f"{where}: the API requires {name}, the Apex never sends it")
    by_shape = {re.sub(r"\{\w+\}", "{}", p): p for p in spec["paths"]}
    for file, method, template in paths(sources):
        # A class that calls through ChronoforceApi.call takes that class's endpoint.
        base = _ENDPOINT.search(sources[file]) or _ENDPOINT.search(
            sources.get("ChronoforceApi.cls", "")
        )
        path, _, query = template.partition("?")
        found = by_shape.get(re.sub(r"\{\w+\}", "{}", (base[1] if base else "") + path))
        operation = spec["paths"][found].get(method.lower()) if found else None
        if operation is None:
            out.append(f"{file}: {method} {template}: no such operation in /openapi.json")
            continue
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        for pair in filter(None, query.split("&")):
            name = pair.split("=", 1)[0]
            if name not in declared:
                out.append(f"{file}: {method} {template}: query parameter {name} is not declared")
    return out
