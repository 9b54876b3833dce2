"""Scale-out parts on both backends: cluster turns, the shared circuit breaker, carrier slots,
the Salesforce pause, `chronoforce status`, `/ready`, and a worker that stops on SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from chronoforce.config import ConfigError, Settings
from chronoforce.domain.errors import CarrierUnavailableError, CircuitOpenError
from chronoforce.pipeline import cluster
from chronoforce.pipeline.breaker import CircuitBreaker
from chronoforce.pipeline.writeback import PAUSE
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment
from chronoforce.worker import worker_config

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture()
def store(backend: Any) -> Iterator[Store]:
    s = Store(backend.database_url)
    yield s
    s.dispose()


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


# --- periodic jobs: once per cluster ---------------------------------------------------------


def test_a_periodic_turn_goes_to_one_worker_per_period(store: Store) -> None:
    period = dt.timedelta(seconds=5)
    assert cluster.take_turn(store, "periodic:flush", "a", period, T0)
    assert not cluster.take_turn(store, "periodic:flush", "b", period, T0)
    assert not cluster.take_turn(store, "periodic:flush", "b", period, T0 + period / 2)
    assert cluster.take_turn(store, "periodic:flush", "b", period, T0 + period)
    assert not cluster.take_turn(store, "periodic:flush", "a", period, T0 + period)
    # Another job has its own turn.
    assert cluster.take_turn(store, "periodic:detect", "a", period, T0)


def test_racing_workers_get_exactly_one_turn(store: Store) -> None:
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def contend(name: str) -> None:
        barrier.wait()
        if cluster.take_turn(store, "periodic:sweep", name, dt.timedelta(seconds=30), T0):
            wins.append(name)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1


def test_turns_run_each_job_once_however_many_workers_tick(store: Store) -> None:
    runs: list[str] = []
    workers = [
        cluster.Turns(store, {"detect": (60.0, lambda n=n: runs.append(n))}, owner=f"w{n}")
        for n in range(3)
    ]
    for _ in range(5):
        for worker in workers:
            worker.tick()
    assert len(runs) == 1


# --- the circuit breaker, shared -------------------------------------------------------------


def _breaker(store: Store, clock: Clock, owner: str) -> CircuitBreaker:
    return CircuitBreaker(
        store, failures_to_open=3, open_s=10, max_open_s=40, refresh_s=0, now=clock, owner=owner
    )


def test_failures_in_one_worker_open_the_breaker_for_every_worker(store: Store) -> None:
    clock = Clock()
    one, two = _breaker(store, clock, "one"), _breaker(store, clock, "two")
    for _ in range(3):
        one.before_call()
        one.on_failure()
    with pytest.raises(CircuitOpenError) as refused:
        two.before_call()
    assert refused.value.retry_after == pytest.approx(10, abs=0.5)
    assert two.state()[0] == "open"


def test_after_the_pause_exactly_one_worker_probes_and_its_success_closes(store: Store) -> None:
    clock = Clock()
    one, two = _breaker(store, clock, "one"), _breaker(store, clock, "two")
    for _ in range(3):
        one.on_failure()
    clock.advance(10)
    two.before_call()  # two is the probe
    with pytest.raises(CircuitOpenError):
        one.before_call()  # one must wait for the probe's outcome
    two.on_success()
    one.before_call()
    assert one.state()[0] == "closed"


def test_a_failed_probe_reopens_for_twice_as_long(store: Store) -> None:
    clock = Clock()
    one = _breaker(store, clock, "one")
    for _ in range(3):
        one.on_failure()
    clock.advance(10)
    one.before_call()
    one.on_failure()
    state, until = one.state()
    assert state == "open" and until == T0 + dt.timedelta(seconds=30)


def test_watch_counts_carrier_failures_but_not_refusals(store: Store) -> None:
    clock = Clock()
    breaker = _breaker(store, clock, "one")
    for _ in range(3):
        with pytest.raises(CarrierUnavailableError), breaker.watch():
            raise CarrierUnavailableError("HTTP 503")
    assert breaker.state()[0] == "open"


# --- carrier slots ---------------------------------------------------------------------------


def test_slots_cap_concurrent_holders_across_the_cluster(store: Store, backend: Any) -> None:
    redis_url = backend.queue_url
    first = cluster.Slots(store, f"test-{backend.queue_name}", 2, hold=30, redis_url=redis_url)
    second = cluster.Slots(store, f"test-{backend.queue_name}", 2, hold=30, redis_url=redis_url)
    a, b = first.try_acquire(), second.try_acquire()
    assert a and b
    assert first.try_acquire() is None and second.try_acquire() is None
    first.release(a)
    c = second.try_acquire()
    assert c is not None
    second.release(b)
    second.release(c)


def test_a_dead_holders_slot_frees_itself(store: Store, backend: Any) -> None:
    slots = cluster.Slots(
        store, f"dead-{backend.queue_name}", 1, hold=0.3, redis_url=backend.queue_url
    )
    assert slots.try_acquire() is not None  # never released: its holder "died"
    assert slots.try_acquire() is None
    end = time.monotonic() + 5
    token = None
    while token is None and time.monotonic() < end:
        token = slots.try_acquire()
        time.sleep(0.05)
    assert token is not None


# --- the Salesforce pause --------------------------------------------------------------------


def test_a_pause_only_grows_and_ends_at_its_time(store: Store) -> None:
    cluster.pause(store, PAUSE, T0 + dt.timedelta(seconds=60), "REQUEST_LIMIT_EXCEEDED")
    cluster.pause(store, PAUSE, T0 + dt.timedelta(seconds=10), "shorter")
    assert cluster.paused_until(store, PAUSE, T0) == T0 + dt.timedelta(seconds=60)
    assert cluster.paused_until(store, PAUSE, T0 + dt.timedelta(seconds=61)) is None


# --- configuration ---------------------------------------------------------------------------


def test_worker_settings_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"worker\.concurrency"):
        worker_config({"concurrency": 0})
    with pytest.raises(ConfigError, match=r"worker\.flush_evry_s"):
        worker_config({"flush_evry_s": 1})
    assert worker_config({}).queue_name == "chronoforce"


# --- status and readiness --------------------------------------------------------------------


def _settings(backend: Any) -> Settings:
    return Settings(
        database_url=backend.database_url,
        queue_url=backend.queue_url,
        worker={"queue_name": backend.queue_name},
    )


def test_status_reports_leases_oldest_work_breaker_and_budget(
    backend: Any, store: Store, tmp_path: Path
) -> None:
    from chronoforce.cli import app
    from chronoforce.pipeline.runner import API_NOTE

    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        session.add_all(
            [
                Shipment(sf_object="Order", sf_id="801000000000001AAA", shipper_ref="A1"),
                Shipment(
                    sf_object="Order",
                    sf_id="801000000000002AAA",
                    shipper_ref="A2",
                    state="calling",
                    lease_owner="w-1",
                    lease_expires_at=now + dt.timedelta(minutes=1),
                    created_at=now - dt.timedelta(minutes=5),
                ),
            ]
        )
    cluster.note(store, API_NOTE, {"used": 900, "max": 1000})
    cluster.pause(store, PAUSE, now + dt.timedelta(minutes=10), "REQUEST_LIMIT_EXCEEDED")
    config = tmp_path / "status.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": backend.database_url,
                "queue_url": backend.queue_url,
                "worker": {"queue_name": backend.queue_name},
            }
        )
    )
    result = CliRunner().invoke(app, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["queue"]["depth"] == 0
    assert report["shipments"] == {"pending": 1, "calling": 1}
    assert report["leases_held"] == 1
    assert report["oldest_pending_label_s"] >= 290
    assert report["api_budget"] == {
        "used": 900,
        "max": 1000,
        "remaining": 100,
        "seen_s_ago": report["api_budget"]["seen_s_ago"],
    }
    assert report["salesforce_pause"]["paused"] is True
    assert report["carrier_breaker"]["state"] == "closed"
    table = CliRunner().invoke(app, ["--config", str(config), "status"])
    assert table.exit_code == 0 and "leases held" in table.output


def test_ready_checks_database_migrations_and_queue(backend: Any, store: Store) -> None:
    from chronoforce.web.app import create_app

    with TestClient(create_app(_settings(backend), drain_inbox=False)) as client:
        answer = client.get("/ready")
        assert answer.status_code == 200, answer.text
        assert answer.json()["checks"] == {"database": "ok", "migrations": "ok", "queue": "ok"}
    broken = _settings(backend).model_copy(update={"queue_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken, drain_inbox=False)) as client:
        answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["queue"].startswith("unreachable")
    assert "127.0.0.1:1" not in answer.text  # URLs may carry passwords: never shown


# --- a real worker process and SIGTERM -------------------------------------------------------


def test_sigterm_stops_a_worker_cleanly_and_releases_what_it_had_not_started(
    sqlite_url: str, tmp_path: Path
) -> None:
    """On SQLite + huey-SQLite here; the kill scenario SIGTERMs its PostgreSQL + Redis workers."""
    from types import SimpleNamespace

    backend = SimpleNamespace(database_url=sqlite_url, queue_url="", queue_name="chronoforce")
    from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
    from chronoforce.sandbox.salesforce import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        SalesforceSandbox,
    )
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", latency=0.3)
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=40, seed=3)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    config = tmp_path / "chronoforce.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": backend.database_url,
                "queue_url": backend.queue_url,
                "chronopost": {"base_url": cp.url, "account_number": DEMO_ACCOUNT},
                "salesforce": {
                    "instance_url": sf.url,
                    "login_url": sf.url,
                    "client_id": DEMO_CLIENT_ID,
                    "ca_file": str(tls.ca_cert),
                },
                "worker": {"queue_name": backend.queue_name, "detect_every_s": 0.5},
                "logging": {"level": "info", "format": "json"},
            }
        )
    )
    env = {
        **os.environ,
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    }
    command = [sys.executable, "-m", "chronoforce.cli", "--config", str(config), "worker"]
    worker = subprocess.Popen(
        [*command, "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    store: Store | None = None
    try:
        end = time.monotonic() + 60
        labeled = 0
        while time.monotonic() < end and labeled < 3 and worker.poll() is None:
            time.sleep(0.2)
            try:
                store = store or Store(backend.database_url)
                labeled = _count(store, "labeled")
            except Exception:  # the worker is still creating the schema
                continue
        assert labeled >= 3, worker.stdout.read().decode()[-3000:] if worker.stdout else ""
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=40)[0].decode()
        assert worker.returncode == 0, output[-3000:]
        assert "worker stopped" in output
        assert store is not None
        with store.session() as session:
            held = session.scalars(
                select(Shipment).where(
                    Shipment.lease_owner.is_not(None), Shipment.state != "calling"
                )
            ).all()
        assert held == [], "leases of work never started are released at once"
        assert _count(store, "labeled") < 40, "it stopped rather than finishing everything"
    finally:
        if worker.poll() is None:
            worker.kill()
        if store is not None:
            store.dispose()
        sf.stop()
        cp.stop()


def _count(store: Store, state: str) -> int:
    with store.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Shipment).where(Shipment.state == state)
            )
            or 0
        )
