"""A configured world for CLI tests: both sandboxes on loopback, a YAML file, the environment.

`cli_world` is the real thing the commands run against (subprocesses or typer's CliRunner): the
Chronopost sandbox, a seeded Salesforce sandbox over HTTPS, SQLite in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls


@dataclass
class CliWorld:
    carrier: ChronopostSandbox
    org: SalesforceSandbox
    config: Path
    env: dict[str, str]  # the secrets and CHRONOFORCE_CONFIG, for CliRunner.invoke(env=…)
    database_url: str

    def process_env(self) -> dict[str, str]:
        """The environment of a `chronoforce` subprocess."""
        return {**os.environ, **self.env}


def make_world(
    tmp: Path, *, orders: int, latency: float = 0.0, worker: dict[str, Any] | None = None
) -> Iterator[CliWorld]:
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", latency=latency)
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=orders, seed=3)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    database_url = f"sqlite:///{tmp / 'chronoforce.db'}"
    config = tmp / "chronoforce.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": database_url,
                "chronopost": {"base_url": cp.url, "account_number": DEMO_ACCOUNT},
                "salesforce": {
                    "instance_url": sf.url,
                    "login_url": sf.url,
                    "client_id": DEMO_CLIENT_ID,
                    "ca_file": str(tls.ca_cert),
                },
                "worker": {"detect_every_s": 0.5, **(worker or {})},
                "logging": {"level": "info", "format": "json"},
            }
        )
    )
    env = {
        "CHRONOFORCE_CONFIG": str(config),
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "COLUMNS": "200",
    }
    try:
        yield CliWorld(carrier, org, config, env, database_url)
    finally:
        sf.stop()
        cp.stop()


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    """A small seeded world shared by a module's tests (they must not depend on each other's
    order: each reads what it needs)."""
    yield from make_world(tmp_path_factory.mktemp("cli"), orders=12)
