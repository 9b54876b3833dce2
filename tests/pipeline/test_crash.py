"""Kill the worker with SIGKILL at random points, restart it, twenty times: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Parcel, Shipment

ORDERS = 200
KILLS = 20


@pytest.mark.slow
def test_sigkill_twenty_times_then_every_order_labeled_once(tmp_path: Path) -> None:
    rng = random.Random(20261124)
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", cancel_window=dt.timedelta(0))
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=ORDERS, seed=11)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    config = tmp_path / "chronoforce.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{tmp_path / 'chronoforce.db'}",
                "chronopost": {
                    "base_url": cp.url,
                    "account_number": DEMO_ACCOUNT,
                    "connect_timeout_s": 0.5,
                    "read_timeout_s": 1.0,
                },
                "salesforce": {
                    "instance_url": sf.url,
                    "login_url": sf.url,
                    "client_id": DEMO_CLIENT_ID,
                    "ca_file": str(tls.ca_cert),
                },
                "pipeline": {"lease_seconds": 2.0},
                "logging": {"level": "warning", "format": "json"},
            }
        )
    )
    env = {
        **os.environ,
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    exe = [
        sys.executable,
        "-m",
        "chronoforce.cli",
        "--config",
        str(config),
        "run",
        "--workers",
        "4",
        "--no-web",
    ]
    kills = 0
    try:
        for _ in range(KILLS):
            worker = subprocess.Popen(
                [*exe, "--until-idle", "--max-seconds", "60"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.8, 2.5))  # let it get somewhere, then kill it mid-flight
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                kills += 1
            worker.wait(timeout=30)
        final = subprocess.run(
            [*exe, "--until-idle", "--max-seconds", "120"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert final.returncode == 0, final.stderr[-2000:]
        store = Store(f"sqlite:///{tmp_path / 'chronoforce.db'}")
        with store.session() as session:
            states = dict(
                session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()
            )
            live = session.scalar(select(func.count()).select_from(Parcel).where(Parcel.live))
            labeled_orders = set(
                session.scalars(select(Shipment.sf_id).where(Shipment.state == "labeled"))
            )
            unsent = [
                (o.sf_object, o.operation, o.state, o.result)
                for o in session.scalars(select(Outbox).where(Outbox.state != "sent"))
            ]
        store.dispose()
        assert sum(states.values()) == ORDERS
        assert set(states) <= {"labeled", "exception"}, states
        # Exactly one live label per labeled order at the carrier, none more.
        assert carrier.live_labels() == live
        # Exactly one file and one tracking number per labeled order in Salesforce.
        versions = org.records("ContentVersion")
        per_order: dict[str, int] = {}
        for version in versions:
            per_order[version["FirstPublishLocationId"]] = (
                per_order.get(version["FirstPublishLocationId"], 0) + 1
            )
        assert set(per_order) == labeled_orders
        assert set(per_order.values()) == {1}
        orders = {o["Id"]: o for o in org.records("Order")}
        assert all(orders[i]["Chronopost_Tracking_Number__c"] for i in labeled_orders)
        assert unsent == []
        assert kills >= KILLS // 2, f"only {kills} kills landed mid-run"
    finally:
        sf.stop()
        cp.stop()
