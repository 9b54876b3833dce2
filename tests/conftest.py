"""Fixtures shared by every test folder: where the reference data lives, free ports, and the
end-of-suite secrets scan (tests/secrets_registry.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import secrets_registry

REPO = Path(__file__).resolve().parents[1]


# --- secrets scan: no secret in any log line or stored payload of the whole suite ------------

SESSION_LOG: Path | None = None  # the suite's log lines, JSON, in pytest's base temp dir
SESSION_STREAM: Any = None  # its open stream


@pytest.hookimpl(trylast=True)  # after the tmp_path plugin set up the base temp directory
def pytest_configure(config: pytest.Config) -> None:
    # Before any chronoforce module binds its logger: every log line of the suite lands here,
    # rendered as in production (JSON, redaction processor), for the scan at the end.
    from chronoforce.logs import configure_logging

    global SESSION_LOG, SESSION_STREAM
    SESSION_LOG = config._tmp_path_factory.getbasetemp() / "chronoforce-session.jsonl"
    SESSION_STREAM = SESSION_LOG.open("a", encoding="utf-8", buffering=1)
    configure_logging("info", "json", stream=SESSION_STREAM)
    secrets_registry.install()


@pytest.fixture(autouse=True)
def _logs_back_to_the_session_file() -> Iterator[None]:
    """Every logger follows the last `configure_logging` (chronoforce/logs.py), and each CLI
    invocation configures it: afterwards the suite's log lines go back to the session file."""
    yield
    if SESSION_STREAM is not None:
        from chronoforce.logs import configure_logging

        configure_logging("info", "json", stream=SESSION_STREAM)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test whose captured output (stdout, stderr, log) holds a secret fails, naming it."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    hits = [
        str(hit)
        for name, content in report.sections
        for hit in secrets_registry.check(content, f"{report.nodeid} ({name})")
    ]
    if hits and report.outcome != "failed" and report.nodeid not in _FAILED_FOR_A_LEAK:
        _FAILED_FOR_A_LEAK.add(report.nodeid)  # once: later phases repeat the same sections
        report.outcome = "failed"
        report.longrepr = "secret leaked: " + "; ".join(dict.fromkeys(hits))


_FAILED_FOR_A_LEAK: set[str] = set()


@pytest.fixture(autouse=True)
def _no_secret_in_the_sandboxes() -> Iterator[None]:
    yield
    leaks = [
        str(h) for s in secrets_registry.live_sandboxes() for h in secrets_registry.scan_sandbox(s)
    ]
    if leaks:
        pytest.fail("secret leaked: " + "; ".join(dict.fromkeys(leaks)), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SESSION_LOG is not None and SESSION_LOG.exists():
        text = SESSION_LOG.read_text("utf-8", "replace")
        secrets_registry.check(text, f"log file {SESSION_LOG}")
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = factory.getbasetemp() if factory is not None else None
    if base is not None and base.is_dir():
        for path in sorted(base.rglob("*.db")):
            secrets_registry.scan_sqlite(path)
    if secrets_registry.LEAKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    leaks = list(dict.fromkeys(secrets_registry.LEAKS))
    tr = terminalreporter
    tr.section("secrets scan", red=bool(leaks), green=not leaks)
    tr.write_line(
        f"{len(secrets_registry.values())} secret values looked for in captured output, "
        f"{SESSION_LOG}, stores and sandboxes: {len(leaks)} leaks"
    )
    for leak in leaks:
        tr.write_line(f"LEAK: {leak}", red=True)


def shared_dir() -> Path:
    """`../shared` beside the checkout (CI clones it there); CHRONOFORCE_SHARED overrides."""
    return Path(os.environ.get("CHRONOFORCE_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = shared_dir() / "reference"
    if not path.is_dir():
        pytest.fail(f"reference data not found at {path}: clone ../shared beside the checkout")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- databases -------------------------------------------------------------------------------

PG_ADMIN_URL = os.environ.get(
    "CHRONOFORCE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CHRONOFORCE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason (shown in the skip message)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: not reachable here
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def _skip_or_fail(reason: str) -> None:
    # CI must have the servers: a skip there would hide a missing set-up step.
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    reason = _pg_reachable()
    if reason:
        _skip_or_fail(reason)
    import uuid

    import psycopg

    name = f"chronoforce_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    leaks: list[Any] = []
    try:
        yield f"{base}/{name}"
        leaks = secrets_registry.scan_postgres(f"{base}/{name}")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if leaks:
        pytest.fail("secret leaked: " + "; ".join(str(h) for h in leaks), pytrace=False)


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chronoforce.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chronoforce.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture()
def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        _skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL
