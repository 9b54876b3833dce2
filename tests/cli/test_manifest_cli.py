"""`chronoforce manifest`: the day's slips as PDF files, their Salesforce record; mistakes are one
line and a non-zero exit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.pipeline.manifest import MANIFEST_OBJECT, pickup_day
from chronoforce.pipeline.pickup_times import PARIS
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel

from .conftest import CliWorld


def invoke(world: CliWorld, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=world.env)


def one_line(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def rows_of(result: Any) -> list[dict[str, Any]]:
    """The command's JSON array (the log lines of this world's configuration come before it)."""
    assert result.exit_code == 0, result.output
    start = result.output.index("\n[") + 1 if not result.output.startswith("[") else 0
    rows: list[dict[str, Any]] = json.loads(result.output[start:])
    return rows


def test_a_bad_date_is_one_line_and_exit_2(cli_world: CliWorld) -> None:
    assert "--date '2026-13-01' is not a day" in one_line(
        invoke(cli_world, "manifest", "--date", "2026-13-01"), 2
    )
    assert "is not a Chronopost account number" in one_line(
        invoke(cli_world, "manifest", "--date", "2026-12-01", "--account", "abc"), 2
    )


def test_the_days_slip_is_written_and_sent_then_found_again(
    cli_world: CliWorld, tmp_path: Path
) -> None:
    assert invoke(cli_world, "sync").exit_code == 0
    store = Store(cli_world.database_url)
    with store.session() as session:
        live = list(session.scalars(select(Parcel).where(Parcel.live)))
        assert live
        day = pickup_day(live[0].shipment, live[0], PARIS)
        numbers = {p.skybill_number for p in live}
    result = invoke(cli_world, "manifest", "--date", day.isoformat(), "--out", str(tmp_path),
                    "--json")  # fmt: skip
    (row,) = rows_of(result)
    assert row["parcels"] == len(numbers) and row["version"] == 1
    pdf = Path(row["file"]).read_bytes()
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert all(n in text for n in numbers)
    (record,) = cli_world.org.records(MANIFEST_OBJECT)
    assert row["salesforce_id"] == record["Id"]
    # Again: the same slip, nothing new.
    again = invoke(cli_world, "manifest", "--date", day.isoformat(), "--out", str(tmp_path),
                   "--json")  # fmt: skip
    assert [(r["id"], r["version"]) for r in rows_of(again)] == [(row["id"], 1)]
    assert len(cli_world.org.records(MANIFEST_OBJECT)) == 1


def test_a_day_without_parcels_says_so(cli_world: CliWorld, tmp_path: Path) -> None:
    result = invoke(cli_world, "manifest", "--date", "2001-01-01", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "no parcel handed over on 2001-01-01" in result.output
    assert not list(tmp_path.iterdir())
