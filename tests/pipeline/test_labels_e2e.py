"""Seeded Salesforce orders become Chronopost labels written back, over real HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.cli.common import run_until
from chronoforce.cli.demo import demo_settings
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import ExceptionRow, Parcel, Shipment

ORDERS = 50


CLUSTER = pytest.mark.parametrize("world", ["cluster"], indirect=True)


@pytest.fixture()
def world(tmp_path: Path, backend: Any, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Both sandboxes over HTTP, on SQLite + huey-SQLite and on PostgreSQL + Redis. A test
    that runs the pipeline (`run_until`) asks for a runtime with the cluster's gates:
    `@CLUSTER` (indirect parameter); the others drive steps by hand on local gates."""
    tls = ensure_tls(tmp_path / "tls")
    # Not about the cancel window (tests/chronopost/test_documented_answers.py is).
    carrier = ChronopostSandbox(db_path=":memory:", cancel_window=dt.timedelta(0))
    org = SalesforceSandbox(db_path=":memory:")
    seeded = org.seed(orders=ORDERS, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert).model_copy(
        update=backend.settings_update()
    )
    runtime = build_runtime(settings, cluster=getattr(request, "param", "") == "cluster")
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime, "seeded": seeded}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def _orders(org: SalesforceSandbox) -> dict[str, dict[str, Any]]:
    return {o["Id"]: o for o in org.records("Order")}


@CLUSTER
def test_every_order_gets_one_label_or_one_exception(world: dict[str, Any]) -> None:
    org, carrier, runtime = world["org"], world["carrier"], world["runtime"]
    run_until(runtime, workers=4, until_idle=True, max_seconds=120)
    orders = _orders(org)
    with runtime.store.session() as session:
        shipments = list(session.scalars(select(Shipment)))
        parcels = list(session.scalars(select(Parcel).where(Parcel.live)))
        problems = list(session.scalars(select(ExceptionRow).where(ExceptionRow.state == "open")))
    assert len(shipments) == ORDERS
    labeled = [s for s in shipments if s.state == "labeled"]
    failed = [s for s in shipments if s.state == "exception"]
    assert len(labeled) + len(failed) == ORDERS
    assert labeled and failed, "the seed has good and deliberately broken orders"
    # At the carrier: exactly the labels we hold, none more.
    assert carrier.live_labels() == len(parcels)
    # In Salesforce: tracking number, URL, status and one file per labeled order.
    versions = org.records("ContentVersion")
    links = org.records("ContentDocumentLink")
    assert len(versions) == len(labeled)
    for shipment in labeled:
        order = orders[shipment.sf_id]
        numbers = order["Chronopost_Tracking_Number__c"].split(",")
        assert numbers and all(n.endswith("FR") for n in numbers)
        assert order["Chronopost_Label_Status__c"] == "Created"
        assert order["Chronopost_Status__c"] == "label_created"
        assert "chronopost.fr" in order["Chronopost_Tracking_Url__c"]
        linked = {
            link["LinkedEntityId"]
            for link in links
            for v in versions
            if v["FirstPublishLocationId"] == shipment.sf_id
            and link["ContentDocumentId"] == v["ContentDocumentId"]
        }
        assert shipment.sf_id in linked
        if shipment.source.get("shipment_id"):
            assert shipment.source["shipment_id"] in linked
    # Broken orders: an exception here and there, and nothing else.
    errors = org.records("Chronopost_Integration_Error__c")
    assert {e["Record_Id__c"] for e in errors} == {s.sf_id for s in failed}
    for shipment in failed:
        assert orders[shipment.sf_id]["Chronopost_Label_Status__c"] == "Error"
        assert not orders[shipment.sf_id].get("Chronopost_Tracking_Number__c")
    assert {p.shipment_id for p in problems} == {s.id for s in failed}
    assert all(p.field for p in problems if p.kind == "address")


def test_writeback_costs_the_lower_bound_of_calls(world: dict[str, Any]) -> None:
    org, runtime = world["org"], world["runtime"]
    ids = runtime.detect()
    for shipment_id in ids:
        runtime.labels.process(shipment_id)
    org.reset_stats()
    before = runtime.salesforce.api_calls()
    report = runtime.flush()
    calls = runtime.salesforce.api_calls() - before
    with runtime.store.session() as session:
        labeled = session.scalars(select(Shipment).where(Shipment.state == "labeled")).all()
        failed = session.scalars(select(Shipment).where(Shipment.state == "exception")).all()
    n = len(labeled)
    # Order + Shipment updates, error records and Order error flags: one collection each per
    # 200; the files: one ContentVersion collection, one query for their documents, one
    # collection of links — the bound is one call per file, we need three in all.
    bound = (
        math.ceil((n + len(failed)) / 200)  # Order updates (labels and error flags)
        + math.ceil(n / 200)  # Shipment updates
        + (math.ceil(len(failed) / 200) if failed else 0)  # integration error records
        + 3  # files: create, look up documents, link
    )
    assert report.failed == 0
    assert calls <= bound
    assert calls < n, "far fewer calls than one request per record"
    # Flushing again writes nothing.
    again = runtime.flush()
    assert again.sent == 0 and again.calls == 0


@CLUSTER
def test_detecting_again_makes_no_second_label(world: dict[str, Any]) -> None:
    carrier, runtime = world["carrier"], world["runtime"]
    run_until(runtime, workers=4, until_idle=True, max_seconds=120)
    live = carrier.live_labels()
    files = len(world["org"].records("ContentVersion"))
    runtime._reader = None  # a restarted process: no in-memory dedup, only the watermark
    assert runtime.detect() == []
    run_until(runtime, workers=4, until_idle=True, max_seconds=30)
    assert carrier.live_labels() == live
    assert len(world["org"].records("ContentVersion")) == files


def test_a_crash_during_the_carrier_call_leaves_one_live_label(world: dict[str, Any]) -> None:
    """The label was made but the answer was lost: recovery cancels it and records why."""
    carrier, runtime = world["carrier"], world["runtime"]
    ids = runtime.detect()
    runtime_: Runtime = runtime
    target = None
    for shipment_id in ids:
        with runtime_.store.session() as session:
            shipment = session.get_one(Shipment, shipment_id)
            session.expunge(shipment)
        try:
            prepared = runtime_.labels.prepare(shipment)
        except Exception:
            continue
        target = shipment
        runtime_.carrier.create_shipment(prepared.request)  # the answer "never arrives"
        break
    assert target is not None
    with runtime_.store.session() as session:
        row = session.get_one(Shipment, target.id)
        row.state = "calling"
    assert carrier.live_labels() == 1
    assert runtime_.labels.process(target.id) == "labeled"
    assert carrier.live_labels() == 1  # the orphan was cancelled, the new one is live
    with runtime_.store.session() as session:
        notes = session.scalars(
            select(ExceptionRow).where(ExceptionRow.code == "ORPHAN_LABEL_CANCELLED")
        ).all()
    assert len(notes) == 1 and notes[0].state == "resolved"


@CLUSTER
def test_a_changed_order_before_pickup_gets_a_new_label_and_the_old_one_voided(
    world: dict[str, Any],
) -> None:
    carrier, org, runtime = world["carrier"], world["org"], world["runtime"]
    run_until(runtime, workers=4, until_idle=True, max_seconds=120)
    live = carrier.live_labels()
    with runtime.store.session() as session:
        shipment = session.scalars(select(Shipment).where(Shipment.state == "labeled")).first()
        assert shipment is not None
        old = [p.skybill_number for p in shipment.parcels if p.live]
        order_id = shipment.sf_id
    runtime.salesforce.collection(
        "update",
        "Order",
        [
            {
                "Id": order_id,
                "ShippingStreet": "12 rue de la Paix",
                "ShippingCity": "Paris",
                "ShippingPostalCode": "75002",
                "ShippingCountry": "France",
                "Chronopost_Label_Status__c": "Requested",
            }
        ],
    )
    run_until(runtime, workers=4, until_idle=True, max_seconds=60)
    with runtime.store.session() as session:
        parcels = session.scalars(select(Parcel).where(Parcel.skybill_number.in_(old))).all()
        assert parcels and not any(p.live for p in parcels)
        fresh = session.scalars(
            select(Parcel).where(Parcel.shipment_id == shipment.id, Parcel.live)
        ).all()
    assert fresh and not set(old) & {p.skybill_number for p in fresh}
    assert carrier.live_labels() == live  # one voided, one made
    order = {o["Id"]: o for o in org.records("Order")}[order_id]
    assert order["Chronopost_Tracking_Number__c"] == ",".join(p.skybill_number for p in fresh)
    assert order["Chronopost_Label_Status__c"] == "Created"


@CLUSTER
def test_exceptions_commands_list_show_retry_and_resolve(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from chronoforce.cli import app

    runtime = world["runtime"]
    run_until(runtime, workers=4, until_idle=True, max_seconds=120)
    monkeypatch.setenv("CHRONOFORCE_DATABASE_URL", runtime.settings.database_url)
    cli = CliRunner()
    listed = json.loads(cli.invoke(app, ["exceptions", "list", "--json"]).output)
    assert listed and all(r["sf_id"] and r["code"] for r in listed)
    first = listed[0]["id"]
    shown = json.loads(cli.invoke(app, ["exceptions", "show", str(first), "--json"]).output)
    assert shown["message"] and "request_payload" in shown
    assert "255562" not in json.dumps(shown)  # the Chronopost password never shows
    retried = cli.invoke(app, ["exceptions", "retry", str(first)])
    assert retried.exit_code == 0 and "1 labels" in retried.output
    with runtime.store.session() as session:
        row = session.get_one(ExceptionRow, first)
        assert row.state == "retrying"
        assert session.get_one(Shipment, row.shipment_id).state == "pending"
    resolved = cli.invoke(app, ["exceptions", "resolve", str(listed[1]["id"]), "--note", "ok"])
    assert resolved.exit_code == 0
    remaining = json.loads(cli.invoke(app, ["exceptions", "list", "--json"]).output)
    assert {r["id"] for r in remaining} == {r["id"] for r in listed} - {first, listed[1]["id"]}
    assert cli.invoke(app, ["exceptions", "show", "99999"]).exit_code == 1


def test_a_carrier_outage_spends_the_retry_budget_then_backs_off_without_spinning(
    world: dict[str, Any],
) -> None:
    """Errors during the label call leave the outcome unknown: after the budget the shipment
    keeps its `calling` state (recovery looks parcels up before any new call), has an open
    exception, and is not due again at once."""
    import datetime as dt

    from chronoforce.pipeline.labels import MAX_TRANSIENT_ATTEMPTS
    from chronoforce.pipeline.runner import due_shipments
    from chronoforce.sandbox.chronopost import Faults

    carrier, runtime = world["carrier"], world["runtime"]
    ids = runtime.detect()
    carrier.set_faults(Faults(kind="http_503", operations=("shippingMultiParcelV5",)))
    target = None
    for shipment_id in ids:
        outcome = runtime.labels.process(shipment_id)
        if outcome == "retry":
            target = shipment_id
            break
    assert target is not None
    for _ in range(MAX_TRANSIENT_ATTEMPTS):
        with runtime.store.session() as session:
            session.get_one(Shipment, target).next_attempt_at = None
        outcome = runtime.labels.process(target)
    assert outcome == "exception"
    with runtime.store.session() as session:
        row = session.get_one(Shipment, target)
        assert row.state == "calling"
        assert row.next_attempt_at is not None
        due_at = row.next_attempt_at.replace(tzinfo=dt.UTC)
        assert due_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
        open_rows = session.scalars(
            select(ExceptionRow).where(
                ExceptionRow.shipment_id == target, ExceptionRow.state == "open"
            )
        ).all()
    assert len(open_rows) == 1 and open_rows[0].transient
    assert target not in due_shipments(runtime.store, dt.datetime.now(dt.UTC))
    # The sandbox may make the label and lose the answer: each try first cancels what the
    # last one left, so at most the latest orphan is live — and the next try cancels it.
    assert carrier.live_labels() <= 1
    # The carrier is back and an operator retries the exception: due at once, still
    # `calling`, so the try looks the parcels up first; one live label in the end.
    from chronoforce.pipeline import exceptions

    carrier.set_faults(Faults())
    with runtime.store.session() as session:
        assert exceptions.retry(session, open_rows[0].id) == target
    assert target in due_shipments(runtime.store, dt.datetime.now(dt.UTC))
    assert runtime.labels.process(target) == "labeled"
    with runtime.store.session() as session:
        live = session.scalars(
            select(Parcel).where(Parcel.shipment_id == target, Parcel.live)
        ).all()
        assert len(live) == 1
        assert session.get_one(ExceptionRow, open_rows[0].id).state == "resolved"
    assert carrier.live_labels() == 1, "the orphan was adopted or cancelled, never doubled"


def test_an_open_breaker_defers_the_label_without_calling_or_spending_an_attempt(
    world: dict[str, Any],
) -> None:
    import datetime as dt

    from chronoforce.pipeline import cluster
    from chronoforce.pipeline.breaker import CircuitBreaker

    carrier, runtime = world["carrier"], world["runtime"]
    ids = runtime.detect()
    breaker = CircuitBreaker(runtime.store, failures_to_open=2, open_s=30, refresh_s=0)
    runtime.labels.breaker = breaker
    breaker.on_failure()
    breaker.on_failure()  # another worker saw the carrier fail: open for the whole cluster
    calls = len(carrier.requests())
    assert runtime.labels.process(ids[0]) == "deferred"
    assert len(carrier.requests()) == calls
    with runtime.store.session() as session:
        row = session.get_one(Shipment, ids[0])
        assert row.attempts == 0 and row.state == "pending"
        assert row.last_error.startswith("CIRCUIT_OPEN")
        assert cluster.utc(row.next_attempt_at) > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)


def test_a_failed_probe_gives_its_attempt_back_and_reopens_the_breaker(
    world: dict[str, Any],
) -> None:
    """A long outage is the carrier's: the order that happens to be the probe each time the
    breaker half-opens must not spend its retry budget on it. A plain failure does spend one."""
    import datetime as dt

    from chronoforce.pipeline.breaker import CircuitBreaker
    from chronoforce.sandbox.chronopost import Faults

    carrier, runtime = world["carrier"], world["runtime"]
    ids = runtime.detect()
    carrier.set_faults(Faults(kind="http_503", operations=("shippingMultiParcelV5",)))
    assert runtime.labels.process(ids[0]) == "retry"  # no breaker yet: a spent attempt
    clock = {"now": dt.datetime.now(dt.UTC)}
    breaker = CircuitBreaker(
        runtime.store, failures_to_open=1, open_s=30, refresh_s=0, now=lambda: clock["now"]
    )
    runtime.labels.breaker = breaker
    breaker.on_failure()  # open, for 30 s of the breaker's clock
    clock["now"] += dt.timedelta(seconds=31)  # the pause is over: the next call is the probe
    calls = len(carrier.requests())
    assert runtime.labels.process(ids[1]) == "retry"
    assert len(carrier.requests()) == calls + 1, "the probe did call the carrier"
    with runtime.store.session() as session:
        spent = session.get_one(Shipment, ids[0])
        probe = session.get_one(Shipment, ids[1])
        assert spent.attempts == 1
        assert probe.attempts == 0, "the failed probe gave its attempt back"
        assert probe.state == "calling"  # its outcome is unknown: looked up before a new call
    state, until = breaker.state()
    assert state == "open" and until is not None
    assert until - clock["now"] >= dt.timedelta(seconds=59), "re-opened for twice as long"


def test_run_serves_the_web_app_beside_the_pipeline(world: dict[str, Any]) -> None:
    import socket
    import time

    import httpx

    from chronoforce.cli.common import WebThread
    from chronoforce.config import WebConfig

    runtime = world["runtime"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime.settings = runtime.settings.model_copy(update={"web": WebConfig(port=port)})
    answer = None
    with WebThread(runtime):
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)  # the server is still binding its port
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    assert answer is not None and answer.status_code == 200, answer and answer.text
    assert answer.json()["checks"]["queue"] == "ok"
    assert health.json()["status"] == "ok"


def test_a_label_from_a_stalled_attempt_landing_after_recovery_is_cancelled_by_verify(
    world: dict[str, Any],
) -> None:
    """The replaced attempt's call reaches the carrier only after the recovery lookup: the
    label made then is found by the later verification lookup and cancelled."""
    import datetime as dt

    from chronoforce.pipeline.runner import due_verifications

    carrier, runtime = world["carrier"], world["runtime"]
    labels = runtime.labels
    target = None
    for shipment_id in runtime.detect():
        with runtime.store.session() as session:
            shipment = session.get_one(Shipment, shipment_id)
            session.expunge(shipment)
        try:
            prepared = labels.prepare(shipment)
        except Exception:
            continue
        target = shipment
        break
    assert target is not None
    with runtime.store.session() as session:
        session.get_one(Shipment, target.id).state = "calling"  # an attempt's outcome unknown
    assert labels.process(target.id) == "labeled"
    runtime.carrier.create_shipment(prepared.request)  # the stalled attempt lands now
    assert carrier.live_labels() == 2
    now = dt.datetime.now(dt.UTC)
    assert due_verifications(runtime.store, now) == []  # not before 2 × lease
    assert due_verifications(runtime.store, now + 2 * labels.lease) == [target.id]
    with runtime.store.session() as session:
        session.get_one(Shipment, target.id).verify_at = now
    assert labels.verify(target.id) == "verified"
    assert carrier.live_labels() == 1
    with runtime.store.session() as session:
        row = session.get_one(Shipment, target.id)
        assert row.verify_at is None and row.state == "labeled"
        live = session.scalars(select(Parcel).where(Parcel.shipment_id == target.id, Parcel.live))
        assert {p.skybill_number for p in live} == {
            p.skybill for p in carrier.parcels() if not p.cancelled_at
        }


def test_a_second_worker_reading_the_same_orders_fetches_nothing_more(
    world: dict[str, Any],
) -> None:
    """Another worker's detection turn reads orders this one recorded: its reader has no memory
    of them, but their versions are recorded, so neither their items nor their linked
    shipments are fetched again, and nothing is queued twice."""
    org, runtime = world["org"], world["runtime"]
    assert len(runtime.detect()) == ORDERS
    second = build_runtime(runtime.settings)
    try:
        org.reset_stats()
        assert second.detect() == []
        assert org.stats()["query"] == 1  # the delta read itself, nothing per page
    finally:
        second.close()
