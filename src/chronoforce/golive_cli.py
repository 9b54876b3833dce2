"""`chronoforce init`, `doctor` and `certify`: from a fresh install to production credentials.

`init` writes a commented configuration and asks for nothing secret; `doctor` checks a first
connection to every configured service (pipeline/doctor.py) and exits 1 when any check fails;
`certify` makes the sample labels Chronopost validates before it issues production credentials.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chronoforce.config import ConfigError, Settings, load_settings


def _settings(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    try:
        return load_settings(obj.get("config_file"))
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check everything a first connection needs: Salesforce, Chronopost, database, queue."""
    from chronoforce.pipeline.doctor import run_checks
    from chronoforce.worker import worker_config

    settings = _settings(ctx)
    checks = run_checks(settings, worker_config(settings.worker).queue_name)
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        table = Table(title=f"chronoforce doctor ({settings.source})")
        for column in ("", "area", "check", "what was seen", "what to do"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row("✔" if c.ok else "✘", c.area, c.name, c.detail, c.fix)
        Console(width=160).print(table)
        failed = sum(1 for c in checks if not c.ok)
        typer.echo(
            f"{len(checks) - failed} of {len(checks)} checks hold"
            + (f"; {failed} to fix" if failed else "")
        )
    if any(not c.ok for c in checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `doctor` to the root app."""
    app.command("doctor")(doctor)
