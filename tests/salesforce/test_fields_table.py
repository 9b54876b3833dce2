"""The table of Salesforce fields (`salesforce/fields.py`) against the metadata package and the
standard objects, and the rule that no other layer names a custom field by a bare string."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chronoforce.salesforce import fields
from chronoforce.sandbox.salesforce.schema import standard_objects

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    ROOT / "salesforce" / p / "main" / "default" / "objects" for p in ("force-app", "shipment-app")
]
SOURCE = ROOT / "src" / "chronoforce"


def _custom_field_file(sobject: str, api: str) -> Path | None:
    for objects in PACKAGES:
        path = objects / sobject / "fields" / f"{api}.field-meta.xml"
        if path.is_file():
            return path
    return None


@pytest.mark.parametrize(
    "sobject,api",
    sorted({(o, f.api) for f in fields.FIELDS for o in f.objects}),
)
def test_every_field_of_the_table_exists_where_it_says(sobject, api):
    (entry,) = [f for f in fields.FIELDS if f.api == api and sobject in f.objects]
    if entry.only_when:
        pytest.skip(f"{sobject}.{api} exists only when {entry.only_when}")
    if api.endswith("__c"):
        assert _custom_field_file(sobject, api), f"{sobject}.{api} is not in the metadata package"
    else:
        standard = standard_objects()
        assert sobject in standard, f"{sobject} is no standard object the sandbox knows"
        assert api in standard[sobject].fields, f"{sobject}.{api} is no standard field"


def test_the_custom_objects_named_are_in_the_package():
    for name in (fields.TRACKING_EVENT, fields.INTEGRATION_ERROR, fields.SHIP_REQUEST):
        assert any((objects / name).is_dir() for objects in PACKAGES), name


def test_every_field_has_a_meaning_and_a_use():
    for f in fields.FIELDS:
        assert f.objects and f.meaning, f
        assert f.written_by or f.read_by, f"{f.api}: written or read by whom?"
    assert len(fields.FIELDS) == len(set(fields.FIELDS))


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def bare_custom_names(directory: Path) -> list[str]:
    """Every string literal naming a custom field or object (`…__c`) in the code under
    `directory`, docstrings and comments left out (comments are not in the AST)."""
    found = []
    for path in sorted(directory.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "__c" in node.value
                and id(node) not in skip
            ):
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}: {node.value[:60]!r}")
    return found


@pytest.mark.parametrize("layer", ["pipeline", "web"])
def test_no_custom_field_is_named_outside_the_salesforce_adapter(layer):
    assert bare_custom_names(SOURCE / layer) == []


def test_the_scan_sees_a_bare_name_but_not_a_docstring(tmp_path):
    (tmp_path / "bad.py").write_text(
        '"""Writes Chronopost_Status__c."""\n'
        "# Chronopost_Status__c in a comment\n"
        'PAYLOAD = {"Chronopost_Status__c": "x"}\n'
        'QUERY = f"SELECT Order__c FROM {PAYLOAD}"\n'
    )
    global SOURCE
    saved, SOURCE = SOURCE, tmp_path
    try:
        found = bare_custom_names(tmp_path)
    finally:
        SOURCE = saved
    assert [line.split(":")[1] for line in found] == ["3", "4"]
