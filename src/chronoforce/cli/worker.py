"""`chronoforce worker` and `chronoforce status`: scale-out processes and what they are doing."""

from __future__ import annotations

from typing import Annotated

import typer

from chronoforce.cli.common import JsonOption, print_json, settings_from
from chronoforce.cli.status import collect, render
from chronoforce.config import ConfigError
from chronoforce.worker import run_worker


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        ctx: typer.Context,
        concurrency: Annotated[
            int, typer.Option(help="Label threads in this process (default: worker.concurrency).")
        ] = 0,
    ) -> None:
        """Consume label tasks and share the periodic jobs with every other worker (SIGTERM
        stops it gracefully)."""
        settings = settings_from(ctx)
        try:
            code = run_worker(settings, concurrency or None)
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        raise typer.Exit(code)

    @app.command()
    def status(
        ctx: typer.Context,
        as_json: JsonOption = False,
    ) -> None:
        """Queue depth, leases held, oldest pending work, API budget, circuit breaker."""
        report = collect(settings_from(ctx))
        if as_json:
            print_json(report)
        else:
            render(report)
