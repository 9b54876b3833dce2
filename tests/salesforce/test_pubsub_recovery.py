"""Pub/Sub as the official client does it (issue 19, item 3), over gRPC with TLS on loopback.

One long-lived subscription across detection rounds, quiet periods between keepalives included;
a stored replay id the org no longer retains (older than 72 h of sandbox clock) is sent once,
then dropped: the SOQL delta runs from its watermark and the next subscription starts at LATEST.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chronoforce.cli.demo import demo_settings
from chronoforce.config import SalesforceConfig
from chronoforce.metrics import REGISTRY
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.salesforce.pubsub import PubSubServer
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Shipment, Watermark

TOPIC = "/event/Chronopost_Ship_Request__e"
FAR = "2999-01-01T00:00:00.000Z"  # a delta watermark ahead of everything: only events find orders


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tls = ensure_tls(tmp_path / "tls")
    org = SalesforceSandbox(db_path=":memory:")
    orders = org.seed(orders=4, seed=7)["Order"]
    carrier = ChronopostSandbox(db_path=":memory:").start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    # Keepalives every 0.3 s, none before the first 0.3 s: quiet periods in a few seconds.
    grpc = PubSubServer(org, tls=tls, keepalive=0.3, first_keepalive=0.3).start()
    base = demo_settings(tmp_path, carrier.url, sf.url, tls.ca_cert)
    config = {**base.salesforce.model_dump(), "pubsub_endpoint": grpc.target, "delta_every_s": 3600}
    settings = base.model_copy(update={"salesforce": SalesforceConfig(**config)})
    runtimes: list[Runtime] = []

    def runtime() -> Runtime:
        made = build_runtime(settings)
        runtimes.append(made)
        return made

    try:
        yield {"org": org, "grpc": grpc, "orders": orders, "runtime": runtime}
    finally:
        for made in runtimes:
            made.close()
        grpc.stop()
        sf.stop()
        carrier.stop()


def _ask(runtime: Runtime, order_id: str) -> None:
    runtime.salesforce.connection.sf.Chronopost_Ship_Request__e.create(
        {"Record_Id__c": order_id, "Reason__c": "test"}
    )


def _found(runtime: Runtime, rounds: int = 10) -> list[str]:
    with runtime.store.session() as session:
        before = {s.id for s in session.query(Shipment)}
    for _ in range(rounds):
        if runtime.detect():
            break
    with runtime.store.session() as session:
        return [s.sf_id for s in session.query(Shipment) if s.id not in before]


def test_one_subscription_lives_across_rounds_and_quiet_periods(world: dict[str, Any]) -> None:
    runtime, servicer = world["runtime"](), world["grpc"].servicer
    with runtime.store.session() as session:
        session.add(Watermark(source="delta:Order", value=FAR))
    for _ in range(8):  # ~2.4 s of quiet: several keepalives, no event
        assert runtime.detect() == []
    _ask(runtime, world["orders"][1])
    assert _found(runtime) == [world["orders"][1]]
    _ask(runtime, world["orders"][2])
    assert _found(runtime) == [world["orders"][2]]
    assert servicer.subscribe_calls == 1, "one stream for every round"
    with runtime.store.session() as session:
        stored = session.get_one(Watermark, f"pubsub:{TOPIC}").value
    assert bytes.fromhex(stored), "the replay id is stored (opaque bytes, as hex) after a batch"


def test_an_expired_replay_id_falls_back_to_the_delta_and_resubscribes_at_latest_once(
    world: dict[str, Any],
) -> None:
    org, servicer, orders = world["org"], world["grpc"].servicer, world["orders"]
    first = world["runtime"]()
    with first.store.session() as session:
        session.add(Watermark(source="delta:Order", value=FAR))
    _ask(first, orders[0])
    assert _found(first) == [orders[0]]
    first.close()
    org.advance_clock(dt.timedelta(hours=73))  # the stored id is now outside the retention
    with first.store.session() as session:
        stale = session.get_one(Watermark, f"pubsub:{TOPIC}").value
    resets = _resets()

    again = world["runtime"]()  # a restart after three days down
    for _ in range(4):
        again.detect()
    assert servicer.replay_refusals == 1, "the stale id is sent once, never again"
    assert _resets() == resets + 1, "counted once"
    _ask(again, orders[3])
    assert _found(again) == [orders[3]], "the LATEST subscription delivers new requests"
    with again.store.session() as session:
        assert session.get_one(Watermark, f"pubsub:{TOPIC}").value != stale


def _resets() -> float:
    labels = {"topic": TOPIC, "reason": "expired"}
    return REGISTRY.get_sample_value("chronoforce_pubsub_replay_resets_total", labels) or 0.0


def test_silence_within_the_keepalive_schedule_keeps_the_stream(world: dict[str, Any]) -> None:
    """Salesforce may stay silent up to 270 s between keepalives: only longer means dead."""
    runtime, servicer = world["runtime"](), world["grpc"].servicer
    runtime.detect()
    subscription = runtime._events.subscription
    subscription.last_message_at -= 269  # as if the last keepalive came 269 s ago
    runtime.detect()
    assert runtime._events.subscription is subscription and servicer.subscribe_calls == 1
    subscription.last_message_at -= 301
    assert not subscription.healthy
    runtime.detect()
    assert runtime._events.subscription is not subscription and servicer.subscribe_calls == 2
