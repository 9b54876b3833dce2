"""`chronoforce exceptions …`: review, retry and resolve what chronoforce could not do alone."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from chronoforce.cli.common import console, fail, print_json, settings_from
from chronoforce.pipeline import exceptions
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow

STATES = ("open", "retrying", "resolved", "all")  # the `state` column's values (store/models.py)

app = typer.Typer(
    help="Failures kept for review: list, show, retry, resolve.", no_args_is_help=True
)


def _store(ctx: typer.Context) -> Store:
    return Store(settings_from(ctx).database_url)


def as_dict(row: ExceptionRow, payloads: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "state": row.state,
        "kind": row.kind,
        "sf_object": row.sf_object,
        "sf_id": row.sf_id,
        "operation": row.operation,
        "code": row.code,
        "field": row.field,
        "message": row.message,
        "attempts": row.attempts,
        "transient": row.transient,
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "shipment_id": row.shipment_id,
        "resolution_note": row.resolution_note,
    }
    if payloads:
        data["request_payload"] = row.request_payload
        data["response_payload"] = row.response_payload
    return data


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str, typer.Option(help="open, retrying, resolved or all.")] = "open",
    kind: Annotated[str | None, typer.Option(help="address, carrier_validation, …")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List exceptions, newest first."""
    if state not in STATES:
        fail(f"unknown state {state!r}: one of {', '.join(STATES)}", 2)
    if kind is not None and kind not in exceptions.KINDS:
        fail(f"unknown kind {kind!r}: one of {', '.join(exceptions.KINDS)}", 2)
    store = _store(ctx)
    with store.session() as session:
        rows = [as_dict(r) for r in exceptions.open_rows(session, kind, state)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        which = "" if state == "all" else f"{state} "
        typer.echo(f"no {which}exceptions" + (f" of kind {kind}" if kind else ""))
        return
    table = Table(title=f"exceptions ({state})")
    for column in ("id", "kind", "record", "field", "code", "message", "attempts"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            f"{r['sf_object']} {r['sf_id']}",
            r["field"],
            r["code"],
            r["message"][:70],
            str(r["attempts"]),
        )
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    exception_id: Annotated[int, typer.Argument(help="The exception's id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One exception with its redacted request and response payloads."""
    with _store(ctx).session() as session:
        row = session.get(ExceptionRow, exception_id)
        if row is None:
            typer.echo(f"no exception {exception_id}", err=True)
            raise typer.Exit(1)
        data = as_dict(row, payloads=True)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False, markup=True)


@app.command()
def retry(
    ctx: typer.Context,
    exception_id: Annotated[int | None, typer.Argument(help="The exception's id.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every open exception.")] = False,
) -> None:
    """Put failed work back in line (the worker picks it up; `chronoforce run` or `sync`)."""
    if exception_id is None and not all_:
        typer.echo("give an exception id or --all", err=True)
        raise typer.Exit(2)
    store = _store(ctx)
    with store.session() as session:
        ids = [r.id for r in exceptions.open_rows(session)] if all_ else [exception_id or 0]
        try:
            shipments = [exceptions.retry(session, i) for i in ids]
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
    typer.echo(
        f"{len(ids)} exception(s) put back in line ({sum(1 for s in shipments if s)} labels)"
    )


@app.command()
def resolve(
    ctx: typer.Context,
    exception_id: Annotated[int, typer.Argument(help="The exception's id.")],
    note: Annotated[str, typer.Option(help="Why it is resolved.")] = "resolved by hand",
) -> None:
    """Mark an exception resolved, with a note (a resolved one keeps its note)."""
    with _store(ctx).session() as session:
        row = session.get(ExceptionRow, exception_id)
        if row is not None and row.state == "resolved":
            fail(f"exception {exception_id} is already resolved: {row.resolution_note!r}")
        try:
            exceptions.resolve(session, exception_id, note)
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"exception {exception_id} resolved")
