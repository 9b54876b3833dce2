"""Label burst: 2,000 seeded orders through the real pipeline, Chronopost answering in 300 ms.

Both sandboxes run as separate processes on loopback; the pipeline (detect → label with C carrier
calls in parallel → write back) runs here, once on SQLite with huey on SQLite (the embedded `run`
mode) and once on PostgreSQL with huey on Redis. The carrier's limit is C / latency labels a
second; the ratio is the measured rate over that limit. It never changes the latency or the
concurrency to look better, and it uses a huey name and database of its own.

`python -m bench.bench_label_burst [ORDERS] [C]`
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from chronoforce.logs import configure_logging

# Before the imports below: module-level loggers bind their configuration when first made.
configure_logging("warning")

from bench.common import report  # noqa: E402
from bench.world import (  # noqa: E402
    CLI,
    REDIS_URL,
    Sandboxes,
    percentile,
    postgres_database,
    postgres_reachable,
    redis_reachable,
    sandboxes,
    sf_datetime,
    wait_until,
)

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
CONCURRENCY = int(sys.argv[2]) if len(sys.argv) > 2 else 16
# A cap per burst keeps `make bench` bounded on a busy machine; the rate is then measured over
# the labels made within it, and the result says the burst was not complete.
CAP_S = float(os.environ.get("BENCH_BURST_CAP_SECONDS", "60"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # PostgreSQL + Redis: worker processes
LATENCY_S = 0.300
TARGET = 0.85


# The limit measured is the concurrency one (C calls of `latency` each); the per-second cap
# (`chronopost.calls_per_second`, 50 by default) is set above it so that it does not bind first.
CALLS_PER_SECOND = int(CONCURRENCY / LATENCY_S * 1.5)


def settings_for(
    world: Sandboxes, workdir: Path, database_url: str, queue_url: str, queue_name: str
) -> Any:
    from chronoforce.cli.demo import demo_settings

    settings = demo_settings(workdir, world.chronopost_url, world.salesforce_url, world.ca_file)
    chronopost = settings.chronopost.model_copy(
        update={"concurrency": CONCURRENCY, "calls_per_second": CALLS_PER_SECOND}
    )
    return settings.model_copy(
        update={
            "database_url": database_url,
            "queue_url": queue_url,
            "chronopost": chronopost,
            "worker": settings.worker.model_copy(update={"queue_name": queue_name}),
        }
    )


def run_pipeline(runtime: Any) -> None:
    """`chronoforce run --until-idle --no-web`: the same function, with the cluster's gates."""
    from chronoforce.cli.common import run_until

    run_until(runtime, workers=0, until_idle=True, max_seconds=CAP_S)


class WorkerExitedError(Exception):
    """A worker process ended on its own: the burst's numbers would mean nothing."""


def worker_config(
    world: Sandboxes, workdir: Path, database_url: str, queue_url: str, queue_name: str
) -> Path:
    """A chronoforce.yaml for `chronoforce worker` processes (secrets go in the environment)."""
    import yaml

    from chronoforce.sandbox.chronopost import DEMO_ACCOUNT
    from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID

    config = {
        "database_url": database_url,
        "queue_url": queue_url,
        "chronopost": {
            "base_url": world.chronopost_url,
            "account_number": DEMO_ACCOUNT,
            "concurrency": CONCURRENCY,
            "calls_per_second": CALLS_PER_SECOND,
        },
        "salesforce": {
            "instance_url": world.salesforce_url,
            "login_url": world.salesforce_url,
            "auth": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "ca_file": str(world.ca_file),
        },
        # C threads per process; the cluster-wide carrier limit keeps C calls in flight in all.
        # Detection every second: a burst is seen at once, as `run` sees it at start-up.
        "worker": {
            "queue_name": queue_name,
            "concurrency": CONCURRENCY,
            "detect_every_s": 1.0,
        },
        "logging": {"level": "warning"},
    }
    path = workdir / "chronoforce.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_workers(config: Path, count: int) -> list[subprocess.Popen[bytes]]:
    from chronoforce.sandbox.chronopost import DEMO_PASSWORD
    from chronoforce.sandbox.salesforce import DEMO_CLIENT_SECRET

    env = {
        **os.environ,
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    return [
        subprocess.Popen(
            [*CLI, "--config", str(config), "worker"], env=env, stdout=subprocess.DEVNULL
        )
        for _ in range(count)
    ]


def redis_connected(pid: int) -> bool:
    """A worker is consuming once it holds a connection to Redis (after imports and start-up)."""
    import psutil

    port = int(REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    return any(c.raddr and c.raddr.port == port for c in psutil.Process(pid).net_connections())


def run_workers(processes: list[subprocess.Popen[bytes]], store: Any, expected: int) -> None:
    """Wait until every order has a shipment and nothing is left to label or write back.

    It looks four times a second with the cheap checks `run --until-idle` uses: the rate is
    measured on Salesforce's file times, and this process shares the 2 cores being measured."""
    from sqlalchemy import func, select

    from chronoforce.pipeline.runner import labels_left, writes_left
    from chronoforce.store.models import Shipment

    def done() -> bool:
        if any(p.poll() is not None for p in processes):
            raise WorkerExitedError("a worker exited during the burst")
        with store.session() as session:
            seen = session.scalar(select(func.count()).select_from(Shipment)) or 0
        return seen >= expected and not labels_left(store) and not writes_left(store)

    with contextlib.suppress(RuntimeError):  # the cap: stop and measure what was done
        wait_until(done, "the workers' burst", seconds=CAP_S, every=0.25)


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_of(processes: list[subprocess.Popen[bytes]]) -> float:
    import psutil

    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(process.pid).cpu_times()
            total += times.user + times.system
    return total


def burst(
    world: Sandboxes, workdir: Path, database_url: str, queue_url: str, workers: int = 0
) -> dict[str, Any]:
    """One burst; `workers` > 0: that many `chronoforce worker` processes, else `run`'s loop."""
    from sqlalchemy import func, select

    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.queue import make_huey
    from chronoforce.store.models import Shipment

    # A queue name of our own: no other consumer on a shared Redis takes our tasks.
    queue_name = f"cf-bench-{uuid.uuid4().hex[:8]}"
    runtime = build_runtime(
        settings_for(world, workdir, database_url, queue_url, queue_name), cluster=True
    )
    huey = make_huey(queue_url, database_url, name=queue_name)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        list(runtime.salesforce.query_iter("SELECT Id FROM User LIMIT 1"))  # log in first
        world.sf_admin("POST", "reset")
        if workers:
            config = worker_config(world, workdir, database_url, queue_url, queue_name)
            processes = start_workers(config, workers)
            wait_until(lambda: all(redis_connected(p.pid) for p in processes), "the workers")
        created = world.seed(ORDERS)
        world.reset_stats()
        cpu, sandbox_cpu = time.process_time() + cpu_of(processes), world.cpu_seconds()
        started = time.time()
        if workers:
            run_workers(processes, runtime.store, created.get("Order", ORDERS))
        else:
            run_pipeline(runtime)
        wall = time.time() - started
        cpu = time.process_time() + cpu_of(processes) - cpu
        sandbox_cpu = world.cpu_seconds() - sandbox_cpu
        sf_calls = world.stats()["total"]
        # Times only, through the API (the admin listing would carry every label's bytes).
        orders = {
            o["Id"]: o for o in runtime.salesforce.query_iter("SELECT Id, CreatedDate FROM Order")
        }
        files = list(
            runtime.salesforce.query_iter(
                "SELECT FirstPublishLocationId, CreatedDate FROM ContentVersion"
            )
        )
        with runtime.store.session() as session:
            states = dict(
                session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()
            )
    finally:
        stop_workers(processes)
        runtime.close()
        if queue_url.startswith("redis://"):
            huey.storage.flush_all()  # only this huey's own keys
    start = dt.datetime.fromtimestamp(started, dt.UTC)
    latencies: list[float] = []
    ends: list[dt.datetime] = []
    for version in files:
        order = orders.get(version["FirstPublishLocationId"])
        if order is None:
            continue
        at = sf_datetime(version["CreatedDate"])
        if (at - start).total_seconds() > wall:
            continue  # written after a capped burst's window: not counted
        ends.append(at)
        latencies.append((at - sf_datetime(order["CreatedDate"])).total_seconds())
    span = (max(ends) - start).total_seconds() if ends else wall
    rate = len(ends) / span if span > 0 else 0.0
    limit = CONCURRENCY / LATENCY_S
    # Per-second completions over the run, for the plot.
    timeline = [0] * (int(span) + 1)
    for at in ends:
        timeline[max(0, min(len(timeline) - 1, int((at - start).total_seconds())))] += 1
    return {
        "orders": created.get("Order", ORDERS),
        "labels": len(ends),
        "states": states,
        "seconds": round(span, 2),
        "labels_per_second": round(rate, 2),
        "limit_per_second": round(limit, 2),
        "ratio": round(rate / limit, 3),
        "p50_event_to_file_s": round(percentile(latencies, 0.5), 2),
        "p95_event_to_file_s": round(percentile(latencies, 0.95), 2),
        "pipeline_cpu_ms_per_label": round(cpu * 1000 / max(len(ends), 1), 1),
        "sandboxes_cpu_ms_per_label": round(sandbox_cpu * 1000 / max(len(ends), 1), 1),
        "salesforce_calls": sf_calls,
        "mode": f"{workers} worker processes" if workers else "run (embedded)",
        "complete": len(ends) + states.get("exception", 0) >= created.get("Order", ORDERS),
        "cap_seconds": CAP_S,
        "timeline": timeline,
    }


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, sandboxes(LATENCY_S * 1000, Path(tmp)) as world:
        sqlite_dir = Path(tmp) / "sqlite"
        sqlite_dir.mkdir()
        results["sqlite"] = burst(world, sqlite_dir, f"sqlite:///{sqlite_dir / 'cf.db'}", "")
        print("sqlite", {k: v for k, v in results["sqlite"].items() if k != "timeline"})
        if postgres_reachable() and redis_reachable():
            pg_dir = Path(tmp) / "pg"
            pg_dir.mkdir()
            with postgres_database() as pg_url:
                results["postgres_redis"] = burst(world, pg_dir, pg_url, REDIS_URL, WORKERS)
            print(
                "postgres+redis",
                {k: v for k, v in results["postgres_redis"].items() if k != "timeline"},
            )
        else:
            print("postgres+redis: PostgreSQL or Redis not reachable on localhost, skipped")
    worst = min(r["ratio"] for r in results.values())
    report(
        "label_burst",
        metric="labels_per_second",
        value=min(r["labels_per_second"] for r in results.values()),
        unit="labels/s",
        ratio=worst,
        target=TARGET,
        meets=worst >= TARGET
        and all(
            r["labels"] == r["orders"] - r["states"].get("exception", 0) for r in results.values()
        ),
        direction="ratio to the carrier limit C/latency (worst backend): higher is better",
        extra={
            "orders": ORDERS,
            "concurrency": CONCURRENCY,
            "latency_s": LATENCY_S,
            "backends": {
                k: {n: v for n, v in r.items() if n != "timeline"} for k, r in results.items()
            },
        },
        series={f"{k} labels/s": r["timeline"] for k, r in results.items()},
    )


if __name__ == "__main__":
    main()
