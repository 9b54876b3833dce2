"""`chronoforce run` stops on SIGTERM like `worker`: calls in flight finish within the grace time,
the rest is released, exit 0, and a later run finishes every order with no second label."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from chronoforce.pipeline.runner import WORKABLE
from chronoforce.store.db import Store
from chronoforce.store.models import Parcel, Shipment

from .conftest import CliWorld, make_world

GRACE_S = 10.0  # calls take 0.3 s: a graceful stop needs far less
RUN = [sys.executable, "-m", "chronoforce.cli", "run", "--no-web"]


@pytest.fixture()
def slow_world(tmp_path: Path) -> Iterator[CliWorld]:
    # 300 ms per carrier call and two label threads: the run is mid-way when SIGTERM comes.
    yield from make_world(tmp_path, orders=40, latency=0.3, worker={"shutdown_grace_s": GRACE_S})


def _count(store: Store, *states: str) -> int:
    with store.session() as session:
        statement = select(func.count()).select_from(Shipment).where(Shipment.state.in_(states))
        return int(session.scalar(statement) or 0)


def _wait_for_labels(process: subprocess.Popen[bytes], database_url: str, at_least: int) -> Store:
    store: Store | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            store = store or Store(database_url)
            if _count(store, "labeled") >= at_least:
                return store
        except Exception:  # the run is still creating the schema
            pass
        time.sleep(0.2)
    output = process.stdout.read().decode() if process.stdout else ""
    raise AssertionError(f"no {at_least} labels in time: {output[-3000:]}")


def test_sigterm_stops_run_within_the_grace_and_loses_nothing(slow_world: CliWorld) -> None:
    run = subprocess.Popen(
        [*RUN, "--workers", "2"],
        env=slow_world.process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    store: Store | None = None
    try:
        store = _wait_for_labels(run, slow_world.database_url, at_least=3)
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        output = run.communicate(timeout=GRACE_S + 30)[0].decode()
        took = time.monotonic() - sent
        assert run.returncode == 0, output[-3000:]
        assert took < GRACE_S, f"stopped {took:.1f} s after SIGTERM"
        assert "run stopped" in output
        with store.session() as session:
            held = session.scalars(
                select(Shipment.id).where(
                    Shipment.lease_owner.is_not(None), Shipment.state != "calling"
                )
            ).all()
        assert held == [], "leases of work never started are released at once"
        assert _count(store, *WORKABLE) > 0, "it stopped rather than finishing everything"

        # Nothing lost: the next run finishes every order, and no order got a second label.
        again = subprocess.run(
            [*RUN, "--until-idle", "--max-seconds", "90"],
            env=slow_world.process_env(),
            capture_output=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stdout.decode()[-3000:]
        assert _count(store, *WORKABLE) == 0
        assert _count(store, "labeled") > 0
        with store.session() as session:
            live = int(
                session.scalar(select(func.count()).select_from(Parcel).where(Parcel.live)) or 0
            )
        assert slow_world.carrier.live_labels() == live
    finally:
        if run.poll() is None:
            run.kill()
        if store is not None:
            store.dispose()


def test_first_ctrl_c_stops_run_gracefully(slow_world: CliWorld) -> None:
    run = subprocess.Popen(
        [*RUN, "--workers", "2"],
        env=slow_world.process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    store: Store | None = None
    try:
        store = _wait_for_labels(run, slow_world.database_url, at_least=1)
        run.send_signal(signal.SIGINT)
        output = run.communicate(timeout=GRACE_S + 30)[0].decode()
        assert run.returncode == 0, output[-3000:]
        assert "run stopped" in output and "Traceback" not in output
    finally:
        if run.poll() is None:
            run.kill()
        if store is not None:
            store.dispose()
