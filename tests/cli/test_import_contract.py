"""The import contract of docs/architecture.md (pyproject's [tool.importlinter], run by `make
lint`): it holds for the code as it is, and it fails once a forbidden import is added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contract over the `chronoforce` package in root/src."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    """A copy of the package, to break on purpose."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "src" / "chronoforce", tmp_path / "src" / "chronoforce", ignore=ignore)
    return tmp_path


def add_import(copy: Path, module: str, line: str) -> None:
    path = copy / "src" / "chronoforce" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_contract_holds_for_the_code_as_it_is(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("domain/models.py", "import chronoforce.store.db", "layers"),
        ("store/db.py", "import chronoforce.pipeline.labels", "layers"),
        ("web/app.py", "import chronoforce.chronopost.client", "web never imports"),
        ("pipeline/labels.py", "import chronoforce.sandbox.server", "only the CLI's sandbox"),
        ("cli/labels.py", "import chronoforce.sandbox.tls", "only the CLI's sandbox"),
        ("sandbox/server.py", "import chronoforce.store.db", "the sandboxes import nothing"),
        ("cli/common.py", "import chronoforce.cli.labels", "no import cycles"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    copy: Path, module: str, line: str, contract: str
) -> None:
    add_import(copy, module, line)
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert any(row.startswith(contract) for row in broken), result.stdout
