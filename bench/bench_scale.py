"""Scale: a backfill of 200,000 orders from the Salesforce sandbox (time, memory), and the poll
scheduler's "what is due" query with 1,000,000 parcels in the store (SQLite and PostgreSQL).

The backfill runs what `chronoforce backfill --since` runs (the delta reader's full scan, intents
recorded page by page) against the Salesforce sandbox in its own process; memory is this
process's RSS at 10 %, 50 % and 100 % of the orders — flat means streaming. The due query is the
real `Poller._due` on a store bulk-loaded with 1,000,000 labeled parcels. It only creates and
drops databases of its own.

`python -m bench.bench_scale [ORDERS] [PARCELS]`
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chronoforce.logs import configure_logging

configure_logging("warning")

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import report  # noqa: E402
from bench.world import postgres_database, postgres_reachable, sandboxes  # noqa: E402
from chronoforce.store.db import Store  # noqa: E402
from chronoforce.store.models import Parcel, Shipment  # noqa: E402

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
PARCELS = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
# A wall-clock cap keeps `make bench` bounded on a busy machine: past it the scan stops, and
# the result says how far it got and what the whole run would take at the measured rate.
BACKFILL_CAP_S = float(os.environ.get("BENCH_BACKFILL_CAP_SECONDS", "360"))  # full run: ~4 min
RSS_GROWTH_TARGET = 1.25  # RSS at 100 % over RSS at 10 %: flat means streaming
DUE_TARGET_MS = 100.0  # one scheduling round must not cost more than this
DUE_QUERIES = 20
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
STATUSES = [  # (status, share, polled): a store some months into production
    ("delivered", 0.55, False),
    ("in_transit", 0.25, True),
    ("label_created", 0.10, True),
    ("out_for_delivery", 0.04, True),
    ("delivery_attempted", 0.02, True),
    ("exception", 0.02, True),
    ("available_for_pickup", 0.02, True),
]


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 1e6


# --- backfill ------------------------------------------------------------------------------


def backfill() -> dict[str, Any]:
    from chronoforce.cli.demo import demo_settings
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.salesforce.changes import DeltaReader

    with tempfile.TemporaryDirectory() as tmp, sandboxes(0.0, Path(tmp)) as world:
        seeding = time.monotonic()
        world.seed(ORDERS)
        seed_s = time.monotonic() - seeding
        settings = demo_settings(
            Path(tmp), world.chronopost_url, world.salesforce_url, world.ca_file
        )
        runtime = build_runtime(settings)
        try:
            reader = DeltaReader(runtime.salesforce, runtime.mapping)
            since = dt.date.today() - dt.timedelta(days=1)
            checkpoints = {int(ORDERS * share): share for share in (0.1, 0.5, 1.0)}
            rss: dict[str, float] = {"start": round(rss_mb(), 1)}
            samples: list[float] = []
            seen = recorded = 0
            started = time.monotonic()
            for page in reader.full_scan(since):
                recorded += len(runtime.record(page.records, None))
                before, seen = seen, seen + len(page.records)
                samples.append(rss_mb())
                for mark, share in checkpoints.items():
                    if before < mark <= seen:
                        rss[f"{int(share * 100)}%"] = round(samples[-1], 1)
                if time.monotonic() - started > BACKFILL_CAP_S:
                    rss[f"{seen * 100 // ORDERS}% (cap)"] = round(samples[-1], 1)
                    break
            seconds = time.monotonic() - started
        finally:
            runtime.close()
    last = rss.get("100%") or list(rss.values())[-1]
    growth = last / rss["10%"] if "10%" in rss else float("inf")
    return {
        "complete": seen >= ORDERS,
        "cap_seconds": BACKFILL_CAP_S,
        "projected_seconds_for_all": round(seconds * ORDERS / seen, 1) if seen else None,
        "orders": ORDERS,
        "read": seen,
        "intents": recorded,
        "seed_seconds": round(seed_s, 1),
        "seconds": round(seconds, 1),
        "orders_per_second": round(seen / seconds, 1) if seconds else 0,
        "rss_mb": rss,
        "rss_growth_10_to_last": round(growth, 3),
        "rss_series": [round(s, 1) for s in samples],
    }


# --- the due query ---------------------------------------------------------------------------


def _value(column: Any) -> Any:
    """What the ORM would write for a column we leave out (its Python-side default)."""
    default = column.default
    if default is None or (not default.is_scalar and not default.is_callable):
        return None
    return default.arg(None) if default.is_callable else default.arg


def _status_case() -> str:
    """A deterministic spread of statuses over the rows (i * 37 mod 100 is a permutation)."""
    bound, parts = 0, []
    for status, share, _ in STATUSES:
        bound += round(share * 100)
        parts.append(f"WHEN (i * 37) % 100 < {bound} THEN '{status}'")
    return "CASE " + " ".join(parts) + " ELSE 'in_transit' END"


def _next_poll(backend: str) -> str:
    """Active parcels are due from an hour ago to a day ahead; delivered ones are not polled."""
    minutes = "((i * 7919) % 1500 - 60)"
    base = NOW.strftime("%Y-%m-%d %H:%M:%S")
    if backend == "postgresql":
        moment = f"TIMESTAMPTZ '{base}+00' + {minutes} * INTERVAL '1 minute'"
    else:  # the text form SQLAlchemy stores DateTime in on SQLite
        moment = f"strftime('%Y-%m-%d %H:%M:%f000', '{base}', {minutes} || ' minutes')"
    return f"CASE WHEN (i * 37) % 100 < 55 THEN NULL ELSE {moment} END"


def _fill(conn: Any, model: Any, count: int, given: dict[str, str], backend: str) -> None:
    """INSERT … SELECT over 1..count: our expressions, every other column its ORM default."""
    table = model.__table__
    series = (
        "generate_series(CAST(1 AS BIGINT), :count) AS n(i)"
        if backend == "postgresql"
        else "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
        "SELECT i FROM n) AS n"
    )
    names, values, params = [], [], {"count": count}
    for column in table.columns:
        if column.name in given:
            names.append(f'"{column.name}"')
            values.append(given[column.name])
            continue
        value = _value(column)
        if value is None:
            if column.server_default is None:
                names.append(f'"{column.name}"')
                values.append("NULL")
            continue  # else left out: the server default applies
        # Through the column's own bind processing, so it is stored as the ORM would store it.
        param = f"d_{column.name}"
        processor = column.type.bind_processor(conn.dialect)
        if processor:
            value = processor(value)
        elif isinstance(value, dict | list):  # psycopg leaves JSON to the driver's adapter
            value = json.dumps(value)
        params[param] = value
        names.append(f'"{column.name}"')
        if backend == "postgresql":
            values.append(f"CAST(:{param} AS {column.type.compile(dialect=conn.dialect)})")
        else:
            values.append(f":{param}")
    sql = (
        f'INSERT INTO "{table.name}" ({", ".join(names)}) SELECT {", ".join(values)} FROM {series}'
    )
    conn.execute(text(sql), params)


def load(store: Store, count: int) -> float:
    """Bulk-load `count` labeled shipments with one live parcel each (set-based); seconds."""
    started = time.monotonic()
    backend = store.engine.dialect.name
    shipment = {
        "id": "i",
        "sf_object": "'Order'",
        "sf_id": "'801' || i",
        "state": "'labeled'",
        "status": _status_case(),
        "order_number": "'SO-' || i",
        "shipper_ref": "'SO-' || i",
        "product_code": "'01'",
        "generation": "1",
        "next_poll_at": _next_poll(backend),
    }
    parcel = {
        "id": "i",
        "shipment_id": "i",
        "position": "1",
        "generation": "1",
        "skybill_number": "'XY' || i || 'FR'",
        "weight_kg": "1.5",
        "live": "TRUE",
    }
    indexes = [i for model in (Shipment, Parcel) for i in model.__table__.indexes]
    with store.engine.begin() as conn:
        # Load first, index after (the usual bulk-load order); the same indexes come back.
        for index in indexes:
            index.drop(conn)
        _fill(conn, Shipment, count, shipment, backend)
        _fill(conn, Parcel, count, parcel, backend)
        for index in indexes:
            index.create(conn)
        if backend == "postgresql":
            conn.execute(text("SELECT setval('shipment_id_seq', (SELECT max(id) FROM shipment))"))
            conn.execute(text("SELECT setval('parcel_id_seq', (SELECT max(id) FROM parcel))"))
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE shipment" if backend == "postgresql" else "ANALYZE"))
        if backend == "postgresql":
            conn.execute(text("ANALYZE parcel"))
    return time.monotonic() - started


def due_query(url: str) -> dict[str, Any]:
    from chronoforce.pipeline.tracking import Poller, Tracking, tracking_config

    store = Store(url)
    try:
        load_s = load(store, PARCELS)
        config = tracking_config({"calls_per_second": None})
        tracking = Tracking(store, config, now=lambda: NOW)
        poller = Poller(tracking, carrier=None)  # type: ignore[arg-type]
        due = poller._due(NOW)  # warm the connection pool and caches
        times = []
        for _ in range(DUE_QUERIES):
            started = time.perf_counter()
            due = poller._due(NOW)
            times.append((time.perf_counter() - started) * 1000)
        poller.close()
        times.sort()
        plan = explain(store, poller)
    finally:
        store.dispose()
    return {
        "parcels": PARCELS,
        "load_seconds": round(load_s, 1),
        "batch_size": config.batch_size,
        "returned": len(due),
        "median_ms": round(times[len(times) // 2], 2),
        "max_ms": round(times[-1], 2),
        "plan": plan,
    }


def explain(store: Store, poller: Any) -> list[str]:
    """The plan of the due query's first statement, as the poller sends it."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if not seen and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        poller._due(NOW)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    statement, params = seen[0]
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    with store.engine.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(prefix + statement, params)
        return [" ".join(str(v) for v in row) for row in cursor.fetchall()]


def main() -> None:
    results: dict[str, Any] = {"backfill": backfill()}
    print(
        "backfill", {k: v for k, v in results["backfill"].items() if k != "rss_series"}, flush=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        results["due_sqlite"] = due_query(f"sqlite:///{Path(tmp) / 'scale.db'}")
    print("due sqlite", results["due_sqlite"], flush=True)
    if postgres_reachable():
        with postgres_database() as url:
            results["due_postgres"] = due_query(url)
        print("due postgres", results["due_postgres"], flush=True)
    growth = results["backfill"]["rss_growth_10_to_last"]
    due_ms = max(v["median_ms"] for k, v in results.items() if k.startswith("due_"))
    report(
        "scale",
        metric="backfill RSS growth from 10% to the end",
        value=growth,
        unit="x",
        ratio=growth,
        target=RSS_GROWTH_TARGET,
        meets=growth <= RSS_GROWTH_TARGET
        and due_ms <= DUE_TARGET_MS
        and results["backfill"]["complete"],
        direction="ratio RSS(100%)/RSS(10%): lower is better; due query median ≤ 100 ms",
        extra={
            "due_query_target_ms": DUE_TARGET_MS,
            "due_query_worst_median_ms": due_ms,
            **results,
        },
        series={"backfill RSS (MB) per page": results["backfill"]["rss_series"]},
    )


if __name__ == "__main__":
    main()
