"""Prometheus metrics: carrier and Salesforce calls over the sandboxes, store gauges, /metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from chronoforce import metrics
from chronoforce.chronopost import ChronopostClient
from chronoforce.cli.demo import demo_settings
from chronoforce.config import Secrets, Settings
from chronoforce.domain.errors import ChronoforceError
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Parcel, Shipment
from chronoforce.web.app import create_app

TOKEN = "metrics-test-token-81f2"
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(registry: Any, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return float(found or 0.0)


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both sandboxes on loopback and settings pointing at them."""
    tmp = tmp_path_factory.mktemp("metrics")
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp, cp.url, sf.url, tls.ca_cert)
    try:
        yield {"settings": settings, "carrier": carrier}
    finally:
        sf.stop()
        cp.stop()


def test_carrier_calls_are_timed_by_operation_and_errors_counted_by_code(
    sandboxes: dict[str, Any],
) -> None:
    settings, carrier = sandboxes["settings"], sandboxes["carrier"]
    registry = metrics.REGISTRY
    op = "trackSkybillV2"
    before = value(registry, "chronoforce_carrier_call_seconds_count", operation=op)
    errors_before = value(
        registry, "chronoforce_carrier_errors_total", operation=op, code="CARRIER_TIMEOUT"
    )
    with ChronopostClient.from_settings(settings) as client:
        client.track("XR000000000FR")
        client.track("XR000000001FR")
    assert value(registry, "chronoforce_carrier_call_seconds_count", operation=op) == before + 2
    assert value(registry, "chronoforce_carrier_call_seconds_sum", operation=op) > 0
    # A call that gets no answer in time is counted under its error code.
    short = settings.model_copy(
        update={"chronopost": settings.chronopost.model_copy(update={"read_timeout_s": 0.2})}
    )
    carrier.set_faults(kind="timeout", hang_seconds=1)
    try:
        with (
            ChronopostClient.from_settings(short) as client,
            pytest.raises(ChronoforceError) as raised,
        ):
            client.track("XR000000002FR")
    finally:
        carrier.clear_faults()
    assert raised.value.code == "CARRIER_TIMEOUT"
    after = value(
        registry, "chronoforce_carrier_errors_total", operation=op, code="CARRIER_TIMEOUT"
    )
    assert after == errors_before + 1
    assert value(registry, "chronoforce_carrier_call_seconds_count", operation=op) == before + 3


def test_salesforce_calls_are_counted_by_kind_and_the_budget_is_exported(
    sandboxes: dict[str, Any],
) -> None:
    registry = metrics.REGISTRY
    before = value(registry, "chronoforce_salesforce_calls_total", kind="query", status="2xx")
    with SalesforceClient.from_settings(sandboxes["settings"]) as client:
        list(client.query_iter("SELECT Id FROM Order LIMIT 1"))
        usage = client.usage
    assert (
        value(registry, "chronoforce_salesforce_calls_total", kind="query", status="2xx")
        == before + 1
    )
    assert usage is not None
    assert value(registry, "chronoforce_salesforce_api_used") == usage.used
    assert value(registry, "chronoforce_salesforce_api_max") == usage.max
    assert metrics.api_usage() == (usage.used, usage.max)


@pytest.fixture()
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    yield s
    s.dispose()


def test_store_gauges_count_labels_queue_exceptions_and_tracking_staleness(store: Store) -> None:
    with store.session() as session:
        labeled = Shipment(
            sf_object="Order", sf_id="8018d0000000001AAA", state="labeled",
            status="in_transit", next_poll_at=NOW - dt.timedelta(minutes=30),
        )  # fmt: skip
        delivered = Shipment(
            sf_object="Order", sf_id="8018d0000000002AAA", state="labeled",
            status="delivered", next_poll_at=NOW - dt.timedelta(days=3),
        )  # fmt: skip
        due = Shipment(sf_object="Order", sf_id="8018d0000000003AAA", state="pending")
        later = Shipment(
            sf_object="Order", sf_id="8018d0000000004AAA", state="retry",
            next_attempt_at=NOW + dt.timedelta(minutes=5),
        )  # fmt: skip
        session.add_all([labeled, delivered, due, later])
        session.flush()
        session.add_all(
            [
                Parcel(shipment_id=labeled.id, skybill_number="XR1FR", weight_kg=1),
                Parcel(shipment_id=labeled.id, skybill_number="XR2FR", weight_kg=1, position=2),
                Parcel(shipment_id=delivered.id, skybill_number="XR3FR", weight_kg=1, live=False),
                Outbox(dedup_key="a", sf_object="Order", operation="update", payload={}),
                Outbox(
                    dedup_key="b", sf_object="Order", operation="update", payload={}, state="sent"
                ),
                ExceptionRow(
                    key="k1",
                    operation="label.create",
                    kind="address",
                    code="COUNTRY_UNKNOWN",
                    message="m",
                ),
                ExceptionRow(
                    key="k2",
                    operation="label.create",
                    kind="address",
                    code="COUNTRY_UNKNOWN",
                    message="m",
                    state="resolved",
                ),
            ]
        )
    registry = metrics.CollectorRegistry()
    registry.register(metrics.StoreCollector(store, now=lambda: NOW))
    got = samples(metrics.render(registry).decode())
    assert got[("chronoforce_labels_created_total", ())] == 3  # voided labels were made too
    assert got[("chronoforce_queue_depth", (("queue", "labels"),))] == 1  # the retry waits
    assert got[("chronoforce_queue_depth", (("queue", "outbox"),))] == 1
    assert got[("chronoforce_shipments", (("state", "labeled"),))] == 2
    key = ("chronoforce_exceptions_open", (("code", "COUNTRY_UNKNOWN"), ("kind", "address")))
    assert got[key] == 1
    assert got[("chronoforce_tracking_overdue_shipments", ())] == 1  # delivered stops polling
    assert got[("chronoforce_tracking_staleness_seconds", ())] == 1800


def _serve(store: Store, **console: Any) -> tuple[BackgroundServer, httpx.Client]:
    settings = Settings(
        database_url=str(store.engine.url),
        console=console,
        secrets=Secrets(metrics_token=SecretStr(TOKEN)),
    )
    server = BackgroundServer(create_app(settings, SimpleNamespace(store=store))).start()
    return server, httpx.Client(base_url=server.url, timeout=30)


def test_metrics_need_the_bearer_token_unless_configured_open(store: Store) -> None:
    server, client = _serve(store)
    try:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "Bearer" in wrong.headers["www-authenticate"]
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(ok.text)}
        assert {
            "chronoforce_carrier_call_seconds",
            "chronoforce_labels_created",
            "chronoforce_queue_depth",
            "chronoforce_tracking_staleness_seconds",
            "chronoforce_salesforce_calls",
        } <= names
        assert TOKEN not in ok.text
    finally:
        client.close()
        server.stop()
    server, client = _serve(store, metrics="open")
    try:
        assert client.get("/metrics").status_code == 200
    finally:
        client.close()
        server.stop()
