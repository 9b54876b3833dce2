"""The world the end-to-end benchmarks run in: both sandboxes as separate processes, databases.

Each sandbox runs in its own process (as the real services would be elsewhere), so the pipeline
being measured never shares its interpreter lock with them. Loopback only; it never touches a
database, queue or Redis key it did not create, and it removes what it created.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from chronoforce.sandbox.server import free_port

PG_ADMIN_URL = os.environ.get(
    "CHRONOFORCE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHRONOFORCE_TEST_REDIS", "redis://127.0.0.1:6379/0")
CLI = [sys.executable, "-c", "from chronoforce.cli import app; app()"]


def wait_until(check: Any, what: str, seconds: float = 60.0, every: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError):
            value = check()
            if value:
                return value
        time.sleep(every)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


@dataclass
class Sandboxes:
    chronopost_url: str
    salesforce_url: str
    ca_file: Path
    ssl_context: ssl.SSLContext
    pids: tuple[int, ...] = ()

    def cpu_seconds(self) -> float:
        """CPU time the sandbox processes have used so far (user + system)."""
        import psutil

        total = 0.0
        for pid in self.pids:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        return total

    def sf_admin(self, method: str, path: str, body: Any = None, timeout: float = 600) -> Any:
        response = httpx.request(
            method,
            f"{self.salesforce_url}/_sandbox/{path}",
            json=body,
            verify=self.ssl_context,
            timeout=timeout,
        )
        response.raise_for_status()
        return response.json()

    def seed(self, orders: int, seed: int = 11) -> dict[str, int]:
        return dict(self.sf_admin("POST", "seed", {"orders": orders, "seed": seed})["created"])

    def records(self, sobject: str) -> list[dict[str, Any]]:
        return list(self.sf_admin("GET", f"records/{sobject}"))

    def stats(self) -> dict[str, int]:
        return dict(self.sf_admin("GET", "stats"))

    def reset_stats(self) -> None:
        self.sf_admin("POST", "stats/reset")


@contextlib.contextmanager
def sandboxes(latency_ms: float = 0.0, workdir: Path | None = None) -> Iterator[Sandboxes]:
    """Start the Chronopost (HTTP) and Salesforce (HTTPS) sandboxes; stop them afterwards."""
    root = workdir or Path(tempfile.mkdtemp(prefix="cf-bench-"))
    tls_dir = root / "tls"
    cp_port, sf_port = free_port(), free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    chronopost = subprocess.Popen(
        [*CLI, "sandbox", "chronopost", "--port", str(cp_port), "--latency-ms", str(latency_ms)],
        **quiet,  # type: ignore[call-overload]
    )
    salesforce = subprocess.Popen(
        [*CLI, "sandbox", "salesforce", "--port", str(sf_port), "--tls-dir", str(tls_dir)],
        **quiet,  # type: ignore[call-overload]
    )
    try:
        cp_url = f"http://127.0.0.1:{cp_port}"
        wait_until(
            lambda: httpx.get(f"{cp_url}/_sandbox/faults", timeout=2).is_success,
            "the Chronopost sandbox",
        )
        wait_until(lambda: (tls_dir / "ca.pem").exists(), "the Salesforce sandbox CA")
        context = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
        sf_url = f"https://localhost:{sf_port}"
        wait_until(
            lambda: httpx.get(f"{sf_url}/services/data/", verify=context, timeout=2).is_success,
            "the Salesforce sandbox",
        )
        yield Sandboxes(
            cp_url, sf_url, tls_dir / "ca.pem", context, (chronopost.pid, salesforce.pid)
        )
    finally:
        for process in (chronopost, salesforce):
            process.terminate()
        for process in (chronopost, salesforce):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database of our own, dropped afterwards."""
    import psycopg

    name = f"chronoforce_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # any failure means: not here
        return False


def redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping())
    except Exception:  # any failure means: not here
        return False


def sf_datetime(value: str) -> dt.datetime:
    """Salesforce's `2026-12-01T20:22:39.123+0000` as an aware datetime."""
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
