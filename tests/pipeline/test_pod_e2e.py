"""Proof of delivery end to end over both sandboxes (issue 21): a parcel delivered in the
Chronopost sandbox gets its POD file on the Order and the Shipment (and its open Case) in the
Salesforce sandbox the next working day of the sandbox clock, not before; "not ready yet" is
asked again each working day and given up after five; a parcel that needs no signature records
why and stops. The pipeline's clock is the sandbox's; nothing sleeps."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from chronoforce.cli.demo import demo_settings
from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline import pod
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Shipment, TrackingCase

PARIS = ZoneInfo("Europe/Paris")
TRACKING = {"calls_per_second": 1000, "case": {"origin": "Web"}}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    _to_monday_morning(carrier)  # labels on a Monday: deliveries on Tuesday, PODs on Wednesday
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=12, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    settings = settings.model_copy(update={"tracking": TRACKING})
    runtime = build_runtime(settings)
    runtime.now = carrier.now  # our clock is the sandbox's
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime, "settings": settings}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _to_monday_morning(carrier: ChronopostSandbox) -> None:
    now = carrier.now().astimezone(PARIS)
    monday = (now + dt.timedelta(days=7 - now.weekday())).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    carrier.advance_clock(monday - now)


def label(world: dict[str, Any], scenarios: list[str]) -> dict[str, str]:
    """Mark French orders with sandbox scenarios and label them: scenario → order id."""
    org, runtime = world["org"], world["runtime"]
    with_shipment = {s["Order__c"] for s in org.records("Shipment")}
    orders = sorted(
        (o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR")),
        key=lambda o: o["Id"] not in with_shipment,  # those with a Shipment first
    )
    chosen: dict[str, str] = {}
    for order, scenario in zip(orders, scenarios, strict=False):
        street = f"{order['ShippingStreet']}\n[scenario:{scenario}]"
        org.org.update("Order", order["Id"], {"ShippingStreet": street})
        chosen[scenario] = order["Id"]
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    runtime.flush()
    assert len(chosen) == len(scenarios)
    return chosen


def follow(runtime: Runtime, carrier: ChronopostSandbox, hours: float) -> None:
    """Advance the sandbox clock hour by hour: a poll round, a flush and a sweep each."""
    for _ in range(math.ceil(hours)):
        carrier.advance_clock(dt.timedelta(hours=1))
        runtime.poll_once()
        runtime.flush_tracking()
        runtime.pod_due()
        runtime.flush()


def follow_until_delivered(
    runtime: Runtime, carrier: ChronopostSandbox, order_id: str, max_hours: int = 40
) -> None:
    """Follow hour by hour until our store has the delivery (a deadline, not a sleep)."""
    for _ in range(max_hours):
        follow(runtime, carrier, 1)
        if shipment_of(runtime, order_id).status == "delivered":
            return
    raise AssertionError(f"order {order_id} not delivered within {max_hours} sandbox hours")


def shipment_of(runtime: Runtime, order_id: str) -> Shipment:
    with runtime.store.session() as session:
        row = session.scalars(select(Shipment).where(Shipment.sf_id == order_id)).one()
        session.expunge(row)
        return row


def skybill_of(runtime: Runtime, order_id: str) -> str:
    with runtime.store.session() as session:
        row = session.scalars(select(Shipment).where(Shipment.sf_id == order_id)).one()
        return next(p.skybill_number for p in row.parcels if p.live)


def pod_files(org: SalesforceSandbox) -> dict[str, set[str]]:
    """Each POD file's title → the records it is linked to."""
    titles = {
        v["ContentDocumentId"]: v["Title"]
        for v in org.records("ContentVersion")
        if v["Title"].startswith("Chronopost proof of delivery")
    }
    linked: dict[str, set[str]] = {t: set() for t in titles.values()}
    for link in org.records("ContentDocumentLink"):
        if link["ContentDocumentId"] in titles:
            linked[titles[link["ContentDocumentId"]]].add(link["LinkedEntityId"])
    return linked


def asked(carrier: ChronopostSandbox, skybill: str) -> int:
    """searchPOD requests the sandbox received for this parcel."""
    return sum(skybill in r.request for r in carrier.requests("searchPOD"))


def advance_to(runtime: Runtime, carrier: ChronopostSandbox, moment: dt.datetime) -> None:
    carrier.advance_clock(max(dt.timedelta(0), moment - carrier.now()))
    runtime.pod_due()
    runtime.flush()


def test_delivered_parcel_gets_its_pod_file_the_next_working_day_not_before(
    world: dict[str, Any],
) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    order_id = label(world, ["delivered"])["delivered"]
    skybill = skybill_of(runtime, order_id)
    follow_until_delivered(runtime, carrier, order_id)  # D at 23 h
    row = shipment_of(runtime, order_id)
    assert row.status == "delivered" and row.pod_status == "pending"
    assert row.last_event_at is not None
    first = pod.first_attempt_at(row.last_event_at)
    assert row.pod_next_at is not None and pod._utc(row.pod_next_at) == first
    assert first.astimezone(PARIS).date() > row.last_event_at.astimezone(PARIS).date()
    assert first.astimezone(PARIS).weekday() < 5
    assert asked(carrier, skybill) == 0  # nothing asked before the day comes
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_POD_Status__c"] == "Pending"

    # Asked by hand the same day: Chronopost says "not ready yet" (3); the schedule stays.
    early = runtime.pods.fetch(skybill)
    assert [r.status_code for r in early.results] == [3]
    assert early.status == "pending" and "not ready yet" in early.reason
    assert pod._utc(shipment_of(runtime, order_id).pod_next_at) == first  # type: ignore[arg-type]
    advance_to(runtime, carrier, first - dt.timedelta(minutes=1))
    assert asked(carrier, skybill) == 1 and pod_files(org) == {}  # no parcel's POD is due

    advance_to(runtime, carrier, first)
    assert asked(carrier, skybill) == 2
    shipment_record = str(row.source.get("shipment_id") or "")
    assert shipment_record, "the seed links a Shipment to the order"
    files = pod_files(org)
    assert files[f"Chronopost proof of delivery {skybill}"] == {order_id, shipment_record}
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    shipment = next(s for s in org.records("Shipment") if s["Id"] == shipment_record)
    assert order["Chronopost_POD_Status__c"] == shipment["Chronopost_POD_Status__c"] == "Available"
    version = next(v for v in org.records("ContentVersion") if skybill in v["Title"])
    assert version["PathOnClient"] == f"chronopost-pod-{skybill}.pdf"
    done = shipment_of(runtime, order_id)
    assert (done.pod_status, done.pod_next_at) == ("available", None)

    # Later sweeps and a hand fetch make no second file.
    follow(runtime, carrier, hours=30)
    again = runtime.pods.fetch(skybill)
    runtime.flush()
    assert again.status == "available" and again.results == ()
    assert list(pod_files(org)).count(f"Chronopost proof of delivery {skybill}") == 1
    assert sum(skybill in v["Title"] for v in org.records("ContentVersion")) == 1
    assert asked(carrier, skybill) == 2


def test_not_ready_is_asked_each_working_day_then_given_up_after_five(
    world: dict[str, Any],
) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    order_id = label(world, ["customs"])["customs"]  # never delivered at Chronopost
    skybill = skybill_of(runtime, order_id)
    # A delivery pushed by an intermediary (the same ingestion path as the webhook's) that
    # Chronopost's own tracking does not show: its searchPOD stays "not ready yet" (3).
    delivered = carrier.now().astimezone(dt.UTC).replace(microsecond=0)
    runtime.tracking.ingest([TrackingEvent(skybill, "D", "Livré", delivered)], source="webhook")
    runtime.flush_tracking()
    runtime.pod_due()
    times: list[dt.datetime] = []
    for _ in range(pod.MAX_NOT_READY):
        row = shipment_of(runtime, order_id)
        assert row.pod_status == "pending" and row.pod_next_at is not None
        due = pod._utc(row.pod_next_at)
        advance_to(runtime, carrier, due)
        times.append(due.astimezone(PARIS))
    assert asked(carrier, skybill) == pod.MAX_NOT_READY
    days = [a.date() for a in times]
    assert days == sorted(set(days)) and all(d.weekday() < 5 for d in days)
    assert days[0] > delivered.astimezone(PARIS).date()
    row = shipment_of(runtime, order_id)
    assert row.pod_status == "gave_up" and row.pod_next_at is None
    assert "not ready yet" in row.pod_reason and "after 5 working days" in row.pod_reason
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_POD_Status__c"] == "Gave up"
    carrier.advance_clock(dt.timedelta(days=10))
    runtime.pod_due()
    assert asked(carrier, skybill) == pod.MAX_NOT_READY  # stopped


def test_not_eligible_parcel_records_the_reason_and_stops(world: dict[str, Any]) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    order_id = label(world, ["letterbox"])["letterbox"]  # D1: delivered to the letterbox
    skybill = skybill_of(runtime, order_id)
    follow_until_delivered(runtime, carrier, order_id)
    row = shipment_of(runtime, order_id)
    assert row.pod_status == "pending" and row.pod_next_at is not None
    advance_to(runtime, carrier, pod._utc(row.pod_next_at))
    row = shipment_of(runtime, order_id)
    assert (row.pod_status, row.pod_next_at) == ("not_eligible", None)
    assert "no signature is required" in row.pod_reason
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_POD_Status__c"] == "Not eligible"
    carrier.advance_clock(dt.timedelta(days=7))
    runtime.pod_due()
    assert asked(carrier, skybill) == 1
    assert f"Chronopost proof of delivery {skybill}" not in pod_files(org)


def test_open_case_about_the_parcel_gets_the_pod_file_too(world: dict[str, Any]) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    order_id = label(world, ["delivered_damaged"])["delivered_damaged"]  # DD opens a Case
    skybill = skybill_of(runtime, order_id)
    follow_until_delivered(runtime, carrier, order_id)
    with runtime.store.session() as session:
        case = session.scalars(select(TrackingCase)).one()
        case_id, state = case.case_id, case.state
    assert case_id and state == "open"
    row = shipment_of(runtime, order_id)
    assert row.pod_next_at is not None
    advance_to(runtime, carrier, pod._utc(row.pod_next_at))
    linked = pod_files(org)[f"Chronopost proof of delivery {skybill}"]
    assert {order_id, case_id} <= linked
