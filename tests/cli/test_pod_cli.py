"""`chronoforce pod SKYBILL` against both sandboxes: the POD status printed, the file attached
in Salesforce and written with --out once available; an unknown parcel is one line, exit 1."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

from .conftest import CliWorld, make_world


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[CliWorld]:
    yield from make_world(tmp_path, orders=6)


def _ship_one(world: CliWorld) -> tuple[str, str]:
    order_id = next(
        o["Id"]
        for o in world.org.records("Order")
        if o.get("ShippingCountryCode") == "FR" and len(o.get("ShippingStreet") or "") <= 38
    )
    result = CliRunner().invoke(app, ["ship", order_id], env=world.env)
    assert result.exit_code == 0, result.output
    store = Store(world.database_url)
    try:
        with store.session() as session:
            shipment = session.query(Shipment).filter_by(sf_id=order_id).one()
            skybill = next(p.skybill_number for p in shipment.parcels if p.live)
    finally:
        store.dispose()
    return order_id, skybill


def test_pod_by_hand_not_ready_then_attached_and_saved(world: CliWorld, tmp_path: Path) -> None:
    order_id, skybill = _ship_one(world)
    early = CliRunner().invoke(app, ["pod", skybill], env=world.env)
    assert early.exit_code == 0, early.output
    assert f"{skybill}: POD" in early.output and "not ready yet" in early.output
    world.carrier.advance_clock(dt.timedelta(days=5))  # delivered, and a working day after
    out = tmp_path / "pod.pdf"
    done = CliRunner().invoke(app, ["pod", skybill, "--out", str(out)], env=world.env)
    assert done.exit_code == 0, done.output
    assert "POD Available" in done.output and "attached in Salesforce" in done.output
    assert skybill in pypdf.PdfReader(out).pages[0].extract_text()
    titles = {v["ContentDocumentId"]: v["Title"] for v in world.org.records("ContentVersion")}
    linked = {
        link["LinkedEntityId"]
        for link in world.org.records("ContentDocumentLink")
        if titles.get(link["ContentDocumentId"]) == f"Chronopost proof of delivery {skybill}"
    }
    assert order_id in linked


def test_pod_of_an_unknown_parcel_is_one_line_and_exit_1(world: CliWorld) -> None:
    result = CliRunner().invoke(app, ["pod", "XP000000000FR"], env=world.env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "unknown parcel 'XP000000000FR': no parcel 'XP000000000FR' in chronoforce's store"
    ]
    assert "Traceback" not in result.output


def test_out_without_a_file_to_write_fails_and_writes_nothing(
    world: CliWorld, tmp_path: Path
) -> None:
    _, skybill = _ship_one(world)
    out = tmp_path / "none.pdf"
    result = CliRunner().invoke(app, ["pod", skybill, "--out", str(out)], env=world.env)
    assert result.exit_code == 1 and not out.exists()
    assert "no POD file to write" in result.output
