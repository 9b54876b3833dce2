"""`chronoforce mapping check`: the field mapping compared with the org before anything runs.

Prints one line per problem (or JSON with --json) and exits 1 when there is any, 2 when the
configuration or the org cannot be read. It only reads the org's describe and one LIMIT 1 query.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from chronoforce.cli.common import make_console, settings_from
from chronoforce.domain.errors import ChronoforceError
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.salesforce.mapping_check import check_mapping

app = typer.Typer(help="The Salesforce field mapping.", no_args_is_help=True)


@app.callback()
def mapping() -> None:
    """The Salesforce field mapping (`mapping:` in chronoforce.yaml)."""


@app.command("check")
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare every mapped field with the org's describe; exit 1 when anything is wrong."""
    settings = settings_from(ctx)
    try:
        mapping = MappingConfig.from_settings(settings.mapping)
    except ValidationError as exc:
        typer.echo(f"configuration error: mapping: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        client = SalesforceClient.from_settings(settings)
        problems = check_mapping(client, mapping)
    except ChronoforceError as exc:
        typer.echo(f"cannot read the org: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps([p.as_dict() for p in problems], indent=2))
    elif not problems:
        typer.echo(f"mapping OK: {len(mapping.specs())} fields of {mapping.trigger_object} checked")
    else:
        table = Table(title=f"mapping problems ({mapping.trigger_object})")
        for column in ("key", "field", "object", "problem", "message"):
            table.add_column(column)
        for p in problems:
            table.add_row(p.key, p.path, p.sobject, p.problem, p.message)
        make_console().print(table)
    if problems:
        raise typer.Exit(1)
