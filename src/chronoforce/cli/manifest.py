"""`chronoforce manifest --date D`: the day's end-of-day slips (PDF), made or found, written out.

The slips are made by the pipeline (pipeline/manifest.py): once per account, sub-account,
location and pickup day, again only when the day's parcel list changed. The command writes each
PDF into `--out`, sends the Salesforce writes it queued (the slip's record and file), and prints
one row per slip. A bad date ends it with one line, exit 2.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chronoforce.cli.common import JsonOption, console, fail, print_json, runtime_of
from chronoforce.domain.errors import ChronoforceError
from chronoforce.pipeline.manifest import Manifests


def register(app: typer.Typer) -> None:
    @app.command()
    def manifest(
        ctx: typer.Context,
        date: Annotated[str, typer.Option("--date", help="Pickup day, YYYY-MM-DD.")],
        account: Annotated[
            str | None, typer.Option("--account", help="Only this Chronopost account number.")
        ] = None,
        out: Annotated[Path, typer.Option("--out", help="Folder for the PDF files.")] = Path("."),
        as_json: JsonOption = False,
    ) -> None:
        """Make (or find) the day's end-of-day slips, write their PDFs, send them to Salesforce."""
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            fail(f"--date {date!r} is not a day (YYYY-MM-DD)", 2)
        if account is not None and not account.strip().isdigit():
            fail(f"--account {account!r} is not a Chronopost account number (digits)", 2)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--out {str(out)!r}: {exc.strerror}", 2)
        runtime = runtime_of(ctx)
        try:
            manifests = Manifests.from_settings(
                runtime.settings, runtime.store, runtime.mapping, runtime.now
            )
            path_of: dict[int, Path] = {}
            for slip in manifests.build(day, account):
                path_of[slip.id] = out / slip.filename
                path_of[slip.id].write_bytes(manifests.pdf(slip.id)[1])
            runtime.flush()  # the slips' records and files; the listing then knows their ids
            slips = [s for s in manifests.list(day, account) if s.id in path_of]
        except ChronoforceError as exc:
            fail(f"slip not made: {exc}")
        finally:
            runtime.close()
        rows = [
            {
                "id": s.id,
                "account": s.account_number,
                "sub_account": s.sub_account,
                "location": s.location,
                "day": s.day.isoformat(),
                "version": s.version,
                "parcels": s.parcel_count,
                "weight_kg": str(s.total_weight_kg),
                "salesforce_id": s.sf_id,
                "file": str(path_of[s.id]),
            }
            for s in slips
        ]
        if as_json:
            print_json(rows)
            return
        if not rows:
            console.print(f"no parcel handed over on {day.isoformat()}: no slip")
            return
        table = Table(title=f"end-of-day slips, {day.isoformat()}")
        for column in ("account", "sub_account", "location", "version", "parcels", "weight_kg",
                       "salesforce_id", "file"):  # fmt: skip
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row[c]) for c in (
                "account", "sub_account", "location", "version", "parcels", "weight_kg",
                "salesforce_id", "file")))  # fmt: skip
        console.print(table)
