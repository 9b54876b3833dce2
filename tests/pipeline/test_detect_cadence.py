"""Idle detection backs off and the first change brings it back to full speed.

On a simulated clock (the runner's and the detect turn's), against the Salesforce sandbox over
HTTPS: the API calls are counted by the sandbox itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chronoforce.pipeline import cluster
from chronoforce.pipeline.cadence import Backoff, next_interval
from chronoforce.pipeline.runner import DETECT_TURN, Runner
from chronoforce.store.models import ClusterState


def test_the_wait_doubles_while_idle_up_to_the_cap_and_a_change_resets_it() -> None:
    clock = {"t": 0.0}
    backoff = Backoff(5.0, 60.0, clock=lambda: clock["t"])
    assert backoff.due()
    waits = [backoff.ran(changed=False) for _ in range(6)]
    assert waits == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    clock["t"] = 30.0
    assert not backoff.due()
    assert backoff.ran(changed=True) == 5.0
    assert next_interval(60.0, False, 5.0, 60.0) == 60.0
    assert next_interval(60.0, True, 5.0, 60.0) == 5.0


class SimulatedCluster:
    """The detect job as `cluster.Turns` runs it, every simulated second, on a fake clock."""

    def __init__(self, runtime: Any) -> None:
        self.now = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
        self.runner = Runner(runtime, lambda _id: None, now=lambda: self.now)
        self.found: list[tuple[dt.datetime, int]] = []

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            turn = cluster.take_turn(
                self.runner.store,
                DETECT_TURN,
                self.runner.owner,
                dt.timedelta(seconds=self.runner.detect_every),
                now=self.now,
            )
            if turn:
                self.found.append((self.now, self.runner.detect()))
            self.now += dt.timedelta(seconds=1)

    def interval(self) -> float:
        with self.runner.store.session() as session:
            return float(session.get_one(ClusterState, DETECT_TURN).data["interval"])


def test_idle_detection_backs_off_and_a_change_brings_it_back(
    sandbox_world: dict[str, Any],
) -> None:
    org, runtime = sandbox_world["org"], sandbox_world["runtime"]
    sim = SimulatedCluster(runtime)
    sim.run(1)
    assert sim.found[0][1] == 8  # the seeded orders
    org.reset_stats()
    sim.run(30 * 60)  # half an hour with nothing changing
    idle_queries = org.stats()["query"]
    # At a steady 5 s that would be 360 delta reads; backing off to 60 s, about 34.
    assert idle_queries <= 40, idle_queries
    assert sim.interval() == sim.runner.detect_idle_max
    # An order changes in Salesforce: found within one idle wait, then full speed again.
    order_id = sandbox_world["seeded"]["Order"][0]
    changed_at = sim.now
    runtime.salesforce.collection(
        "update", "Order", [{"Id": order_id, "ShippingStreet": "3 rue du Bac"}]
    )
    before = len(sim.found)
    sim.run(int(sim.runner.detect_idle_max) + 1)
    hits = [(at, n) for at, n in sim.found[before:] if n]
    assert hits, "the change was detected"
    assert hits[0][0] - changed_at <= dt.timedelta(seconds=sim.runner.detect_idle_max)
    after = [at for at, _ in sim.found if at > hits[0][0]]
    assert after and after[0] - hits[0][0] == dt.timedelta(seconds=sim.runner.detect_every)


def test_with_a_live_subscription_the_soql_delta_runs_rarely_and_takes_over_when_it_dies(
    sandbox_world: dict[str, Any],
) -> None:
    from chronoforce.config import SalesforceConfig
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.salesforce.pubsub import PubSubServer

    org, settings = sandbox_world["org"], sandbox_world["settings"]
    grpc = PubSubServer(org, tls=sandbox_world["tls"]).start()
    config = {**settings.salesforce.model_dump(), "pubsub_endpoint": grpc.target}
    runtime = build_runtime(settings.model_copy(update={"salesforce": SalesforceConfig(**config)}))
    clock = {"now": dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)}
    runtime.now = lambda: clock["now"]
    runtime.events_idle_s = 0.05
    try:
        assert len(runtime.detect()) == 8  # the first detection reads the delta too
        assert runtime.events_alive
        org.reset_stats()
        for _ in range(12):  # two idle hours, looked at every 10 minutes
            clock["now"] += dt.timedelta(minutes=10)
            assert runtime.detect() == []
        deltas = org.stats()["query"]
        assert deltas <= 5, deltas  # at a steady delta_every_s (300 s): 24
        # An order asks to ship: the event finds it at once, no delta needed.
        order_id = sandbox_world["seeded"]["Order"][0]
        runtime.salesforce.collection(
            "update", "Order", [{"Id": order_id, "ShippingStreet": "3 rue du Bac"}]
        )
        runtime.salesforce.connection.sf.Chronopost_Ship_Request__e.create(
            {"Record_Id__c": order_id, "Reason__c": "test"}
        )
        clock["now"] += dt.timedelta(seconds=5)
        assert runtime.detect() == [runtime.shipments([order_id])[0].id]
        # The Pub/Sub service goes away: detection reads the SOQL delta, paced by the runner.
        grpc.stop()
        runtime.salesforce.collection(
            "update", "Order", [{"Id": order_id, "ShippingStreet": "5 rue du Bac"}]
        )
        clock["now"] += dt.timedelta(seconds=5)
        org.reset_stats()
        assert runtime.detect() == [runtime.shipments([order_id])[0].id]
        assert not runtime.events_alive
        assert org.stats()["query"] >= 1
    finally:
        runtime.close()
        grpc.stop()
