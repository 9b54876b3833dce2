"""Salesforce API calls per 1,000 label writebacks and per 1,000 tracking updates.

The Salesforce sandbox (a separate process) counts every API request it serves; the records each
flush wrote are read from our own outbox. Ratios are taken against the issue's lower bound —
ceil(records / 200) per object plus one call per file — and against a tighter bound that treats
files as records too (ContentVersion and ContentDocumentLink in collections of 200). The naive
figure is what one request per record would cost for the same writes. Loopback only.

`python -m bench.bench_salesforce_calls [ORDERS]`
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chronoforce.logs import configure_logging

configure_logging("warning")

from sqlalchemy import func, select, update  # noqa: E402

from bench.common import report  # noqa: E402
from bench.world import Sandboxes, sandboxes  # noqa: E402
from chronoforce.store.models import Outbox, Parcel, Shipment  # noqa: E402

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1100  # ~1,000 labels: some are broken
TARGET = 1.1
COLLECTION = 200


def written(runtime: Any, after_id: int) -> tuple[Counter[str], int, int]:
    """Records per object sent since outbox row `after_id`; files; extra links asked for."""
    records: Counter[str] = Counter()
    files = links = 0
    with runtime.store.session() as session:
        for row in session.scalars(select(Outbox).where(Outbox.id > after_id)):
            if row.operation == "file":
                files += 1
                links += len(row.payload.get("link_to") or ())
            else:
                records[row.sf_object] += 1
    return records, files, links


def bounds(records: Counter[str], files: int, links: int) -> dict[str, int]:
    per_object = sum(math.ceil(n / COLLECTION) for n in records.values())
    return {
        "issue_bound": per_object + files,
        "tight_bound": per_object
        + (math.ceil(files / COLLECTION) if files else 0)
        + (math.ceil(links / COLLECTION) if links else 0),
        # one PATCH per record per object, one POST per file, one link per file
        "naive": sum(records.values()) + files + files,
    }


def measured_flush(world: Sandboxes, flush: Any) -> int:
    world.reset_stats()
    flush()
    return int(world.stats()["total"])


def last_outbox_id(runtime: Any) -> int:
    with runtime.store.session() as session:
        return int(session.scalar(select(func.max(Outbox.id))) or 0)


def label_phase(world: Sandboxes, runtime: Any) -> dict[str, Any]:
    world.reset_stats()
    ids = runtime.detect()
    detect_calls = int(world.stats()["total"])
    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(runtime.labels.process, ids))
    before = 0
    calls = measured_flush(world, runtime.flush)
    records, files, links = written(runtime, before)
    labels = outcomes.get("labeled", 0)
    return {
        "labels": labels,
        "exceptions": outcomes.get("exception", 0),
        "detect_calls": detect_calls,
        "calls": calls,
        "records": dict(records),
        "files": files,
        "extra_links": links,
        **bounds(records, files, links),
        "per_1000": round(calls * 1000 / max(labels, 1), 2),
    }


def tracking_phase(world: Sandboxes, runtime: Any) -> dict[str, Any]:
    """Move the carrier's clock a day on, poll every parcel once, flush what changed."""
    import httpx

    httpx.post(f"{world.chronopost_url}/_sandbox/clock", json={"hours": 30}).raise_for_status()
    with runtime.store.session() as session:  # everything due now: one look each
        session.execute(
            update(Shipment)
            .where(Shipment.state == "labeled")
            .values(next_poll_at=runtime.now())
            .execution_options(synchronize_session=False)
        )
        parcels = session.scalar(select(func.count()).select_from(Parcel).where(Parcel.live))
    before = last_outbox_id(runtime)
    changed = polls = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        round_ = runtime.poll_once()
        changed += round_.changed
        polls += round_.shipments
        if round_.shipments == 0:
            break
    flush = getattr(runtime, "flush_tracking", runtime.flush)
    calls = measured_flush(world, flush)
    records, files, links = written(runtime, before)
    return {
        "parcels": int(parcels or 0),
        "shipments_polled": polls,
        "updates": changed,
        "calls": calls,
        "records": dict(records),
        **bounds(records, files, links),
        "per_1000": round(calls * 1000 / max(changed, 1), 2),
    }


def main() -> None:
    from chronoforce.cli.demo import demo_settings
    from chronoforce.pipeline.runtime import build_runtime

    with tempfile.TemporaryDirectory() as tmp, sandboxes(0.0, Path(tmp)) as world:
        settings = demo_settings(
            Path(tmp), world.chronopost_url, world.salesforce_url, world.ca_file
        )
        settings = settings.model_copy(
            update={"tracking": {"calls_per_second": None, "batch_size": 5000, "concurrency": 8}}
        )
        world.seed(ORDERS)
        runtime = build_runtime(settings)
        try:
            started = time.monotonic()
            labels = label_phase(world, runtime)
            labels["seconds"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            print("labels", labels, flush=True)
            tracking = tracking_phase(world, runtime)
            tracking["seconds"] = round(time.monotonic() - started, 1)
            print("tracking", tracking, flush=True)
        finally:
            runtime.close()
    label_ratio = labels["calls"] / labels["issue_bound"]
    tracking_ratio = tracking["calls"] / tracking["issue_bound"] if tracking["issue_bound"] else 0
    worst = max(label_ratio, tracking_ratio)
    report(
        "salesforce_calls",
        metric="calls_per_1000_label_writebacks",
        value=labels["per_1000"],
        unit="calls",
        ratio=round(worst, 3),
        target=TARGET,
        meets=worst <= TARGET and tracking["updates"] > 0,
        direction="ratio to the issue's lower bound (worst of labels, tracking): lower is better",
        extra={
            "labels": {
                **labels,
                "ratio_issue_bound": round(label_ratio, 3),
                "ratio_tight_bound": round(labels["calls"] / labels["tight_bound"], 3),
                "naive_per_1000": round(labels["naive"] * 1000 / max(labels["labels"], 1)),
            },
            "tracking": {
                **tracking,
                "ratio_issue_bound": round(tracking_ratio, 3),
                "ratio_tight_bound": round(tracking["calls"] / max(tracking["tight_bound"], 1), 3),
                "naive_per_1000": round(tracking["naive"] * 1000 / max(tracking["updates"], 1)),
            },
        },
        series=None,
    )


if __name__ == "__main__":
    main()
