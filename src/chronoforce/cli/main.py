"""The `chronoforce` command line: the root typer app, mounting one module per command group.

Commands print rich tables for people and `--json` for machines; configuration errors end the
command with a clear message (exit 2), never a traceback. Shared helpers live in `common.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chronoforce import __version__
from chronoforce.cli import address as address_cli
from chronoforce.cli import api as api_cli
from chronoforce.cli import console as console_cli
from chronoforce.cli import demo as demo_cli
from chronoforce.cli import golive as golive_cli
from chronoforce.cli import labels as labels_cli
from chronoforce.cli import manifest as manifest_cli
from chronoforce.cli import mapping as mapping_cli
from chronoforce.cli import pod as pod_cli
from chronoforce.cli import tracking as tracking_cli
from chronoforce.cli import web as web_cli
from chronoforce.cli import worker as worker_cli
from chronoforce.cli.common import console, print_json, settings_from
from chronoforce.cli.exceptions import app as exceptions_app
from chronoforce.sandbox.cli import app as sandbox_app
from chronoforce.store.db import current_revision, make_engine, upgrade

app = typer.Typer(
    help="chronoforce: Salesforce orders shipped through Chronopost.", no_args_is_help=True
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="The store: migrations and state.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(exceptions_app, name="exceptions")
app.add_typer(address_cli.app, name="address")
app.add_typer(mapping_cli.app, name="mapping")
app.add_typer(console_cli.app, name="console")
tracking_cli.register(app)
web_cli.register(app)
labels_cli.register(app)
api_cli.register(app)  # rates, relay-points, pickup, return-label, cancel, api
worker_cli.register(app)
golive_cli.register(app)  # init, doctor, certify
pod_cli.register(app)  # pod SKYBILL (issue 21)

manifest_cli.register(app)  # the end-of-day slip (issue 21)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML configuration file (default: $CHRONOFORCE_CONFIG or ./chronoforce.yaml).",
        ),
    ] = None,
) -> None:
    ctx.obj = {"config_file": config}


@app.command()
def version() -> None:
    """Print chronoforce's version."""
    typer.echo(__version__)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the effective configuration; secrets appear only as *** (set) or null (unset)."""
    data = settings_from(ctx).masked()
    if as_json:
        print_json(data)
        return
    table = Table(title="chronoforce configuration", show_lines=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in _flatten(data):
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """One row per leaf: `routing.rules.0.product`, as the configuration errors name keys."""
    items: Iterable[tuple[Any, Any]] | None = data.items() if isinstance(data, dict) else None
    if isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        items = enumerate(data)
    if items is not None and data:
        rows: list[tuple[str, Any]] = []
        for key, value in items:
            rows.extend(_flatten(value, f"{prefix}{key}."))
        return rows
    return [(prefix.rstrip("."), data)]


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the store's migrations (also done automatically at start-up)."""
    settings = settings_from(ctx)
    engine = make_engine(settings.database_url)
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)} ({engine.url.get_backend_name()})")
    engine.dispose()


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's database and labels.")] = Path(
        "demo-out"
    ),
    orders: Annotated[int, typer.Option(help="Sample orders to seed.")] = 50,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Log lines to the terminal, not to the log file.")
    ] = False,
    order_only: Annotated[
        bool, typer.Option("--order-only", help="An org without the Shipment object.")
    ] = False,
) -> None:
    """End to end on the embedded default: sandboxes, SQLite, sample orders, labels written back."""
    raise typer.Exit(demo_cli.run_demo(out, orders=orders, verbose=verbose, order_only=order_only))


if __name__ == "__main__":
    app()
