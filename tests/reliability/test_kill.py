"""Kill: 3 `chronoforce worker` processes on PostgreSQL + Redis label 500 orders while one of
them is SIGKILLed every few seconds and restarted. At the end every order has exactly one live
label or one exception, Salesforce holds one file and one tracking number per labeled order,
and no tracking event is recorded twice."""

from __future__ import annotations

import importlib.util
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest


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

ORDERS = 500
WORKERS = 3
KILLS = 10  # a restarted worker needs seconds to start: more kills only stall the run
CARRIER_LATENCY_S = 0.6
TRACKED = 60  # shipments whose parcels are polled for events during the kills


@pytest.mark.slow
@pytest.mark.timeout(480)  # bounded by its own deadlines; ~2 minutes on a quiet 2-core machine
@pytest.mark.postgres
@pytest.mark.redis
def test_random_sigkills_lose_nothing_and_label_nothing_twice(
    tmp_path: Path, pg_url: str, redis_url: str, reliability_summary: list[Any]
) -> None:
    rng = random.Random(20261201)
    cluster = harness.Cluster(
        tmp_path,
        pg_url,
        redis_url,
        f"cf-kill-{uuid.uuid4().hex[:8]}",
        ORDERS,
        # A carrier that takes its time, so the run lasts long enough for the kills to land in
        # the middle of the work (12 threads: ~20 labels/s at most).
        carrier_latency_s=CARRIER_LATENCY_S,
    ).start()
    try:
        for _ in range(WORKERS):
            cluster.spawn(concurrency=4)
        started = harness.wait_for(lambda: cluster.states().get("labeled", 0) > 0, 90)
        assert started, cluster.worker_log()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and cluster.kills < KILLS and not cluster.settled():
            time.sleep(rng.uniform(4.0, 7.0))  # the kill schedule, not a wait for work
            cluster.kill(rng.choice(cluster.workers))
            cluster.spawn(concurrency=4)
            if cluster.states().get("labeled", 0) > ORDERS // 4:
                # Tracking polls go on during the kills too (no event may be stored twice).
                cluster.make_due_for_tracking(TRACKED)
        assert cluster.kills >= 5, f"only {cluster.kills} kills: the run ended too soon"
        settled = harness.wait_for(cluster.settled, 120)
        cluster.make_due_for_tracking(TRACKED)
        tracked = harness.wait_for(
            harness.steady(
                lambda: cluster.polled(TRACKED) and cluster.tracked() > 0 and cluster.settled(),
                hold_s=4.0,
            ),
            60,
        )
        codes = cluster.terminate_all()
        assert settled and tracked, (cluster.progress(), cluster.worker_log()[-3000:])
        assert codes == [0] * WORKERS, ("SIGTERM must end a worker cleanly", codes)
        end = cluster.end_state()
        problems = end.problems()
        assert problems == {}, problems
        assert len(end.labeled) + len(end.failed) == ORDERS
        assert end.labeled and end.failed, "the seed has good and deliberately broken orders"
        assert cluster.org.records("Chronopost_Tracking_Event__c"), "events reached Salesforce"
        reliability_summary.append(
            harness.summary_row(
                "kill (3 workers, PostgreSQL + Redis)",
                end,
                kills=cluster.kills,
                faults=0,
            )
        )
    finally:
        cluster.stop()
