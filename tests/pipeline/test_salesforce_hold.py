"""The Salesforce write hold for tracking writes (issue 21, `tracking.salesforce_hold_s`), end to
end over both sandboxes on the injected clock: a tracking round's Order, Shipment and event
writes wait at the outbox until the hold is over, unless a full collection of 200 of their
object is pending; label writes never wait. Calls are counted at the Salesforce sandbox; the
claim query runs on both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.cli.demo import demo_settings
from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.pipeline.tracking.salesforce_writes import EVENT_OBJECT
from chronoforce.pipeline.writeback import due_objects, flush_calls, released
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Outbox, Parcel, Shipment
from chronoforce.web.console.queries import salesforce_health

HOLD_S = 600
TRACKING = {"calls_per_second": 1000, "mode": "delta", "salesforce_hold_s": HOLD_S}


@pytest.fixture()
def world(tmp_path: Path, backend: Any) -> Iterator[dict[str, Any]]:
    """Both sandboxes over HTTP, the runtime on SQLite and on PostgreSQL (conftest `backend`)."""
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=3, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    settings = settings.model_copy(update={"tracking": TRACKING, **backend.settings_update()})
    runtime = build_runtime(settings)
    runtime.now = carrier.now  # the injected clock: the sandbox's scenario time
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _label_one(world: dict[str, Any]) -> tuple[str, str]:
    """Label one French order (delivered scenario); the others leave tracking."""
    org, runtime = world["org"], world["runtime"]
    order = next(o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR"))
    org.org.update(
        "Order", order["Id"], {"ShippingStreet": f"{order['ShippingStreet']}\n[scenario:delivered]"}
    )
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    runtime.flush()
    with runtime.store.session() as session:
        skybill = ""
        for shipment in session.scalars(select(Shipment).where(Shipment.state == "labeled")):
            if shipment.sf_id != order["Id"]:
                shipment.state = "failed"
            else:
                skybill = (
                    session.scalars(
                        select(Parcel.skybill_number).where(Parcel.shipment_id == shipment.id)
                    ).first()
                    or ""
                )
    assert skybill
    return str(order["Id"]), skybill


def _collections(org: SalesforceSandbox) -> int:
    """Write calls: sObject Collections on their own or inside Composite calls."""
    stats = org.stats()
    return stats["collections"] + stats["composite"]


def _order(org: SalesforceSandbox, order_id: str) -> dict[str, Any]:
    return next(o for o in org.records("Order") if o["Id"] == order_id)


def _pending(world: dict[str, Any]) -> list[Outbox]:
    with world["runtime"].store.session() as session:
        return list(session.scalars(select(Outbox).where(Outbox.state == "pending")))


def _advance(world: dict[str, Any], seconds: float) -> Any:
    world["carrier"].advance_clock(dt.timedelta(seconds=seconds))
    return world["runtime"].flush_tracking()


def test_label_writes_go_at_once_tracking_writes_wait_for_the_hold(world: dict[str, Any]) -> None:
    org, runtime = world["org"], world["runtime"]
    order_id, _ = _label_one(world)
    # Label writes are never held: the file and the label status are in Salesforce already.
    assert org.records("ContentVersion")
    assert _order(org, order_id)["Chronopost_Label_Status__c"]
    _advance(world, HOLD_S)  # whatever the label's first look queued has gone
    org.reset_stats()
    world["carrier"].advance_clock(dt.timedelta(hours=23.5))  # delivered at 23 h
    report = runtime.poll_once()
    assert report.changed == 1
    runtime.flush_tracking()
    held = _pending(world)
    assert held and all(row.hold_until is not None for row in held)
    assert {row.sf_object for row in held} >= {"Order", EVENT_OBJECT}
    assert _collections(org) == 0
    assert _order(org, order_id)["Chronopost_Status__c"] != "delivered"
    with runtime.store.session() as session:  # queued long ago, but held: not late
        for row in session.scalars(select(Outbox).where(Outbox.state == "pending")):
            row.created_at = runtime.now() - dt.timedelta(hours=1)
        session.flush()
        assert salesforce_health(session, runtime.now()).state == "ok"
    _advance(world, HOLD_S - 1)  # one second short of the hold
    assert _collections(org) == 0 and len(_pending(world)) == len(held)
    _advance(world, 1)  # the hold is over: every held object goes, a collection each, in one call
    assert _order(org, order_id)["Chronopost_Status__c"] == "delivered"
    assert not _pending(world)
    kinds = {(r.sf_object, r.operation) for r in held}
    assert len(kinds) > 1 and _collections(org) == 1 and org.stats()["composite"] == 1


def test_a_full_collection_goes_without_waiting_and_takes_the_rows_that_waited(
    world: dict[str, Any],
) -> None:
    org, runtime = world["org"], world["runtime"]
    order_id, skybill = _label_one(world)
    _advance(world, HOLD_S)
    org.reset_stats()
    start = runtime.now() - dt.timedelta(hours=1)

    def events(first: int, count: int) -> list[TrackingEvent]:
        return [
            TrackingEvent(skybill, "TS", "En transit", start + dt.timedelta(seconds=i))
            for i in range(first, first + count)
        ]

    assert runtime.tracking.ingest(events(0, 199), source="webhook").changed
    runtime.flush_tracking()
    assert _collections(org) == 0  # 199 event records: not a full collection yet
    _advance(world, 60)
    assert runtime.tracking.ingest(events(199, 1), source="webhook").changed
    runtime.flush_tracking()  # 200 pending: they go now, one call, long before the hold
    assert _collections(org) == 1
    made = [r for r in org.records(EVENT_OBJECT) if r.get("Skybill_Number__c") == skybill]
    assert len([r for r in made if r.get("Code__c") == "TS"]) == 200
    # The held Order write rode along in the same Composite call: no call of its own, no wait.
    assert not _pending(world)
    assert _order(org, order_id)["Chronopost_Last_Event_Code__c"] == "TS"
    _advance(world, HOLD_S - 60)
    assert _collections(org) == 1


def test_due_objects_holds_until_the_deadline_or_a_full_collection() -> None:
    now = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    later = now + dt.timedelta(seconds=1)
    pending = {"Order": 5, "Shipment": 200, "Event": 3, "Case": 1}
    deadlines = {"Order": later, "Shipment": later, "Event": now}
    assert due_objects(pending, deadlines, now) == {"Shipment", "Event"}
    assert due_objects(pending, deadlines, later) == {"Order", "Shipment", "Event"}
    assert due_objects({"Order": 199}, {"Order": later}, now) == set()


def test_held_writes_ride_along_when_the_flush_has_room_and_never_cost_a_call() -> None:
    now = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    later = now + dt.timedelta(minutes=10)
    order, shipment, event = ("Order", "update"), ("Shipment", "update"), ("Event", "upsert")
    held = {order: 3, shipment: 3, event: 7}
    deadlines = {order: later, shipment: later, event: later}
    # Nothing goes regardless and nothing is due: everything waits.
    assert released(held, deadlines, now, {}) == set()
    # A label write goes now (one collection): the held ones fit in the same Composite call.
    assert released(held, deadlines, now, {order: 1}) == {order, shipment, event}
    # The first file batch is two subrequests (its ContentVersions, their documents' query)
    # with the records; every further batch is a call of its own.
    assert flush_calls({("ContentVersion", "file"): 1, order: 201}) == 1
    assert flush_calls({("ContentVersion", "file"): 250, order: 1, shipment: 1, event: 1}) == 2
    assert flush_calls({("ContentVersion", "file"): 1, ("Task", "create"): 800}) == 2
    # 250 files and three small updates: two calls; a held object would need a sixth
    # subrequest in the first call, a third call: it waits.
    files = {("ContentVersion", "file"): 250, order: 1, shipment: 1, ("Case", "create"): 1}
    assert released({event: 150}, {event: later}, now, files) == set()
    # Four full collections of another object leave room for one held object only.
    full = {("Task", "create"): 800}
    assert released(held, deadlines, now, full) == {event}
    # Due ones always go; a free ride is never bought with a second call.
    assert released(held, {**deadlines, order: now}, now, full) == {order}


def test_the_pod_status_is_held_like_the_tracking_writes_and_goes_with_them(
    world: dict[str, Any],
) -> None:
    org, runtime = world["org"], world["runtime"]
    order_id, _ = _label_one(world)
    _advance(world, HOLD_S)
    world["carrier"].advance_clock(dt.timedelta(hours=23.5))  # delivered at 23 h
    assert runtime.poll_once().changed == 1
    assert runtime.pod_due() == 0  # scheduled (status Pending), not asked before D+1
    runtime.flush_tracking()
    pod = [r for r in _pending(world) if "Chronopost_POD_Status__c" in r.payload]
    assert {r.sf_object for r in pod} >= {"Order"} and all(r.hold_until for r in pod)
    assert not _order(org, order_id).get("Chronopost_POD_Status__c")
    org.reset_stats()
    _advance(world, HOLD_S)  # over: delivery and POD status reach the Order together
    order = _order(org, order_id)
    assert order["Chronopost_Status__c"] == "delivered"
    assert order["Chronopost_POD_Status__c"] == "Pending"
    assert _collections(org) == 1
