"""Faults: 2 workers on PostgreSQL + Redis while the carrier times out 20% of calls, answers 500
to 5% and goes fully down for 10 seconds, and Salesforce locks 10% of rows, expires the session
once and runs out of API budget before it recovers. Same end state as the kill scenario: one
live label or one exception per order, one file and one tracking number per labeled order."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from chronoforce.pipeline import cluster as shared
from chronoforce.pipeline.writeback import PAUSE
from chronoforce.sandbox.chronopost import Faults


def _harness() -> Any:
    """tests/reliability/harness.py (tests are not a package, so load it by path, once)."""
    if "cf_harness" not in sys.modules:
        path = Path(__file__).with_name("harness.py")
        spec = importlib.util.spec_from_file_location("cf_harness", path)
        assert spec is not None and spec.loader is not None
        sys.modules["cf_harness"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["cf_harness"])
    return sys.modules["cf_harness"]


harness = _harness()

ORDERS = 200
WORKERS = 2
# Ten seconds outlast the breaker's whole ladder as configured below (open 1 s, probe, open 2 s,
# probe, open 3 s: the cap, probe, open 3 s again): failed probes, the cap reached and held.
OUTAGE_S = 10.0
READ_TIMEOUT_S = 1.0
# A timeout outlasts the client's read timeout: the call is given up on, its outcome unknown.
NOISE = Faults(
    mix=(("timeout", 0.20), ("http_500", 0.05)), hang_seconds=READ_TIMEOUT_S + 0.5, seed=9
)


def _breaker_state(cluster: Any) -> str:
    for row in shared.rows(cluster.store):
        if row.name == "breaker:chronopost":
            return str(row.state)
    return "closed"


@pytest.mark.slow
@pytest.mark.timeout(480)  # bounded by its own deadlines; the 10 s outage is the floor
@pytest.mark.postgres
@pytest.mark.redis
def test_carrier_and_salesforce_faults_lose_nothing_and_label_nothing_twice(
    tmp_path: Path, pg_url: str, redis_url: str, reliability_summary: list[Any]
) -> None:
    cluster = harness.Cluster(
        tmp_path,
        pg_url,
        redis_url,
        f"cf-faults-{uuid.uuid4().hex[:8]}",
        ORDERS,
        worker_settings={
            "breaker_open_s": 1.0,
            "breaker_max_open_s": 3.0,
            "salesforce_pause_s": 1.5,
            "retry_scale": 0.1,  # the same policy, ten times faster: the test stays short
        },
        chronopost={
            "connect_timeout_s": 0.5,
            "read_timeout_s": READ_TIMEOUT_S,
            "label_format": "Z2D",  # thermal labels, as the harness's default
        },
    ).start()
    try:
        cluster.carrier.set_faults(NOISE)
        cluster.org.set_faults(lock_row_share=0.10, seed=5)
        for _ in range(WORKERS):
            cluster.spawn(concurrency=4)
        assert harness.wait_for(lambda: cluster.states().get("labeled", 0) >= 20, 90), (
            cluster.states(),
            cluster.worker_log(),
        )

        # One forced session expiry: every worker re-authenticates and carries on.
        cluster.org.expire_sessions()

        # A 10-second full outage: the shared breaker opens, probes, and closes afterwards.
        cluster.carrier.set_faults(kind="http_503", rate=1.0)
        outage_end = time.monotonic() + OUTAGE_S
        opened = harness.wait_for(lambda: _breaker_state(cluster) != "closed", OUTAGE_S - 5)
        labeled_before = cluster.states().get("labeled", 0)
        while time.monotonic() < outage_end:
            time.sleep(0.5)  # the outage's length is the scenario, not a wait for work
        during = cluster.states().get("labeled", 0)
        calls_in_outage = [r for r in cluster.carrier.requests() if r.injected == "http_503"]
        cluster.carrier.set_faults(NOISE)
        closed = harness.wait_for(lambda: _breaker_state(cluster) == "closed", 30)

        # The API budget runs out: Salesforce writes pause cluster-wide, then resume.
        cluster.org.set_api_budget(max=cluster.org.api_used + 5)
        paused = harness.wait_for(
            lambda: shared.paused_until(cluster.store, PAUSE) is not None, 30, every=0.2
        )
        cluster.org.set_api_budget(max=10_000_000)

        settled = harness.wait_for(harness.steady(cluster.settled, hold_s=4.0), 150)
        codes = cluster.terminate_all()
        assert opened, "the breaker opened during the outage"
        assert during - labeled_before <= 2 * WORKERS * 4, "labels kept being made in the outage"
        assert closed, "the breaker closed again after the outage"
        assert paused, "Salesforce writes paused when the budget ran out"
        assert settled, (cluster.progress(), cluster.worker_log()[-3000:])
        assert codes == [0] * WORKERS, codes
        end = cluster.end_state()
        problems = end.problems()
        assert problems == {}, problems
        assert len(end.labeled) + len(end.failed) == ORDERS
        injected = [r for r in cluster.carrier.requests() if r.injected]
        # The breaker kept the outage cheap: a few probes, not one call per order per retry.
        assert len(calls_in_outage) < ORDERS, len(calls_in_outage)
        assert end.retries > 0
        reliability_summary.append(
            harness.summary_row(
                "faults (carrier 20% timeouts, 5% 500, 10 s outage; SF 10% locks, expiry, budget)",
                end,
                kills=0,
                faults=len(injected) + 2,
            )
        )
    finally:
        cluster.stop()
