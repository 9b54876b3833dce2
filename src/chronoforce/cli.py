"""The `chronoforce` command line: one typer app, with a sub-app per concern.

Commands print rich tables for people and `--json` for machines; configuration errors end the
command with a clear message (exit 2), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from chronoforce import (
    __version__,
    address_cli,
    api_cli,
    console_cli,
    golive_cli,
    labels_cli,
    mapping_cli,
    tracking_cli,
    worker_cli,
)
from chronoforce.config import ConfigError, Settings, load_settings
from chronoforce.exceptions_cli import app as exceptions_app
from chronoforce.logs import configure_logging
from chronoforce.sandbox.cli import app as sandbox_app

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
labels_cli.register(app)
api_cli.register(app)  # rates, relay-points, pickup, return-label, cancel, api
worker_cli.register(app)
golive_cli.register(app)  # init, doctor, certify

console = Console()


def settings_from(ctx: typer.Context) -> Settings:
    """The settings of this invocation, loaded once (errors end the command cleanly)."""
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = load_settings(root.obj.get("config_file"))
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        cfg = root.obj["settings"].logging
        configure_logging(cfg.level, cfg.format)
    settings: Settings = root.obj["settings"]
    return settings


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


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
    if isinstance(data, dict) and data:
        rows: list[tuple[str, Any]] = []
        for key, value in data.items():
            rows.extend(_flatten(value, f"{prefix}{key}."))
        return rows
    return [(prefix.rstrip("."), data)]


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the store's migrations (also done automatically at start-up)."""
    from chronoforce.store.db import current_revision, make_engine, upgrade

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
) -> None:
    """End to end on the embedded default: sandboxes, SQLite, sample orders, labels written back."""
    from chronoforce.demo import run_demo

    raise typer.Exit(run_demo(out, orders=orders))


if __name__ == "__main__":
    app()
