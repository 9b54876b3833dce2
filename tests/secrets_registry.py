"""The secret values the test suite really uses, and the scan that proves none of them leaked.

What is registered: every `pydantic.SecretStr` built in the test process (so every password,
client secret, token, private key or webhook secret that reaches `Settings`), every value a
test hashes with argon2 (API client secrets, console passwords), the sandboxes' demo
credentials, every access and refresh token the Salesforce sandbox issues and every bearer
token our API issues; tests add their own with `register` (e.g. static API keys). A private
key is registered line by line (each base64 line of its PEM body), so a key that leaked in
JSON, with escaped new lines, is found too.

What is scanned (see tests/conftest.py for when): every test's captured stdout/stderr/log, the
session's structlog JSON log file, every SQLite file left in the session's temporary directory
(chronoforce stores: shipment sources, exception rows, outbox rows, webhook inbox; file-backed
sandboxes), every PostgreSQL test database before it is dropped, and every sandbox still alive
at the end of each test (Salesforce records incl. integration error records, Chronopost request
log and store). A hit names the place and the kind of secret, never the value itself.

It never masks or changes what it scans, and never prints a secret.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_values: dict[str, str] = {}  # value → what it is ("Chronopost password", …)
_patterns: dict[str, re.Pattern[str]] = {}  # short or numeric values: matched as whole words
_sandboxes: weakref.WeakSet[Any] = weakref.WeakSet()  # every sandbox still alive
LEAKS: list[str] = []

MIN_LENGTH = 6  # shorter values would match by chance (and none of ours is that short)
# Public identifiers the sandboxes reuse as a password: never a leak when they show up.
NOT_SECRET = frozenset({"chronoforce-demo"})


@dataclass(frozen=True)
class Leak:
    where: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind} found in {self.where}"


def register(kind: str, value: str | None) -> None:
    """Remember one secret value; a PEM private key is remembered by its body lines."""
    if not value or not isinstance(value, str):
        return
    if "PRIVATE KEY" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= 40 and not line.startswith("-----"):
                register(kind, line)
        return
    if len(value) < MIN_LENGTH or value in NOT_SECRET:
        return
    with _lock:
        if value in _values:
            return
        _values[value] = kind
        if value.isdigit() or len(value) < 10:
            _patterns[value] = re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w])")


def values() -> dict[str, str]:
    with _lock:
        return dict(_values)


def find(text: str | bytes, where: str) -> list[Leak]:
    """The registered secrets present in `text` (bytes are read as UTF-8, leniently)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text:
        return []
    with _lock:
        known = list(_values.items())
        patterns = dict(_patterns)
    hits = []
    for value, kind in known:
        if value not in text:
            continue
        pattern = patterns.get(value)
        if pattern is None or pattern.search(text):
            hits.append(Leak(where, kind))
    return hits


def check(text: str | bytes, where: str) -> list[Leak]:
    """`find`, remembering the hits for the end-of-session report."""
    hits = find(text, where)
    with _lock:
        LEAKS.extend(str(h) for h in hits)
    return hits


def _look(record: bool, text: str | bytes, where: str) -> list[Leak]:
    return check(text, where) if record else find(text, where)


# --- where secrets could end up ------------------------------------------------------------


def scan_sqlite(path: Path, *, record: bool = True) -> list[Leak]:
    """Every text and blob value of every table of one SQLite file."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return []
    hits: list[Leak] = []
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            text = "\n".join(
                "\x1f".join(
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
                )
                for row in connection.execute(f'SELECT * FROM "{table}"')
            )
            hits.extend(_look(record, text, f"{path} table {table}"))
    except sqlite3.Error:
        pass  # not a database, or still locked by a crashed writer: nothing readable to scan
    finally:
        connection.close()
    return _dedup(hits)


def scan_postgres(url: str, *, record: bool = True) -> list[Leak]:
    """Every row of every table of a test database (run before the database is dropped)."""
    import psycopg

    hits: list[Leak] = []
    with psycopg.connect(url, connect_timeout=5) as connection:
        tables = [
            r[0]
            for r in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        for table in tables:
            for (text,) in connection.execute(f'SELECT t::text FROM "{table}" t'):
                hits.extend(
                    _look(record, text, f"PostgreSQL {url.rsplit('/', 1)[-1]} table {table}")
                )
    return _dedup(hits)


def scan_sandbox(sandbox: Any, *, record: bool = True) -> list[Leak]:
    """A Salesforce sandbox's records (integration errors included) or a Chronopost sandbox's
    request log and stored labels, whichever `sandbox` is."""
    hits: list[Leak] = []
    store = getattr(sandbox, "store", None)
    name = type(sandbox).__name__
    try:
        if name == "SalesforceSandbox":
            with store.lock:  # the lock its request handlers hold
                for obj in store.stored().values():
                    text = "\n".join(repr(row) for row in store.rows(obj, include_deleted=True))
                    hits.extend(_look(record, text, f"Salesforce sandbox {obj.name} records"))
        else:
            text = "\n".join(repr(entry) for entry in sandbox.log.records())
            hits.extend(_look(record, text, "Chronopost sandbox request log"))
            with store._lock:
                db = store._db
                for (table,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                ).fetchall():
                    rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
                    hits.extend(_look(record, repr(rows), f"Chronopost sandbox table {table}"))
    except sqlite3.Error:
        pass  # the test closed the sandbox's database: what it held is gone with it
    return _dedup(hits)


def _dedup(hits: Iterable[Leak]) -> list[Leak]:
    return list(dict.fromkeys(hits))


# --- wiring: what feeds the registry -------------------------------------------------------


def install() -> None:
    """Register the demo credentials and watch every secret and sandbox the tests create."""
    from pydantic.types import _SecretBase

    from chronoforce.sandbox.chronopost import DEMO_PASSWORD as CHRONOPOST_PASSWORD
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import (
        DEMO_CLIENT_SECRET,
        DEMO_PASSWORD,
        DEMO_SECURITY_TOKEN,
        SalesforceSandbox,
    )
    from chronoforce.sandbox.salesforce.auth import Auth

    register("Chronopost password", CHRONOPOST_PASSWORD)
    register("Salesforce client secret", DEMO_CLIENT_SECRET)
    register("Salesforce password", DEMO_PASSWORD)
    register("Salesforce security token", DEMO_SECURITY_TOKEN)

    secret_init = _SecretBase.__init__

    def remember_secret(self: Any, secret_value: Any) -> None:
        register("a configured secret (SecretStr)", secret_value)
        secret_init(self, secret_value)

    _SecretBase.__init__ = remember_secret  # type: ignore[method-assign]

    issue, refresh = Auth.issue, Auth.issue_refresh_token

    def remember_access(self: Any, *args: Any, **kwargs: Any) -> str:
        token = issue(self, *args, **kwargs)
        register("Salesforce access token", token)
        return token

    def remember_refresh(self: Any, *args: Any, **kwargs: Any) -> str:
        token = refresh(self, *args, **kwargs)
        register("Salesforce refresh token", token)
        return token

    Auth.issue = remember_access  # type: ignore[method-assign]
    Auth.issue_refresh_token = remember_refresh  # type: ignore[method-assign]

    # Client secrets and console passwords reach chronoforce only as argon2 hashes: the value
    # the test hashed is the secret a caller will present.
    from argon2 import PasswordHasher

    hash_secret = PasswordHasher.hash

    def remember_hashed(self: Any, password: str | bytes, **kwargs: Any) -> str:
        register("a hashed secret (API client secret, console password)", _text(password))
        return hash_secret(self, password, **kwargs)

    PasswordHasher.hash = remember_hashed  # type: ignore[method-assign]

    # Bearer tokens our API issues: observed on their way out, the call itself unchanged.
    from chronoforce.web import api_auth

    issue_api_token = api_auth.issue_token

    def remember_api_token(*args: Any, **kwargs: Any) -> str:
        token = issue_api_token(*args, **kwargs)
        register("API bearer token", token)
        return token

    api_auth.issue_token = remember_api_token

    for cls in (SalesforceSandbox, ChronopostSandbox):
        _watch(cls)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _watch(cls: type) -> None:
    built = cls.__init__

    def remember_sandbox(self: Any, *args: Any, **kwargs: Any) -> None:
        built(self, *args, **kwargs)
        with _lock:
            _sandboxes.add(self)

    cls.__init__ = remember_sandbox  # type: ignore[misc]


def live_sandboxes() -> list[Any]:
    """Every sandbox some test or fixture still holds (scanned after each test)."""
    with _lock:
        return list(_sandboxes)
