"""What an idle `chronoforce run` costs in Salesforce API calls a day, and how fast a new order is
labeled once activity starts again (issue 17, item 9).

Against the real sandboxes over loopback (Salesforce REST over HTTPS and its Pub/Sub gRPC
service, Chronopost SOAP over HTTP), on a simulated clock: the runner's and the detect turn's
clock, and the runtime's (the Pub/Sub safety-net schedule). The Salesforce sandbox counts the
API requests it serves. A simulated day takes seconds because the simulation jumps from one
detection to the next, as the `periodic:detect` turn (cluster.Turns) would wake.

- SOQL delta: every detection the cadence allows is run for real, for a whole simulated day.
- Pub/Sub: detection ticks stay at `detect_every` (a subscription costs no API request). The
  ticks of the first simulated 10 minutes, and every tick at which the SOQL safety net is due,
  are run for real; the API requests of a subscription-only tick are measured on that sample
  and counted for the other ticks of the day (printed: the sample's requests per tick).
- Time to label after an idle day: a new order (set to `Requested` in Salesforce at the worst
  moment, right after a detection) until its label is written back, simulated wait plus the real
  time of labeling and writing back; then a second order, once activity started.

`python -m bench.bench_idle_cost`
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chronoforce.logs import configure_logging

configure_logging("warning")

from bench.common import RESULTS, report  # noqa: E402
from chronoforce.pipeline import cluster  # noqa: E402
from chronoforce.pipeline.runner import DETECT_TURN, Runner  # noqa: E402
from chronoforce.store.models import ClusterState  # noqa: E402

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)
TARGET_SOQL = 1500  # idle calls a day with the SOQL delta (issue 17)
TARGET_PUBSUB = 100  # idle calls a day with Pub/Sub
STEADY = DAY.total_seconds() / 5.0  # what detection every 5 s cost before
SAMPLE = dt.timedelta(minutes=10)
ORDERS = 6
GOOD_ADDRESS = {  # the held-back orders must be labelable whatever the seed made of them
    "ShippingStreet": "12 rue de la Paix",
    "ShippingCity": "Paris",
    "ShippingPostalCode": "75002",
    "ShippingCountry": "France",
}


@contextmanager
def world(tmp: Path, pubsub: bool) -> Iterator[dict[str, Any]]:
    """The SOQL-delta world runs the sandboxes in processes of their own (bench/world.py), so
    the simulated day is not slowed by serving itself; the Pub/Sub one needs the gRPC service
    beside the org, in this process (it runs a few hundred real ticks only)."""
    if not pubsub:
        from bench.world import sandboxes

        with sandboxes(0.0, tmp) as boxes:
            seeded = boxes.sf_admin("POST", "seed", {"orders": ORDERS, "seed": 7})["ids"]
            with _runtime(tmp, boxes.chronopost_url, boxes.salesforce_url, boxes.ca_file) as rt:
                yield {"runtime": rt, "seeded": seeded, "calls": lambda: boxes.stats()["total"]}
        return
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.salesforce.pubsub import PubSubServer
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    seeded = org.seed(orders=ORDERS, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    grpc = PubSubServer(org, tls=tls).start()
    try:
        with _runtime(tmp, cp.url, sf.url, tls.ca_cert, grpc.target) as runtime:
            yield {"runtime": runtime, "seeded": seeded, "calls": lambda: org.stats()["total"]}
    finally:
        grpc.stop()
        sf.stop()
        cp.stop()


@contextmanager
def _runtime(tmp: Path, cp_url: str, sf_url: str, ca: Path, pubsub: str = "") -> Iterator[Any]:
    from chronoforce.cli.demo import demo_settings
    from chronoforce.config import SalesforceConfig
    from chronoforce.pipeline.runtime import build_runtime

    settings = demo_settings(tmp, cp_url, sf_url, ca)
    if pubsub:
        config = {**settings.salesforce.model_dump(), "pubsub_endpoint": pubsub}
        settings = settings.model_copy(update={"salesforce": SalesforceConfig(**config)})
    runtime = build_runtime(settings)
    runtime.events_idle_s = 0.02  # a subscription-only tick waits this long for an event
    try:
        yield runtime
    finally:
        runtime.close()


class Simulation:
    """The detect job of one `chronoforce run`, its turn and clocks simulated."""

    def __init__(self, w: dict[str, Any]) -> None:
        self.runtime, self.counted = w["runtime"], w["calls"]
        self.now = T0
        self.runtime.now = lambda: self.now
        self.runner = Runner(self.runtime, lambda _id: None, now=lambda: self.now)
        self.calls: list[tuple[float, int]] = []  # (hours since T0, calls so far)
        self.ticks = self.run_ticks = 0

    def api_calls(self) -> int:
        """Requests the Salesforce sandbox served (auth excluded), by its own count."""
        return int(self.counted())

    def tick(self) -> int:
        """One detection turn at `now`, as `cluster.Turns` takes it; ids found."""
        period = dt.timedelta(seconds=self.runner.detect_every)
        if not cluster.take_turn(
            self.runner.store, DETECT_TURN, self.runner.owner, period, self.now
        ):
            return 0
        found = self.runner.detect()
        self.run_ticks += 1
        return found

    def next_turn(self) -> dt.datetime:
        with self.runner.store.session() as session:
            expires = cluster.utc(session.get_one(ClusterState, DETECT_TURN).expires_at)
        assert expires is not None
        return max(expires, self.now + dt.timedelta(seconds=1))

    def idle_day_soql(self) -> int:
        start, end = self.api_calls(), self.now + DAY
        client = self.runtime.salesforce.api_calls  # ours, for the plot: no request per tick
        ours = client()
        while self.now < end:
            self.tick()
            self.ticks += 1
            self.calls.append(((self.now - T0) / dt.timedelta(hours=1), client() - ours))
            self.now = self.next_turn()
        return self.api_calls() - start

    def idle_day_pubsub(self) -> tuple[float, float]:
        """Calls a day, and the measured calls of one subscription-only tick."""
        start, end = self.api_calls(), self.now + DAY
        step = dt.timedelta(seconds=self.runner.detect_every)
        sample_end = self.now + SAMPLE
        only_ticks = only_calls = skipped = 0
        delta = self.runtime._delta_schedule()
        while self.now < end:
            if self.now < sample_end or delta.due():
                due, before = delta.due(), self.api_calls()
                self.tick()
                if not due:
                    only_ticks += 1
                    only_calls += self.api_calls() - before
            else:
                skipped += 1
            self.ticks += 1
            if self.ticks % 60 == 0 or self.now + step >= end:
                hours = (self.now - T0) / dt.timedelta(hours=1)
                per_tick = only_calls / max(only_ticks, 1)
                self.calls.append((hours, self.api_calls() - start + round(skipped * per_tick)))
            self.now += step
        per_tick = only_calls / max(only_ticks, 1)
        return self.api_calls() - start + skipped * per_tick, per_tick

    def time_to_label(self, order_id: str) -> dict[str, Any]:
        """Set the order to `Requested` right after a detection (the worst moment); run turns
        until it is found, then label and write back (real time)."""
        self.tick()  # a detection now, if the turn is free: the change comes just after it
        client = self.runtime.salesforce
        result = client.collection(
            "update", "Order", [{"Id": order_id, "Chronopost_Label_Status__c": "Requested"}]
        )
        assert all(r.success for r in result), "the order could not be requested"
        if self.runtime.settings.salesforce.pubsub_endpoint:
            client.connection.sf.Chronopost_Ship_Request__e.create(
                {"Record_Id__c": order_id, "Reason__c": "bench"}
            )
        changed_at = self.now
        # The idle day's ticks wait 0.02 s on the subscription (calls are what it counts); a
        # running process waits the runtime's own `events_idle_s` (0.3 s), so the event the
        # sandbox is still delivering is not missed by a tick that gave up too soon.
        self.runtime.events_idle_s = type(self.runtime).events_idle_s
        for _ in range(10_000):  # a new order: found once it has a shipment row
            self.now = self.next_turn()
            if self.tick() and self.runtime.shipments([order_id]):
                break
        waited = (self.now - changed_at).total_seconds()
        started = time.monotonic()
        shipment = self.runtime.shipments([order_id])[0]
        outcome = self.runtime.labels.process(shipment.id)
        self.runtime.flush()
        work = time.monotonic() - started
        total = round(waited + work, 3)
        return {"wait_s": waited, "label_s": round(work, 3), "total_s": total, "outcome": outcome}


def prepare(sim: Simulation, w: dict[str, Any]) -> tuple[str, str]:
    """Label what was seeded, hold back two orders (not yet `Requested`) for the latency test."""
    later = w["seeded"]["Order"][:2]
    for order_id in later:
        held = {"Id": order_id, "Chronopost_Label_Status__c": "Pending", **GOOD_ADDRESS}
        sim.runtime.salesforce.collection("update", "Order", [held])
    sim.tick()
    for shipment in sim.runtime.shipments(w["seeded"]["Order"]):
        sim.runtime.labels.process(shipment.id)
    sim.runtime.flush()
    sim.now = sim.next_turn()
    return later[0], later[1]


def scenario(tmp: Path, pubsub: bool) -> dict[str, Any]:
    with world(tmp, pubsub) as w:
        sim = Simulation(w)
        first, second = prepare(sim, w)
        started = time.monotonic()
        if pubsub:
            per_day, per_tick = sim.idle_day_pubsub()
        else:
            per_day, per_tick = float(sim.idle_day_soql()), 0.0
        elapsed = time.monotonic() - started
        after_idle = sim.time_to_label(first)
        once_active = sim.time_to_label(second)
        return {
            "calls_per_day": round(per_day, 1),
            "detection_ticks": sim.ticks,
            "ticks_run": sim.run_ticks,
            "calls_per_subscription_tick": per_tick,
            "simulated_day_s": round(elapsed, 1),
            "first_order_after_idle": after_idle,
            "next_order_once_active": once_active,
            "series": sim.calls,
        }


def plot(soql: dict[str, Any], pubsub: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra is not installed: JSON only
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, data in (("SOQL delta", soql), ("Pub/Sub", pubsub)):
        hours, calls = zip(*data["series"], strict=True)
        ax.plot(hours, calls, label=f"{name}: {data['calls_per_day']:.0f} a day")
    ax.axhline(TARGET_SOQL, linestyle="--", color="tab:blue", label="target, SOQL delta (1,500)")
    ax.axhline(TARGET_PUBSUB, linestyle="--", color="tab:orange", label="target, Pub/Sub (100)")
    ax.set_xlabel("simulated hours of an idle day")
    ax.set_ylabel("Salesforce API calls so far")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    ax.set_title(f"idle detection cost (before: {STEADY:,.0f} calls a day at every 5 s)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(RESULTS / "idle_cost.png")
    plt.close(fig)


def main() -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        soql = scenario(Path(a), pubsub=False)
        print("soql", {k: v for k, v in soql.items() if k != "series"}, flush=True)
        pubsub = scenario(Path(b), pubsub=True)
        print("pubsub", {k: v for k, v in pubsub.items() if k != "series"}, flush=True)
    # "Within its current latency once activity starts": the next order waits no longer than
    # one detection period (5 s) before its label is made.
    steady_wait = Runner.detect_every
    active_ok = all(
        s["next_order_once_active"]["wait_s"] <= steady_wait
        and s["next_order_once_active"]["outcome"] == "labeled"
        for s in (soql, pubsub)
    )
    meets = (
        soql["calls_per_day"] <= TARGET_SOQL
        and pubsub["calls_per_day"] <= TARGET_PUBSUB
        and active_ok
    )
    report(
        "idle_cost",
        metric="idle_salesforce_calls_per_day_soql_delta",
        value=soql["calls_per_day"],
        unit="calls/day",
        ratio=round(soql["calls_per_day"] / TARGET_SOQL, 3),
        target=TARGET_SOQL,
        meets=meets,
        direction="lower is better (Pub/Sub target 100, next order within one 5 s period)",
        extra={
            "soql_delta": soql,
            "pubsub": pubsub,
            "pubsub_calls_per_day": pubsub["calls_per_day"],
            "pubsub_target": TARGET_PUBSUB,
            "before_calls_per_day": STEADY,
        },
    )
    plot(soql, pubsub)  # after report(): its generic bar chart is replaced by this one
    print(
        f"bench idle_cost: pubsub_calls_per_day={pubsub['calls_per_day']:.4g} "
        f"target={TARGET_PUBSUB}; first order after an idle day labeled in "
        f"{soql['first_order_after_idle']['total_s']:.1f} s (SOQL) / "
        f"{pubsub['first_order_after_idle']['total_s']:.1f} s (Pub/Sub); next one in "
        f"{soql['next_order_once_active']['total_s']:.1f} s / "
        f"{pubsub['next_order_once_active']['total_s']:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
