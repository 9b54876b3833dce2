"""`make demo`: the whole story on one machine — both sandboxes, SQLite, sample orders, labels.

Starts the Chronopost and Salesforce sandboxes on loopback, seeds orders (some broken on purpose),
runs the pipeline until nothing is left, prints orders → product → skybills → exceptions and
leaves the label files in a folder. Touches nothing outside that folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.table import Table
from sqlalchemy import select

from chronoforce.cli.common import console, run_until
from chronoforce.config import ChronopostConfig, SalesforceConfig, Secrets, Settings
from chronoforce.logs import configure_logging
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.pipeline.writeback import PDF_FORMATS
from chronoforce.store.models import ExceptionRow, Parcel, Shipment


def demo_settings(out: Path, chronopost_url: str, salesforce_url: str, ca_file: Path) -> Settings:
    # The sandboxes are imported where they are used, for start-up time: every `chronoforce`
    # command loads this module, only `demo` (and tests) need the servers.
    from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD
    from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    return Settings(
        database_url=f"sqlite:///{out / 'chronoforce.db'}",
        chronopost=ChronopostConfig(base_url=chronopost_url, account_number=DEMO_ACCOUNT),
        salesforce=SalesforceConfig(
            instance_url=salesforce_url,
            login_url=salesforce_url,
            auth="client_credentials",
            client_id=DEMO_CLIENT_ID,
            ca_file=ca_file,
        ),
        secrets=Secrets(
            chronopost_password=SecretStr(DEMO_PASSWORD),
            sf_client_secret=SecretStr(DEMO_CLIENT_SECRET),
        ),
        source="demo",
    )


def run_demo(out: Path, orders: int = 50, workers: int = 8, max_seconds: float = 100.0) -> int:
    # Imported here for start-up time (see demo_settings).
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    configure_logging("warning", "console")
    if out.exists():
        shutil.rmtree(out)
    (out / "labels").mkdir(parents=True)
    tls = ensure_tls(out / "tls")
    carrier = ChronopostSandbox(db_path=out / "chronopost-sandbox.db")
    org = SalesforceSandbox(db_path=out / "salesforce-sandbox.db")
    org.seed(orders=orders, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    console.print(f"Chronopost sandbox {cp.url} · Salesforce sandbox {sf.url} · {orders} orders")
    started = time.monotonic()
    runtime = build_runtime(demo_settings(out, cp.url, sf.url, tls.ca_cert))
    try:
        run_until(runtime, workers=workers, until_idle=True, max_seconds=max_seconds)
        elapsed = time.monotonic() - started
        rows = summarize(runtime, out / "labels")
        print_table(rows, org, elapsed, runtime)
    finally:
        runtime.close()
        sf.stop()
        cp.stop()
    return 0


def summarize(runtime: Any, label_dir: Path) -> list[dict[str, Any]]:
    rows = []
    with runtime.store.session() as session:
        for shipment in session.scalars(select(Shipment).order_by(Shipment.order_number)):
            parcels = session.scalars(
                select(Parcel).where(Parcel.shipment_id == shipment.id, Parcel.live)
            ).all()
            for parcel in parcels:
                suffix = "pdf" if parcel.label_format in PDF_FORMATS else "zpl"
                (label_dir / f"{parcel.skybill_number}.{suffix}").write_bytes(
                    parcel.label_bytes or b""
                )
            problem = session.scalar(
                select(ExceptionRow).where(
                    ExceptionRow.shipment_id == shipment.id, ExceptionRow.state == "open"
                )
            )
            rows.append(
                {
                    "order": shipment.order_number,
                    "product": shipment.product_code,
                    "skybills": " ".join(p.skybill_number for p in parcels),
                    "exception": f"{problem.code} ({problem.field})" if problem else "",
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]], org: Any, elapsed: float, runtime: Any) -> None:
    table = Table(title="chronoforce demo: orders → labels")
    for column in ("order", "product", "skybill numbers", "exception"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["order"], row["product"], row["skybills"], row["exception"])
    console.print(table)
    files = len(org.records("ContentVersion"))
    labeled = sum(1 for r in rows if r["skybills"])
    console.print(
        f"{labeled} labeled, {sum(1 for r in rows if r['exception'])} exceptions, "
        f"{files} label files in Salesforce, {elapsed:.1f} s; "
        f"Salesforce API calls: {runtime.salesforce.api_calls()}"
    )
