"""Delta tracking end to end over both sandboxes (issue 21): one trackSearch a round tells which
parcels moved, trackSkybillV2 only where the timeline is needed, the per-parcel poller as the
fallback when trackSearch fails. Calls are counted at the Chronopost sandbox's request log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.chronopost.config import ChronopostCredentials
from chronoforce.cli.demo import demo_settings
from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.pipeline.tracking import TrackingConfig
from chronoforce.pipeline.tracking.delta import (
    MAX_WINDOW_DAYS,
    LiveParcel,
    TimelineBudget,
    decide,
    deposit_windows,
    search_targets,
    timeline_order,
)
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Parcel, Shipment

TRACKING = {"calls_per_second": 1000, "order_status_map": {"delivered": "Activated"}}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=6, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    settings = settings.model_copy(update={"tracking": {**TRACKING, "mode": "delta"}})
    runtime = build_runtime(settings)
    runtime.now = carrier.now  # our clock is the sandbox's: its events happen on its time
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _label_one(world: dict[str, Any]) -> str:
    """Label the seeded orders; the first French one is the delivered parcel we follow, the
    others are taken out of tracking (state "failed") so the counts are about one parcel."""
    org, runtime = world["org"], world["runtime"]
    order = next(o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR"))
    org.org.update(
        "Order", order["Id"], {"ShippingStreet": f"{order['ShippingStreet']}\n[scenario:delivered]"}
    )
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    runtime.flush()
    with runtime.store.session() as session:
        labeled = {
            s.sf_id: s.id
            for s in session.scalars(select(Shipment).where(Shipment.state == "labeled"))
        }
        assert order["Id"] in labeled
        # Only the followed order stays in tracking: the others leave the poll.
        for sf_id, shipment_id in labeled.items():
            if sf_id != order["Id"]:
                session.get_one(Shipment, shipment_id).state = "failed"
    return str(order["Id"])


def _calls(carrier: ChronopostSandbox, operation: str) -> int:
    return len(carrier.requests(operation))


def _round(world: dict[str, Any], hours: float) -> Any:
    world["carrier"].advance_clock(dt.timedelta(hours=hours))
    report = world["runtime"].poll_once()
    world["runtime"].flush_tracking()
    return report


def test_a_delivery_reaches_salesforce_with_one_search_and_one_timeline(
    world: dict[str, Any],
) -> None:
    carrier, org, runtime = world["carrier"], world["org"], world["runtime"]
    order_id = _label_one(world)
    first = _round(world, 0.1)  # the search sees the label-created parcel
    assert first.mode == "delta" and first.searches == 1 and first.timelines == 0
    assert _calls(carrier, "trackSearch") == 1 and _calls(carrier, "trackSkybillV2") == 0
    with runtime.store.session() as session:
        (parcel,) = session.scalars(
            select(Parcel).join(Shipment).where(Shipment.state == "labeled")
        ).all()
        assert parcel.significant_code == "DC" and parcel.shipment.searched_at is not None
    # Hours of transit: one search a round, no per-parcel call (every change is in the answer).
    for _ in range(3):
        report = _round(world, 6.0)
        assert report.searches == 1 and report.timelines == 0
    assert _calls(carrier, "trackSkybillV2") == 0
    with runtime.store.session() as session:
        (parcel,) = session.scalars(
            select(Parcel).join(Shipment).where(Shipment.state == "labeled")
        ).all()
        assert parcel.significant_code == "SD"  # the delivered scenario's event at 18 h
    searches_before = _calls(carrier, "trackSearch")
    delivered = _round(world, 6.0)  # D at 23 h: gone from the NONDISTRIBUES answer
    assert _calls(carrier, "trackSearch") == searches_before + 1
    assert _calls(carrier, "trackSkybillV2") == 1
    assert delivered.timelines == 1 and delivered.changed == 1
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_Status__c"] == "delivered" and order["Status"] == "Activated"
    assert order["Chronopost_Last_Event_Code__c"] == "D"
    with runtime.store.session() as session:
        (shipment,) = session.scalars(select(Shipment).where(Shipment.state == "labeled")).all()
        linked = shipment.source.get("shipment_id")
    if linked:
        record = next(s for s in org.records("Shipment") if s["Id"] == linked)
        assert record["Chronopost_Status__c"] == "delivered"


def test_trackSearch_failing_falls_back_to_per_parcel_polling(world: dict[str, Any]) -> None:
    carrier, org = world["carrier"], world["org"]
    order_id = _label_one(world)
    carrier.set_faults(kind="http_503", operations=("trackSearch",))
    report = _round(world, 23.5)  # delivered at 23 h
    assert report.mode == "poll" and report.search_error
    assert _calls(carrier, "trackSearch") >= 1  # asked (and retried by the transport), refused
    assert _calls(carrier, "trackSkybillV2") == 1  # the poller took the parcel
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_Status__c"] == "delivered"


def test_mode_poll_never_asks_trackSearch(world: dict[str, Any]) -> None:
    carrier, runtime = world["carrier"], world["runtime"]
    runtime.settings = runtime.settings.model_copy(
        update={"tracking": {**TRACKING, "mode": "poll"}}
    )
    runtime._tracking, runtime._poller = None, None
    _label_one(world)
    report = _round(world, 23.5)
    assert report.mode == "poll" and report.searches == 0
    assert _calls(carrier, "trackSearch") == 0 and _calls(carrier, "trackSkybillV2") == 1


# --- the pure decisions the benchmark also runs (pipeline/tracking/delta.py) -----------------


def _event(skybill: str, code: str, hour: int) -> TrackingEvent:
    return TrackingEvent(skybill, code, code, dt.datetime(2026, 3, 3, hour, tzinfo=dt.UTC))


def test_decide_ingests_changed_events_and_wants_timelines_only_where_needed() -> None:
    config = TrackingConfig()
    seen_sd = ("SD", dt.datetime(2026, 3, 3, 6, tzinfo=dt.UTC))
    live = {
        "A": LiveParcel("A", 1, dt.date(2026, 3, 2), seen_sd),  # unchanged
        "B": LiveParcel("B", 2, dt.date(2026, 3, 2), seen_sd),  # now in transit: no timeline
        "C": LiveParcel("C", 3, dt.date(2026, 3, 2), seen_sd),  # delivered: timeline
        "E": LiveParcel("E", 4, dt.date(2026, 3, 2), seen_sd),  # seen before, now missing
        "F": LiveParcel("F", 5, dt.date(2026, 3, 2)),  # never seen, missing: the poller's
    }
    answer = {
        "A": _event("A", "SD", 6),
        "B": _event("B", "TS", 8),
        "C": _event("C", "D", 9),
        "Z": _event("Z", "D", 9),  # not ours: ignored
    }
    decision = decide(live, answer, config)
    assert [e.skybill_number for e in decision.ingest] == ["B", "C"]
    assert decision.timeline == ["C", "E"]
    assert decision.covered == {"A", "B", "C", "E"}
    assert set(decision.seen) == {"B", "C"}
    paid, left = timeline_order(decision, 1)
    assert (paid, left) == (["C"], ["E"])


def test_windows_targets_and_the_timeline_budget() -> None:
    days = [dt.date(2026, 3, 2), dt.date(2026, 3, 5), dt.date(2026, 4, 20)]
    windows = deposit_windows(days)
    assert windows[0][0] == dt.date(2026, 3, 1) and windows[-1][1] == dt.date(2026, 4, 21)
    assert all((last - first).days <= MAX_WINDOW_DAYS for first, last in windows)
    assert deposit_windows([]) == []
    main = ChronopostCredentials("19869502", "x")
    relay = ChronopostCredentials("19869502", "x", "7")
    other = ChronopostCredentials("11111111", "y")
    assert [(c.account_number, code) for c, code in search_targets([main, relay, other])] == [
        ("19869502", "ALL"),
        ("11111111", ""),
    ]
    bucket = TimelineBudget(budget=500, searches_per_hour=12, round_seconds=300)
    paid = sum(bucket.grant(1000, 300) for _ in range(12))  # a whole hour of morning rounds
    assert 0 < paid <= 0.9 * (500 - 12)
    assert TimelineBudget(None, 12, 300).grant(1000, 300) == 1000
