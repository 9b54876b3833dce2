"""`chronoforce track` and `poll`: the stored timeline, readable and as JSON."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from chronoforce.cli.tracking import register
from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline.tracking import Tracking
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel, Shipment

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"config_file": None}

    register(root)
    return root


def seeded(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(url)
    with store.session() as session:
        shipment = Shipment(
            sf_object="Order", sf_id="801000000000000001", order_number="00042", state="labeled"
        )
        session.add(shipment)
        session.flush()
        session.add(
            Parcel(shipment_id=shipment.id, skybill_number="XY0000001FR", weight_kg=Decimal(1))
        )
    Tracking(store).ingest(
        [
            TrackingEvent("XY0000001FR", "DC", "Envoi en cours de préparation", T0),
            TrackingEvent(
                "XY0000001FR",
                "TA",
                "Envoi en cours de livraison",
                T0 + dt.timedelta(days=1),
                "PARIS",
            ),
        ]
    )
    store.dispose()
    return url


def test_track_prints_the_timeline_and_normalized_status_as_json(tmp_path: Path) -> None:
    env = {"CHRONOFORCE_DATABASE_URL": seeded(tmp_path)}
    result = CliRunner().invoke(app(), ["track", "XY0000001FR", "--offline", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "out_for_delivery"
    assert [e["code"] for e in data["events"]] == ["DC", "TA"]
    assert data["events"][1]["status"] == "out_for_delivery"


def test_track_by_order_shows_every_parcel_of_the_order(tmp_path: Path) -> None:
    env = {"CHRONOFORCE_DATABASE_URL": seeded(tmp_path), "COLUMNS": "200"}
    result = CliRunner().invoke(app(), ["track", "--order", "00042", "--offline"], env=env)
    assert result.exit_code == 0, result.output
    assert "out_for_delivery" in result.output and "XY0000001FR" in result.output


def test_track_needs_exactly_one_of_skybill_or_order(tmp_path: Path) -> None:
    env = {"CHRONOFORCE_DATABASE_URL": seeded(tmp_path)}
    result = CliRunner().invoke(app(), ["track", "--offline"], env=env)
    assert result.exit_code == 2
