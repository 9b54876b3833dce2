"""The API's layer rules, read from the source: web/ never reaches the Chronopost client, and
the API's modules leave the store's tables and the outbox flusher to the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import chronoforce.web

WEB = Path(chronoforce.web.__file__).parent
API_MODULES = ("api.py", "api_service.py", "api_models.py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_web_module_imports_the_chronopost_client() -> None:
    found = {
        str(path.relative_to(WEB)): name
        for path in WEB.rglob("*.py")
        for name in _imports(path)
        if name.startswith("chronoforce.chronopost")
    }
    assert not found


def test_the_api_leaves_tables_and_the_flusher_to_the_pipeline() -> None:
    forbidden = (
        "chronoforce.store.models",
        "chronoforce.store.ops",
        "chronoforce.pipeline.writeback",
    )
    found = {
        (module, name)
        for module in API_MODULES
        for name in _imports(WEB / module)
        if name.startswith(forbidden)
    }
    assert not found
