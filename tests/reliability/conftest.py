"""The reliability suite's shared summary: every scenario adds one row, printed at the end.

A row says what was thrown at chronoforce (orders, kills, faults) and what came out (labels,
duplicates, lost, retries); duplicates and lost must be 0, and each test asserts that itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

COLUMNS = (
    "scenario",
    "orders",
    "kills",
    "faults",
    "labels",
    "exceptions",
    "duplicates",
    "lost",
    "retries",
)


@dataclass
class SummaryRow:
    scenario: str
    orders: int = 0
    kills: int = 0
    faults: int = 0
    labels: int = 0
    exceptions: int = 0
    duplicates: int = 0
    lost: int = 0
    retries: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


_ROWS: list[SummaryRow] = []


@pytest.fixture()
def reliability_summary() -> Iterator[list[SummaryRow]]:
    """Append a `SummaryRow` (after the assertions you want it to reflect)."""
    yield _ROWS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ROWS:
        return
    tr = terminalreporter
    tr.section("reliability summary")
    widths = [max(len(c), *(len(str(asdict(r)[c])) for r in _ROWS)) for c in COLUMNS]
    tr.write_line("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for row in _ROWS:
        data = asdict(row)
        tr.write_line(
            "  ".join(str(data[c]).rjust(w) for c, w in zip(COLUMNS, widths, strict=True))
        )
