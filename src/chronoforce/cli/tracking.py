"""`chronoforce track` and `chronoforce poll`: tracking from the command line.

`register(app)` adds the commands to the root typer app (cli/main.py mounts it). Commands print a
rich timeline for people and `--json` for machines; they never print a secret.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import or_, select

from chronoforce.chronopost import ChronopostClient
from chronoforce.cli.common import console, fail, settings_from
from chronoforce.config import Settings
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.status import map_event
from chronoforce.pipeline.tracking import (
    Poller,
    Tracking,
    flush,
    process_inbox,
    utc,
)
from chronoforce.pipeline.tracking.delta import tracking_round
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.store.db import Store
from chronoforce.store.models import Event, Parcel, Shipment


def _settings(ctx: typer.Context) -> Settings:
    return settings_from(ctx)


def carrier_of(settings: Settings) -> ChronopostClient:
    return ChronopostClient.from_settings(settings)


def salesforce_of(settings: Settings) -> Any:
    # Any: SalesforceClient's typed results do not yet match pipeline.ports.SalesforcePort.
    return SalesforceClient.from_settings(settings)


def _status_name(code: str, extra_codes: dict[str, str]) -> str:
    status = map_event(code, extra_codes).status
    return status.value if status else ""


def _timeline(store: Store, skybills: list[str], config: Any) -> list[dict[str, Any]]:
    with store.session() as session:
        rows = session.scalars(
            select(Event)
            .where(Event.skybill_number.in_(skybills))
            .order_by(Event.event_time, Event.id)
        ).all()
        return [
            {
                "skybill": row.skybill_number,
                "time": utc(row.event_time).isoformat(),
                "code": row.code,
                "label": row.label,
                "place": row.place,
                "postal_code": row.postal_code,
                "status": _status_name(row.code, config.extra_codes),
                "source": row.source,
            }
            for row in rows
        ]


def _print_timeline(title: str, status: str, events: list[dict[str, Any]]) -> None:
    table = Table(title=f"{title} — status: [bold]{status or 'unknown'}[/bold]")
    for column in ("time (UTC)", "skybill", "code", "event", "place", "status"):
        table.add_column(column, no_wrap=column in ("time (UTC)", "skybill", "status"))
    for e in events:
        table.add_row(
            e["time"][:16].replace("T", " "),
            e["skybill"],
            e["code"],
            e["label"],
            " ".join(p for p in (e["postal_code"], e["place"]) if p),
            e["status"],
        )
    console.print(table)


def _shipments_for(store: Store, skybill: str | None, order: str | None) -> list[Shipment]:
    with store.session() as session:
        if order:
            statement = select(Shipment).where(
                or_(Shipment.sf_id == order, Shipment.order_number == order)
            )
        else:
            statement = select(Shipment).join(Parcel).where(Parcel.skybill_number == skybill)
        found = list(session.scalars(statement.order_by(Shipment.id)))
        for shipment in found:
            _ = shipment.parcels  # load before the session closes
        return found


def track(
    ctx: typer.Context,
    skybill: Annotated[str | None, typer.Argument(help="A skybill number.")] = None,
    order: Annotated[
        str | None, typer.Option("--order", help="A Salesforce order id or order number.")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Show stored events; do not ask Chronopost.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Events and normalized status of a parcel (or every parcel of an order), as a timeline."""
    if bool(skybill) == bool(order):
        typer.echo("give a SKYBILL or --order ORDER_ID (one of them)", err=True)
        raise typer.Exit(2)
    settings = _settings(ctx)
    store = Store(settings.database_url)
    config = settings.tracking
    shipments = _shipments_for(store, skybill, order)
    skybills = [skybill] if skybill else [p.skybill_number for s in shipments for p in s.parcels]
    if order and not shipments:
        typer.echo(f"no shipment for order {order}", err=True)
        raise typer.Exit(1)
    problems: list[str] = []
    if not offline:
        carrier = carrier_of(settings)
        tracking = Tracking(store, config)
        for number in skybills:
            try:
                tracking.ingest(carrier.track(number), "cli")
            except ChronoforceError as exc:
                problems.append(f"{number}: {exc}")
    shipments = _shipments_for(store, skybill, order)
    status = ", ".join(sorted({s.status for s in shipments})) if shipments else ""
    events = _timeline(store, skybills, config)
    if not events:
        what = f"order {order}" if order else f"skybill {skybill}"
        known = "" if shipments else "; chronoforce has no shipment with it"
        fail(f"no tracking event for {what}{known}" + (f" ({problems[0]})" if problems else ""))
    for problem in problems:
        typer.echo(problem, err=True)
    if as_json:
        typer.echo(
            json.dumps(
                {"skybills": skybills, "order": order, "status": status, "events": events},
                indent=2,
            )
        )
        return
    _print_timeline(f"order {order}" if order else str(skybill), status, events)


def poll(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Track due parcels (rate-limited, within the call budget) and write changes to Salesforce."""
    if not once:
        typer.echo("continuous polling runs inside `chronoforce run`; use --once here", err=True)
        raise typer.Exit(2)
    settings = _settings(ctx)
    store = Store(settings.database_url)
    tracking = Tracking(store, settings.tracking)
    inbox = process_inbox(tracking)
    carrier = carrier_of(settings)
    # Delta tracking (trackSearch first) unless `tracking.mode: poll`, as in `chronoforce run`.
    poller = tracking_round(
        Poller(tracking, carrier, account=settings.chronopost.account_number), carrier
    )
    try:
        report = poller.poll_once()
    finally:
        poller.close()
    flushed = flush(store, salesforce_of(settings))
    summary = {
        "mode": report.mode,
        "searches": report.searches,
        "shipments": report.shipments,
        "carrier_calls": report.calls,
        "failed": report.failed,
        "new_events": report.new_events,
        "changed": report.changed,
        "over_budget": report.over_budget,
        "webhook_events": inbox,
        "salesforce_writes": flushed.sent,
        "salesforce_calls": flushed.calls,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title="poll round")
    table.add_column("")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `track` and `poll` to the root app."""
    app.command("track")(track)
    app.command("poll")(poll)
