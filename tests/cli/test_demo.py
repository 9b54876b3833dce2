"""`chronoforce demo` as a first impression, run as a user runs it (a subprocess, both sandboxes).

The output is a progress bar, the table with its case column (the showcase orders and one return
label), the totals and where the files are; log lines go to the demo folder's log file unless
`--verbose`. The Makefile's demo installs the product without the test tools, in either order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "chronoforce.cli", "demo"]
REPO = Path(__file__).resolve().parents[2]


def run_demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """12 orders (the 5 showcase cases and a broken one); the table as wide as it needs."""
    return subprocess.run(
        [*CLI, "--out", str(out), "--orders", "12", *extra],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def is_log_line(line: str) -> bool:
    """A structlog line: JSON (off a terminal) or the console renderer's `[info     ]`."""
    text = line.strip()
    if text.startswith("{"):
        try:
            json.loads(text)
            return True
        except ValueError:
            return False
    return bool(re.search(r"\[(debug|info|warning|error)\s*\]", text))


def table_row(stdout: str, case: str) -> list[str]:
    """The cells of the first table row whose case cell is `case`."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 6 and cells[1] == case:
            return cells
    raise AssertionError(f"no row with case {case!r} in:\n{stdout}")


def test_demo_shows_progress_table_cases_and_paths_and_logs_to_its_file(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    done = run_demo(out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    stdout = done.stdout
    assert re.search(r"labels made \d+/12 .* exceptions \d+", stdout)
    assert "chronoforce demo: orders → labels" in stdout
    # The showcase orders, as worked out from what was shipped, and the return label.
    relay = table_row(stdout, "relay 2001R")
    assert relay[0] == "00000001" and relay[3], relay  # labeled
    for case in ("international DE (EU)", "international GB (non-EU)"):
        assert table_row(stdout, case)[3], case
    # Service 6 goes on the label only when delivery really falls on a Saturday (shipped on a
    # Friday); any other day the table says the order asked for it and routing did not use it.
    saturday = [c for c in _cases(stdout) if c in ("Saturday", "Saturday asked, not used")]
    assert len(saturday) == 1, _cases(stdout)
    assert any(re.fullmatch(r"insured \d+\.\d\d EUR", line) for line in _cases(stdout))
    back = table_row(stdout, "return")
    assert back[2] == "4T" and re.fullmatch(r"[A-Z]{2}\d{9}FR", back[3]), back
    outbound = table_row_for_order(stdout, back[0])
    assert outbound[3] != back[3]  # the order's own label stays beside its return
    assert re.search(r"\d+ labeled, 1 return label, \d+ exceptions, \d+ label files", stdout)
    assert (out / "labels" / f"{back[3]}.pdf").read_bytes().startswith(b"%PDF")
    for path in (out / "labels", out / "chronoforce.db", out / "chronoforce.log"):
        assert str(path.resolve()) in stdout
    # No log line on the terminal; the log file has them, the return label among them.
    assert not [line for line in stdout.splitlines() if is_log_line(line)]
    assert not [line for line in done.stderr.splitlines() if is_log_line(line)], done.stderr
    logged = [json.loads(line) for line in (out / "chronoforce.log").read_text().splitlines()]
    events = {entry["event"] for entry in logged}
    assert {"label created", "demo return label"} <= events


def _cases(stdout: str) -> list[str]:
    return [
        cells[1]
        for line in stdout.splitlines()
        if len(cells := [c.strip() for c in line.strip().strip("│").split("│")]) == 6
    ]


def table_row_for_order(stdout: str, order: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 6 and cells[0] == order and cells[1] != "return":
            return cells
    raise AssertionError(f"no outbound row for {order}")


def test_demo_verbose_prints_log_lines_and_writes_no_log_file(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    done = run_demo(out, "--verbose")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "label created" in done.stderr
    assert [line for line in done.stderr.splitlines() if is_log_line(line)]
    assert not (out / "chronoforce.log").exists()
    assert "chronoforce demo: orders → labels" in done.stdout


def test_demo_order_only(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    done = run_demo(out, "--order-only")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "(Order-only org)" in done.stdout
    assert re.search(r"[1-9]\d* labeled", done.stdout)


# --- the Makefile: `make demo` installs the product only; `make test` the test tools too --------


@pytest.fixture
def make_dir(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def pip_installs(where: Path, target: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target], cwd=where, capture_output=True, text=True, check=True
    )
    return [line for line in done.stdout.splitlines() if "pip install --quiet -e" in line]


def test_make_demo_installs_the_product_without_the_test_tools(make_dir: Path) -> None:
    assert pip_installs(make_dir, "demo") == [".venv/bin/pip install --quiet -e ."]
    assert pip_installs(make_dir, "install") == [".venv/bin/pip install --quiet -e '.[test]'"]


def test_make_demo_after_the_test_install_installs_nothing_more(make_dir: Path) -> None:
    venv = make_dir / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed").touch()  # what the test install's recipe leaves
    (venv / ".installed-runtime").touch()
    assert pip_installs(make_dir, "demo") == []


def test_make_test_after_the_demo_install_still_installs_the_test_tools(make_dir: Path) -> None:
    venv = make_dir / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-runtime").touch()  # what the demo install's recipe leaves
    assert pip_installs(make_dir, "demo") == []
    assert pip_installs(make_dir, "install") == [".venv/bin/pip install --quiet -e '.[test]'"]
