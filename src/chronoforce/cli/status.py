"""What a cluster is doing, read from the database and the queue: `chronoforce status`.

Read-only: it never takes a lease, never calls Salesforce or the carrier (the API budget shown
is the usage the last flush saw), and reports an unreachable queue rather than failing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.table import Table
from sqlalchemy import func, select

from chronoforce.cli.common import console
from chronoforce.config import Settings
from chronoforce.domain.shipment_state import WORKABLE, ShipmentState
from chronoforce.pipeline import cluster
from chronoforce.queue import make_huey, ping
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Shipment


def _age(value: dt.datetime | None, now: dt.datetime) -> float | None:
    stamp = cluster.utc(value)
    return None if stamp is None else round((now - stamp).total_seconds(), 1)


def collect(settings: Settings, store: Store | None = None) -> dict[str, Any]:
    """The status report as plain data (what `--json` prints)."""
    own = store is None
    store = store or Store(settings.database_url)
    now = dt.datetime.now(dt.UTC)
    try:
        report: dict[str, Any] = {"at": now.isoformat()}
        report["queue"] = _queue(settings, settings.worker.queue_name)
        with store.session() as session:
            states = dict(
                session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()
            )
            leases = session.scalar(
                select(func.count())
                .select_from(Shipment)
                .where(Shipment.lease_expires_at.is_not(None), Shipment.lease_expires_at > now)
            )
            oldest = session.scalar(
                select(func.min(Shipment.created_at)).where(Shipment.state.in_(WORKABLE))
            )
            retrying = session.scalar(
                select(func.count())
                .select_from(Shipment)
                .where(Shipment.state.in_(WORKABLE), Shipment.attempts > 0)
            )
            outbox = dict(
                session.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
            )
            oldest_write = session.scalar(
                select(func.min(Outbox.created_at)).where(Outbox.state == "pending")
            )
            located = dict(  # issue 23: where the labels were made from
                session.execute(
                    select(Shipment.location, func.count())
                    .where(Shipment.state == ShipmentState.LABELED)
                    .group_by(Shipment.location)
                ).all()
            )
            open_exceptions = session.scalar(
                select(func.count())
                .select_from(ExceptionRow)
                .where(ExceptionRow.state != "resolved")
            )
        report["shipments"] = {k: int(v) for k, v in states.items()}
        report["leases_held"] = int(leases or 0)
        report["retrying"] = int(retrying or 0)
        report["oldest_pending_label_s"] = _age(oldest, now)
        report["outbox"] = {k: int(v) for k, v in outbox.items()}
        report["oldest_pending_write_s"] = _age(oldest_write, now)
        report["open_exceptions"] = int(open_exceptions or 0)
        report["labeled_by_location"] = {(k or "-"): int(v) for k, v in located.items()}
        report.update(_shared(store, now))
    finally:
        if own:
            store.dispose()
    return report


def _queue(settings: Settings, name: str) -> dict[str, Any]:
    try:
        return {"depth": ping(make_huey(settings.queue_url, settings.database_url, name=name))}
    except Exception as exc:  # unreachable queue: say so, keep the rest of the report
        return {"depth": None, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _shared(store: Store, now: dt.datetime) -> dict[str, Any]:
    breaker: dict[str, Any] = {"state": "closed"}
    pause: dict[str, Any] = {"paused": False}
    api: dict[str, Any] | None = None
    periodic: dict[str, Any] = {}
    for row in cluster.rows(store):
        until = cluster.utc(row.expires_at)
        if row.name == "breaker:chronopost":
            breaker = {"state": row.state or "closed", **(row.data or {})}
            if until is not None and row.state != "closed":
                breaker["until"] = until.isoformat()
        elif row.name == "pause:salesforce" and until is not None and until > now:
            pause = {"paused": True, "until": until.isoformat(), **(row.data or {})}
        elif row.name == "note:salesforce_api" and row.data:
            used, cap = int(row.data.get("used", 0)), int(row.data.get("max", 0))
            api = {"used": used, "max": cap, "remaining": max(0, cap - used)}
            api["seen_s_ago"] = _age(row.updated_at, now)
        elif row.name.startswith("periodic:"):
            periodic[row.name.removeprefix("periodic:")] = {
                "owner": row.owner,
                "last_run_s_ago": _age(row.updated_at, now),
            }
    return {
        "carrier_breaker": breaker,
        "salesforce_pause": pause,
        "api_budget": api,
        "periodic": periodic,
    }


def render(report: dict[str, Any]) -> None:
    table = Table(title="chronoforce status", show_header=False)
    table.add_column("what")
    table.add_column("value")
    queue = report["queue"]
    table.add_row(
        "queue depth",
        str(queue["depth"]) if queue["depth"] is not None else f"unreachable: {queue.get('error')}",
    )
    table.add_row(
        "shipments", ", ".join(f"{k} {v}" for k, v in sorted(report["shipments"].items())) or "none"
    )
    table.add_row("leases held", str(report["leases_held"]))
    table.add_row("retrying", str(report["retrying"]))
    table.add_row("oldest pending label", _seconds(report["oldest_pending_label_s"]))
    table.add_row(
        "outbox", ", ".join(f"{k} {v}" for k, v in sorted(report["outbox"].items())) or "empty"
    )
    table.add_row("oldest pending write", _seconds(report["oldest_pending_write_s"]))
    table.add_row("open exceptions", str(report["open_exceptions"]))
    by_location = report.get("labeled_by_location") or {}
    table.add_row(
        "labeled by location",
        ", ".join(f"{k} {v}" for k, v in sorted(by_location.items())) or "none",
    )
    api = report["api_budget"]
    table.add_row(
        "Salesforce API",
        f"{api['used']}/{api['max']} used, {api['remaining']} left" if api else "not seen yet",
    )
    pause = report["salesforce_pause"]
    table.add_row(
        "Salesforce writes", f"paused until {pause['until']}" if pause["paused"] else "flowing"
    )
    breaker = report["carrier_breaker"]
    table.add_row(
        "carrier breaker",
        breaker["state"] + (f" until {breaker['until']}" if "until" in breaker else ""),
    )
    for name, info in sorted(report["periodic"].items()):
        table.add_row(f"periodic {name}", f"{_seconds(info['last_run_s_ago'])} ago")
    console.print(table)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"
