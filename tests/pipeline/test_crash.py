"""Kill the worker with SIGKILL at random points, restart it, twenty times: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import json
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
ZYGOTE = """
import json, os, random, signal, sys
from chronoforce.cli.main import app  # the slow part, once
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed runs
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        random.seed()  # not the parent's sequence
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sys.argv = ["chronoforce", *json.loads(line)]
        code = 1
        try:
            app()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        finally:
            os._exit(code)
    print(pid, flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while _alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def _states(store: Store) -> dict[str, int]:
    with store.session() as session:
        return dict(
            session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()
        )


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
                # The periodic jobs every second, as in tests/reliability/harness.py: a life
                # between two kills gets to sweep and flush, not only to detect.
                "worker": {
                    "detect_every_s": 1.0,
                    "flush_every_s": 1.0,
                    "sweep_every_s": 1.0,
                    "requeue_after_s": 5.0,  # a killed life's dequeued tasks come back soon
                },
                "logging": {"level": "warning", "format": "json"},
            }
        )
    )
    env = {
        **os.environ,
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    args = ["--config", str(config), "run", "--workers", "4", "--no-web"]
    exe = [sys.executable, "-m", "chronoforce.cli", *args]
    kills = 0
    # The twenty killed runs are forked from one process that imported chronoforce once: a
    # fresh interpreter spends ~2.5 s importing, and a run needs more than 1.5 s after that
    # before its first write, so lives of 0.8-2.5 s in fresh interpreters were killed before
    # doing anything (the final run did all the work). A forked run skips the import and holds
    # nothing of its parent's but modules (no thread, connection or state: the parent does
    # nothing else); the assertion after the kills checks that they landed in work.
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    children: list[int] = []
    store = Store(f"sqlite:///{tmp_path / 'chronoforce.db'}")
    try:
        for life in range(KILLS):
            zygote.stdin.write(json.dumps([*args, "--until-idle", "--max-seconds", "60"]) + "\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            children.append(pid)
            time.sleep(rng.uniform(0.8, 2.5))  # let it get somewhere, then kill it mid-flight
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                kills += 1
            assert _wait_gone(pid, 30), f"run {life} (pid {pid}) outlived its SIGKILL"
        zygote.stdin.close()
        assert zygote.wait(timeout=30) == 0
        worked = _states(store)
        # The killed runs did work: kills landed in flight, not before the first step.
        assert worked.get("labeled", 0) > 0, worked
        final = subprocess.run(
            [*exe, "--until-idle", "--max-seconds", "120"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert final.returncode == 0, final.stderr[-2000:]
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
        store.dispose()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if zygote.poll() is None:
            zygote.kill()
            zygote.wait(timeout=30)
        sf.stop()
        cp.stop()
