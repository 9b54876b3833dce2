"""`chronoforce labels reprint` (issue 21 item 5): the stored label again, written to a file and
filed in Salesforce; mistakes in one line with a non-zero exit."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest

from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

from .conftest import CliWorld, make_world
from .test_mistakes import french_orders, invoke, one_line_refusal


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    yield from make_world(tmp_path_factory.mktemp("reprint"), orders=12)


def _shipped(world: CliWorld, index: int) -> Shipment:
    order = french_orders(world)[index]
    result = invoke(world, "ship", order["Id"])
    assert result.exit_code == 0, result.output
    store = Store(world.database_url)
    try:
        with store.session() as session:
            row = session.query(Shipment).filter(Shipment.sf_id == order["Id"]).one()
            _ = row.parcels
            session.expunge(row)
            return row
    finally:
        store.dispose()


def test_reprint_by_skybill_writes_the_same_label_and_makes_no_parcel(
    world: CliWorld, tmp_path: Path
) -> None:
    shipment = _shipped(world, 0)
    [skybill] = [p.skybill_number for p in shipment.parcels]
    parcels, files = len(world.carrier.parcels()), len(world.org.records("ContentVersion"))
    out = tmp_path / "again.pdf"
    result = invoke(world, "labels", "reprint", skybill, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert skybill in result.output and str(out) in result.output
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert skybill in text
    assert len(world.carrier.parcels()) == parcels  # no second label at Chronopost
    assert len(world.org.records("ContentVersion")) == files + 1  # the copy in Salesforce


def test_reprint_by_order_number_in_zpl(world: CliWorld, tmp_path: Path) -> None:
    shipment = _shipped(world, 1)
    out = tmp_path / "again.zpl"
    result = invoke(world, "labels", "reprint", shipment.order_number, "--out", str(out),
                    "--mode", "z2d")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"^XA")


def test_reprint_mistakes_are_one_line(world: CliWorld) -> None:
    line = one_line_refusal(invoke(world, "labels", "reprint", "NOSUCHORDER"))
    assert "NOSUCHORDER" in line and "SHIPMENT_NOT_FOUND" in line
    line = one_line_refusal(invoke(world, "labels", "reprint", "X", "--mode", "GIF"), code=2)
    assert "GIF" in line


def test_a_cancelled_label_is_refused_in_one_line(world: CliWorld) -> None:
    shipment = _shipped(world, 2)
    assert invoke(world, "cancel", str(shipment.id)).exit_code == 0
    line = one_line_refusal(invoke(world, "labels", "reprint", shipment.sf_id))
    assert line.startswith("LABEL_VOIDED:") and "cannot be re-printed" in line
