"""The label pipeline's two deployments: SQLite + huey on SQLite, PostgreSQL + Redis."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str
    queue_url: str  # "" = huey on SQLite beside the database
    queue_name: str

    def settings_update(self) -> dict[str, Any]:
        """Fields to `model_copy(update=…)` into Settings for this backend."""
        return {
            "database_url": self.database_url,
            "queue_url": self.queue_url,
            "worker": {"queue_name": self.queue_name},
        }


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same test on the embedded default and on the scaled-out servers (both in CI)."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'chronoforce.db'}", "", "chronoforce")
        return
    pg_url = request.getfixturevalue("pg_url")
    redis_url = request.getfixturevalue("redis_url")
    # Our own huey name: other test runs share this Redis, and huey's keys start with it.
    backend = Backend("postgres+redis", pg_url, redis_url, f"cf-test-{uuid.uuid4().hex[:10]}")
    try:
        yield backend
    finally:
        from huey import RedisHuey

        RedisHuey(backend.queue_name, url=redis_url).flush()  # only this name's keys


@pytest.fixture()
def sandbox_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Both sandboxes over HTTP (Salesforce over HTTPS), a runtime on SQLite, 8 seeded orders.
    Indirect parameter "cluster": the runtime has the cluster's gates (what `run_until` needs)."""
    yield from open_sandbox_world(tmp_path, cluster=getattr(request, "param", "") == "cluster")


def open_sandbox_world(
    tmp_path: Path,
    *,
    carrier_accounts: dict[str, str] | None = None,
    chronopost_update: dict[str, Any] | None = None,
    cluster: bool = False,
) -> Iterator[dict[str, Any]]:
    """`sandbox_world`, with more accounts at the Chronopost sandbox (number → password) and
    `chronopost:` settings changed (e.g. a family's own contract)."""
    from chronoforce.cli.demo import demo_settings
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    tls = ensure_tls(tmp_path / "tls")
    # Not about the cancel window (tests/chronopost/test_documented_answers.py is).
    carrier = ChronopostSandbox(
        db_path=":memory:", cancel_window=dt.timedelta(0), accounts=carrier_accounts
    )
    org = SalesforceSandbox(db_path=":memory:")
    seeded = org.seed(orders=8, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert).model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'chronoforce.db'}"}
    )
    if chronopost_update:
        chronopost = settings.chronopost.model_copy(update=chronopost_update)
        settings = settings.model_copy(update={"chronopost": chronopost})
    runtime = build_runtime(settings, cluster=cluster)
    try:
        yield {
            "carrier": carrier,
            "org": org,
            "runtime": runtime,
            "seeded": seeded,
            "tls": tls,
            "settings": settings,
        }
    finally:
        runtime.close()
        sf.stop()
        cp.stop()
