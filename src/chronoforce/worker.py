"""One chronoforce worker process: huey consumer threads plus the cluster's periodic jobs.

Start any number of them, on any number of machines, against one PostgreSQL and one Redis: the
label tasks spread over every consumer, the periodic jobs (detect, poll, flush, sweep) run once
per cluster, and the carrier's breaker, concurrency and rate limit and the Salesforce pause are
shared. SIGTERM finishes the running carrier calls, releases what has not reached the carrier,
and exits 0. The `worker:` configuration section (config/sections.py) never holds secrets.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update

from chronoforce.config import Settings, WorkerConfig, section
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.logs import get_logger
from chronoforce.pipeline.runner import Runner
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.queue import TaskSet, make_huey
from chronoforce.store.models import Shipment

log = get_logger(component="worker")


def worker_config(raw: Mapping[str, Any] | WorkerConfig) -> WorkerConfig:
    """The `worker:` section (typed at load: `Settings.worker`); errors name `worker.<key>`."""
    return section(WorkerConfig, "worker", raw)


def runner_for(runtime: Any, tasks: TaskSet, config: WorkerConfig, **kwargs: Any) -> Runner:
    return Runner(
        runtime,
        tasks.label,
        detect_every=config.detect_every_s,
        detect_idle_max=config.detect_idle_max_s,
        flush_every=config.flush_every_s,
        sweep_every=config.sweep_every_s,
        poll_every=config.poll_every_s,
        requeue_after=config.requeue_after_s,
        owner=runtime.labels.worker_id,
        **kwargs,
    )


def release_unstarted(runtime: Any) -> int:
    """Leases this process still holds on shipments that never reached the carrier: freed now.

    A shipment left `calling` keeps its lease until it expires: its call may still complete at
    the carrier, and the next worker must look it up only after that."""
    with runtime.store.session() as session:
        result = session.execute(
            update(Shipment)
            .where(
                Shipment.lease_owner == runtime.labels.worker_id,
                Shipment.state != ShipmentState.CALLING,
            )
            .values(lease_owner=None, lease_expires_at=None, queued_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def run_worker(settings: Settings, concurrency: int | None = None) -> int:
    """Consume until SIGTERM / SIGINT; the exit code."""
    config = worker_config(settings.worker)  # a model_copy(update=…) may hold a mapping
    runtime = build_runtime(settings, cluster=True)  # the cluster's gates, from the start
    huey = make_huey(settings.queue_url, settings.database_url, name=config.queue_name)
    tasks = TaskSet(huey, lambda: runtime)
    consumer = tasks.consumer(
        concurrency or config.concurrency,
        graceful_signal="TERM",
        shutdown_timeout=config.shutdown_grace_s,
    )
    stop = consumer.stop_flag
    runtime.labels.stopping = stop.is_set
    runner = runner_for(runtime, tasks, config)
    periodic = threading.Thread(target=runner.run, name="cf-periodic", daemon=True)
    started = dt.datetime.now(dt.UTC)
    log.info(
        "worker started",
        worker=runtime.labels.worker_id,
        concurrency=concurrency or config.concurrency,
        queue=config.queue_name,
    )
    try:
        periodic.start()
        consumer.run()  # returns after SIGTERM, once running tasks finished (or the grace ended)
    finally:
        runner.stop_event.set()
        periodic.join(timeout=max(1.0, config.shutdown_grace_s))
        released = release_unstarted(runtime)
        log.info(
            "worker stopped",
            worker=runtime.labels.worker_id,
            released=released,
            seconds=round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        )
        if periodic.is_alive():
            # A periodic job (a long tracking round) outlived the grace: its rows are leased
            # or claimed in the database and come back on their own, so leave now rather
            # than let interpreter shutdown wait for its threads.
            os._exit(0)
        runtime.close()
    return 0
