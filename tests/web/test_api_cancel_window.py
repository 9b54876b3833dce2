"""Chronopost takes a cancel only from about ten minutes after the label is made ([D] §2.6.4,
SPEC-FACTS §9): one asked sooner through the API is queued (202, `opens_at`) and sent by the
runner's sweep once the window opens; the sandbox keeps the window on its own clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from chronoforce.chronopost import ChronopostClient
from chronoforce.domain.errors import CancelTooEarlyError
from chronoforce.pipeline.runner import Runner
from chronoforce.store.models import ExceptionRow, Parcel, Shipment
from tests.web.conftest import ApiWorld, api_world_at


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path, cancel_window=dt.timedelta(minutes=10)) as w:
        yield w


def _label_now(world: ApiWorld) -> int:
    read = world.service.read_order(world.take_order())
    [shipment_id] = world.runtime.record([read.record], None)
    assert world.runtime.labels.process(shipment_id) == "labeled"
    return shipment_id


def _ten_minutes_pass(world: ApiWorld, shipment_id: int) -> None:
    """Eleven minutes for Chronopost's clock and ours (the label's time moves back)."""
    world.carrier.advance_clock(dt.timedelta(minutes=11))
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        for parcel in row.parcels:
            parcel.created_at -= dt.timedelta(minutes=11)
        if row.cancel_at is not None:
            row.cancel_at -= dt.timedelta(minutes=11)


def test_a_cancel_inside_the_window_is_queued_then_sent_when_it_opens(world: ApiWorld) -> None:
    shipment_id = _label_now(world)
    live = world.carrier.live_labels()
    answer = world.http.post(f"/api/v1/shipments/{shipment_id}/cancel", headers=world.headers())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "cancel_queued" and body["cancelled"] == []
    opens = dt.datetime.fromisoformat(body["opens_at"])
    assert dt.timedelta(minutes=8) < opens - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=11)
    assert world.carrier.live_labels() == live, "nothing cancelled at Chronopost yet"
    runner = Runner(world.runtime, enqueue=lambda _: None)
    runner.sweep()  # not due yet: nothing sent
    assert world.carrier.live_labels() == live
    _ten_minutes_pass(world, shipment_id)
    runner.sweep()
    assert world.carrier.live_labels() == live - 1
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        assert row.state == "cancelled" and row.cancel_at is None
        assert not any(p.live for p in row.parcels)


def test_a_queued_cancel_chronopost_then_refuses_becomes_an_exception(world: ApiWorld) -> None:
    shipment_id = _label_now(world)
    queued = world.http.post(f"/api/v1/shipments/{shipment_id}/cancel", headers=world.headers())
    assert queued.status_code == 202
    # Chronopost takes the parcel over before the window opens: the queued cancel is refused.
    world.carrier.advance_clock(dt.timedelta(hours=5))
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        row.cancel_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        for parcel in row.parcels:
            parcel.created_at -= dt.timedelta(hours=5)
    assert world.runtime.cancel_due() == 1
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        assert row.cancel_at is None and row.state != "cancelled"
        problem = session.scalar(select(ExceptionRow).where(ExceptionRow.shipment_id == row.id))
        assert problem is not None and problem.operation == "cancel"
        assert session.scalar(select(Parcel.live).where(Parcel.shipment_id == row.id))


def test_the_sandbox_refuses_a_cancel_inside_its_window(world: ApiWorld) -> None:
    shipment_id = _label_now(world)
    with world.runtime.store.session() as session:
        skybill = session.get_one(Shipment, shipment_id).parcels[0].skybill_number
    # Without the label's time the client cannot tell "too early" from "taken over", and says
    # too early: the sandbox answered its refusal, not a success.
    with (
        ChronopostClient.from_settings(world.runtime.settings) as client,
        pytest.raises(CancelTooEarlyError),
    ):
        client.cancel(skybill)
    assert world.carrier.live_labels() >= 1
