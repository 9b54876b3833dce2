"""What people and machines read: log lines keep to the configured level and stay off stdout,
tables are not cut at 80 columns off a terminal, `web --help` names every route group."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.config import Settings
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel
from chronoforce.web.app import create_app

from .conftest import CliWorld

CLI = [sys.executable, "-m", "chronoforce.cli"]


def shipped_skybills(world: CliWorld, count: int) -> list[str]:
    """Ship `count` sendable French orders through the CLI; their skybill numbers."""
    orders = [
        o["Id"]
        for o in world.org.records("Order")
        if o.get("ShippingCountryCode") == "FR" and len(o.get("ShippingStreet") or "") <= 38
    ][:count]
    for order_id in orders:
        result = CliRunner().invoke(app, ["ship", order_id], env=world.env)
        assert result.exit_code == 0, result.output
    store = Store(world.database_url)
    try:
        with store.session() as session:
            return list(session.scalars(select(Parcel.skybill_number).order_by(Parcel.id)))
    finally:
        store.dispose()


def track(world: CliWorld, *args: str, env: dict[str, str] | None = None) -> Any:
    plain = {k: v for k, v in world.process_env().items() if k != "COLUMNS"}
    return subprocess.run(
        [*CLI, "track", *args],
        env={**plain, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_lines_print_only_at_debug_and_never_on_stdout(cli_world: CliWorld) -> None:
    first, second = shipped_skybills(cli_world, 2)[:2]
    # Tracking a fresh label changes its status: the pipeline logs that at debug level.
    quiet = track(cli_world, first, "--json", env={"CHRONOFORCE_LOG_LEVEL": "info"})
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["status"]  # stdout is the JSON and nothing else
    assert "tracking status changed" not in quiet.stdout + quiet.stderr
    loud = track(cli_world, second, "--json", env={"CHRONOFORCE_LOG_LEVEL": "debug"})
    assert loud.returncode == 0, loud.stderr
    assert json.loads(loud.stdout)["status"]
    assert "tracking status changed" in loud.stderr


def test_tables_off_a_terminal_keep_dates_whole(cli_world: CliWorld) -> None:
    skybill = shipped_skybills(cli_world, 1)[0]
    table = track(cli_world, skybill)  # no COLUMNS, stdout a pipe: rich would use 80 columns
    assert table.returncode == 0, table.stderr
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", table.stdout), table.stdout
    assert "…" not in table.stdout, table.stdout


def test_web_help_names_every_route_group(tmp_path: Path) -> None:
    served = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"), drain_inbox=False)
    paths: set[str] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            if getattr(route, "path", ""):
                paths.add(route.path)
            inner = getattr(route, "original_router", None) or getattr(route, "routes", None)
            if inner is not None:
                walk(getattr(inner, "routes", inner))

    walk(served.router.routes)
    assert "/health" in paths and any(p.startswith("/api/v1/") for p in paths)
    result = CliRunner().invoke(app, ["web", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    groups = {"/" + p.split("/")[1] if not p.startswith("/api/v1/") else p for p in paths}
    described = {
        group
        for group in groups
        if re.sub(r"\{[a-z_]+\}", "ID", group.removeprefix("/api/v1")) in result.output
    }
    assert described == groups, sorted(groups - described)
