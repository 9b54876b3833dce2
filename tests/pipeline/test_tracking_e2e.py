"""Tracking end to end over both sandboxes: labelled parcels follow the sandbox's scenarios on its
clock, are polled with the real Chronopost client or pushed to the webhook over HTTP, and the
normalized status lands on Shipment, Order, tracking events and Cases in the Salesforce sandbox.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from chronoforce.cli.demo import demo_settings
from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.chronopost.tables import SCENARIOS
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Parcel, Shipment, WebhookInbox
from chronoforce.web.app import create_app
from chronoforce.web.webhooks import PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

SECRET = "whsec-e2e-41d9"
TRACKING = {
    "calls_per_second": 1000,
    "order_status_map": {"delivered": "Activated"},
    "case": {"origin": "Web", "update_status": "Escalated"},
}
# Where each sandbox scenario ends (domain/status.py on the sandbox's event codes).
FINAL = {
    "delivered": "delivered",
    "absent": "delivered",
    "relay": "delivered",
    "refused": "returned",
    "address_incorrect": "returned",
    "damaged": "returned",
    "customs": "exception",
    "anomaly": "exception",
    "return_to_sender": "returned",
}
CASE_SCENARIOS = {
    "refused",
    "address_incorrect",
    "damaged",
    "customs",
    "anomaly",
    "return_to_sender",
}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=24, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    secrets = settings.secrets.model_copy(update={"webhook_secret": SecretStr(SECRET)})
    settings = settings.model_copy(update={"tracking": TRACKING, "secrets": secrets})
    runtime = build_runtime(settings)
    runtime.now = carrier.now  # our clock is the sandbox's: its events happen on its time
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def label(world: dict[str, Any], scenarios: list[str]) -> dict[str, str]:
    """Mark orders with sandbox scenarios, label them through the pipeline: order id → scenario."""
    org, runtime = world["org"], world["runtime"]
    orders = [o for o in org.records("Order") if o["ShippingCountry"] in ("France", "FR")]
    assert len(orders) >= len(scenarios), "the seed has enough French orders"
    chosen: dict[str, str] = {}
    for order, scenario in zip(orders, scenarios, strict=False):
        street = f"{order['ShippingStreet']}\n[scenario:{scenario}]"
        org.org.update("Order", order["Id"], {"ShippingStreet": street})
        chosen[order["Id"]] = scenario
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    runtime.flush()
    with runtime.store.session() as session:
        labeled = set(session.scalars(select(Shipment.sf_id).where(Shipment.state == "labeled")))
    return {k: v for k, v in chosen.items() if k in labeled}


def follow(runtime: Runtime, carrier: ChronopostSandbox, hours: float, step: float = 1.0) -> int:
    """Advance the sandbox clock `hours`, a poll round and a flush every `step`: carrier calls."""
    calls = 0
    for _ in range(math.ceil(hours / step)):
        carrier.advance_clock(dt.timedelta(hours=step))
        calls += runtime.poll_once().calls
        runtime.flush_tracking()
    return calls


def by_id(org: SalesforceSandbox, sobject: str) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in org.records(sobject)}


def cases_of(org: SalesforceSandbox, order_id: str) -> list[dict[str, Any]]:
    return [c for c in org.records("Case") if c.get("Chronopost_Order__c") == order_id]


def comments_of(org: SalesforceSandbox, case_id: str) -> list[str]:
    return [c["CommentBody"] for c in org.records("CaseComment") if c["ParentId"] == case_id]


def test_every_sandbox_scenario_reaches_its_status_in_salesforce(world: dict[str, Any]) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    chosen = label(world, list(FINAL))
    assert set(chosen.values()) == set(FINAL), "every scenario has a labelled order"
    follow(runtime, carrier, hours=168, step=2.0)  # the absent retry waits for a working day

    orders = by_id(org, "Order")
    shipments = by_id(org, "Shipment")
    events = org.records("Chronopost_Tracking_Event__c")
    with runtime.store.session() as session:
        ours = {s.sf_id: s for s in session.scalars(select(Shipment))}
        skybills = {s.sf_id: [p.skybill_number for p in s.parcels if p.live] for s in ours.values()}
    for order_id, scenario in chosen.items():
        expected = FINAL[scenario]
        order = orders[order_id]
        assert order["Chronopost_Status__c"] == expected, (scenario, order_id)
        assert order["Status"] == ("Activated" if expected == "delivered" else "Draft"), scenario
        last_code = SCENARIOS[scenario][-1][0]
        assert order["Chronopost_Last_Event_Code__c"] == last_code, scenario
        assert ours[order_id].status == expected
        assert ours[order_id].next_poll_at is None or expected == "exception", scenario
        # One tracking-event record per sandbox event of each parcel, linked to the order.
        for skybill in skybills[order_id]:
            codes = [e["Code__c"] for e in events if e["Skybill_Number__c"] == skybill]
            assert sorted(codes) == sorted(c for c, _ in SCENARIOS[scenario]), scenario
            assert all(
                e["Order__c"] == order_id for e in events if e["Skybill_Number__c"] == skybill
            )
        linked = ours[order_id].source.get("shipment_id")
        if linked:
            shipment = shipments[linked]
            assert shipment["Chronopost_Status__c"] == expected
            assert shipment["Status"] == ("Delivered" if expected == "delivered" else None)
    # Cases: exactly one per exception order, none for the others.
    for order_id, scenario in chosen.items():
        assert len(cases_of(org, order_id)) == (1 if scenario in CASE_SCENARIOS else 0), scenario


def test_an_exception_opens_one_case_updated_by_later_events_and_closed_by_delivery(
    world: dict[str, Any],
) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    chosen = label(world, ["refused", "customs"])
    refused = next(k for k, v in chosen.items() if v == "refused")
    follow(runtime, carrier, hours=26, step=1.0)  # PR at 23 h, seen by the next in-transit poll
    (case,) = cases_of(org, refused)
    assert case["Status"] == "New" and case["Chronopost_Status__c"] == "exception"
    assert case["Origin"] == "Web" and case["Priority"] == "High"
    assert comments_of(org, case["Id"]) == []
    follow(runtime, carrier, hours=48, step=2.0)  # R at 70 h
    (case,) = cases_of(org, refused)
    assert case["Status"] == "Escalated" and case["Chronopost_Status__c"] == "returned"
    notes = comments_of(org, case["Id"])
    assert [n.split()[1] for n in notes] == ["R"]

    # A customs hold that is then delivered (pushed over the webhook): comment and close.
    customs = next(k for k, v in chosen.items() if v == "customs")
    (held,) = cases_of(org, customs)
    assert held["Chronopost_Status__c"] == "exception"
    with runtime.store.session() as session:
        skybills = session.scalars(
            select(Parcel.skybill_number).join(Shipment).where(Shipment.sf_id == customs)
        ).all()
    delivered_at = carrier.now().astimezone(dt.UTC).replace(microsecond=0)
    server = BackgroundServer(create_app(runtime.settings, runtime)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = push(client, [pushed(f"{s}-D", s, "D", delivered_at) for s in skybills])
            assert answer.status_code == 202, answer.text
            wait_for_inbox(runtime)
    finally:
        server.stop()
    runtime.flush_tracking()
    (held,) = cases_of(org, customs)
    assert held["Status"] == "Closed" and held["Chronopost_Status__c"] == "delivered"
    assert comments_of(org, held["Id"])[-1].startswith("Chronopost D ")
    assert by_id(org, "Order")[customs]["Chronopost_Status__c"] == "delivered"


def pushed(event_id: str, skybill: str, code: str, when: dt.datetime) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "skybillNumber": skybill,
        "code": code,
        "eventDate": when.isoformat(),
        "eventLabel": "Livré",
        "officeLabel": "PARIS CHRONOPOST",
        "zipCode": "75015",
    }


def push(client: httpx.Client, events: list[dict[str, Any]]) -> httpx.Response:
    body = json.dumps({"events": events}).encode()
    stamp = str(int(time.time()))
    headers = {
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(SECRET, stamp, body),
        "content-type": "application/json",
    }
    return client.post(PATH, content=body, headers=headers)


def wait_for_inbox(runtime: Runtime, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with runtime.store.session() as session:
            states = set(session.scalars(select(WebhookInbox.state)))
        if states == {"done"}:
            return
        time.sleep(0.05)
    raise AssertionError(f"webhook events not processed in {deadline_s}s: {states}")


def test_pushed_events_over_http_reach_salesforce(world: dict[str, Any]) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    chosen = label(world, ["delivered", "delivered", "delivered"])
    with runtime.store.session() as session:
        rows = session.execute(
            select(Shipment.sf_id, Parcel.skybill_number).join(Parcel).where(Parcel.live)
        ).all()
    now = carrier.now().astimezone(dt.UTC).replace(microsecond=0)
    events = [
        pushed(f"{skybill}-{code}", skybill, code, now + dt.timedelta(minutes=i))
        for skybill in sorted({s for _, s in rows})
        for i, code in enumerate(("TA", "D"))
    ]
    server = BackgroundServer(create_app(runtime.settings, runtime)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/health").status_code == 200
            assert push(client, events).status_code == 202
            assert push(client, events).status_code == 409  # the replay is refused
            wait_for_inbox(runtime)
    finally:
        server.stop()
    report = runtime.flush_tracking()
    assert report.failed == 0
    orders = by_id(org, "Order")
    for order_id in chosen:
        assert orders[order_id]["Chronopost_Status__c"] == "delivered"
        assert orders[order_id]["Status"] == "Activated"
    keys = [e["Event_Key__c"] for e in org.records("Chronopost_Tracking_Event__c")]
    assert len(keys) == len(events) == len(set(keys))
    # The poller then finds the same events at the carrier: nothing new is written.
    org.reset_stats()
    follow(runtime, carrier, hours=2, step=1.0)
    assert org.stats()["total"] == 0


# --- delta: Salesforce calls ------------------------------------------------------------------


def test_thousand_changed_parcels_cost_near_the_collection_bound_and_unchanged_cost_nothing(
    tmp_path: Path,
) -> None:
    """Counted by the Salesforce sandbox: writes for 1,000 parcels with a new event stay within
    1.1 × ceil(writes/200) per object; the same events again (a full resync) write nothing."""
    tls = ensure_tls(tmp_path / "tls")
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=1000, seed=3)
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, "http://127.0.0.1:9", sf.url, tls.ca_cert)
    runtime = build_runtime(settings.model_copy(update={"tracking": TRACKING}))
    try:
        linked = {s["Order__c"]: s["Id"] for s in org.records("Shipment") if s.get("Order__c")}
        orders = [o["Id"] for o in org.records("Order")]
        with runtime.store.session() as session:  # as labels.py leaves them
            for i, order_id in enumerate(orders):
                shipment = Shipment(
                    sf_object="Order",
                    sf_id=order_id,
                    order_number=f"{i:08d}",
                    state="labeled",
                    status="label_created",
                    source={"shipment_id": linked.get(order_id, "")},
                )
                session.add(shipment)
                session.flush()
                session.add(
                    Parcel(
                        shipment_id=shipment.id,
                        skybill_number=f"XY{i:09d}FR",
                        weight_kg=Decimal("1.0"),
                    )
                )
        start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

        def events(*codes: str) -> list[TrackingEvent]:
            return [
                TrackingEvent(f"XY{i:09d}FR", code, code, start + dt.timedelta(hours=h))
                for i in range(len(orders))
                for h, code in enumerate(codes)
            ]

        runtime.tracking.ingest(events("DC"))
        assert runtime.flush_tracking().failed == 0
        org.reset_stats()
        changed = runtime.tracking.ingest(events("DC", "DB"))  # a new event on every parcel
        assert len(changed.changed) == len(orders)
        report = runtime.flush_tracking()
        writes = {
            "Order": len(orders),
            "Shipment": sum(1 for o in orders if linked.get(o)),
            "Chronopost_Tracking_Event__c": len(orders),
        }
        lower_bound = sum(math.ceil(n / 200) for n in writes.values())
        assert report.failed == 0 and report.sent == sum(writes.values())
        assert org.stats()["total"] <= 1.1 * lower_bound, org.stats()
        orders_now = by_id(org, "Order")
        assert {orders_now[o]["Chronopost_Status__c"] for o in orders} == {"picked_up"}

        org.reset_stats()
        again = runtime.tracking.ingest(events("DC", "DB"))  # full resync, nothing new
        flushed = runtime.flush_tracking()
        assert (again.new_events, again.changed, flushed.sent) == (0, [], 0)
        assert org.stats()["total"] == 0
    finally:
        runtime.close()
        sf.stop()


# --- the CLI, against both sandboxes -----------------------------------------------------------


def test_poll_once_and_track_through_the_cli(world: dict[str, Any], tmp_path: Path) -> None:
    from chronoforce.cli import app
    from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD
    from chronoforce.sandbox.salesforce import DEMO_CLIENT_SECRET

    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    (order_id,) = label(world, ["delivered"])
    settings = runtime.settings
    config = tmp_path / "chronoforce.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": settings.database_url,
                "chronopost": {"base_url": settings.chronopost.base_url,
                               "account_number": DEMO_ACCOUNT},
                "salesforce": {"instance_url": settings.salesforce.instance_url,
                               "login_url": settings.salesforce.login_url,
                               "client_id": settings.salesforce.client_id,
                               "ca_file": str(settings.salesforce.ca_file)},
                # The per-parcel poller this test steers (next_poll_at); `poll --once` runs a
                # delta round by default (tests/pipeline/test_tracking_delta.py).
                "tracking": {**TRACKING, "mode": "poll"},
                "logging": {"level": "warning", "format": "json"},
            }
        )
    )  # fmt: skip
    env = {
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "COLUMNS": "200",
    }
    cli = CliRunner()
    carrier.advance_clock(dt.timedelta(hours=22))  # TA at 21 h
    with runtime.store.session() as session:  # due now (the CLI runs on the wall clock)
        shipment = session.scalars(select(Shipment).where(Shipment.sf_id == order_id)).one()
        shipment.next_poll_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        skybill = next(p.skybill_number for p in shipment.parcels if p.live)
        order_number = shipment.order_number

    polled = cli.invoke(app, ["--config", str(config), "poll", "--once", "--json"], env=env)
    assert polled.exit_code == 0, polled.output
    summary = json.loads(polled.output)
    assert (summary["carrier_calls"], summary["changed"]) == (1, 1)
    assert summary["salesforce_writes"] >= 2  # the Order and the tracking events
    assert by_id(org, "Order")[order_id]["Chronopost_Status__c"] == "out_for_delivery"

    carrier.advance_clock(dt.timedelta(hours=2))  # D at 23 h
    tracked = cli.invoke(app, ["--config", str(config), "track", skybill, "--json"], env=env)
    assert tracked.exit_code == 0, tracked.output
    data = json.loads(tracked.output)
    assert data["status"] == "delivered"
    assert [e["code"] for e in data["events"]] == [c for c, _ in SCENARIOS["delivered"]]

    shown = cli.invoke(app, ["--config", str(config), "track", "--order", order_number], env=env)
    assert shown.exit_code == 0, shown.output
    assert "delivered" in shown.output and skybill in shown.output
