"""Engines and sessions for SQLite (WAL) and PostgreSQL, and the migrations run at start-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.close()


BUSY_TIMEOUT_S = 30
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _WriterQueue:
    """SQLite lets one writer in at a time, and one kept waiting polls in sleeps of up to 100 ms
    (its busy handler) instead of being woken. Writers of this process therefore queue on a lock
    taken at the transaction's first write and given back at its end, and are woken at once;
    the database's own lock still keeps writers of other processes apart."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        # Given back once the database's COMMIT or ROLLBACK has run: the engine's "commit" and
        # "rollback" events come before it, and a writer let in then finds the database still
        # locked (SQLite's busy handler, sleeping, or "database is locked" with a short
        # timeout). The pool's reset-on-return rolls back through the same dialect method.
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(connection: Any) -> None:
            try:
                commit(connection)
            finally:
                self._give_back(_info(connection))

        def do_rollback(connection: Any) -> None:
            try:
                rollback(connection)
            finally:
                self._give_back(_info(connection))

        setattr(dialect, "do_commit", do_commit)  # noqa: B010 - this engine's dialect only
        setattr(dialect, "do_rollback", do_rollback)  # noqa: B010
        # A connection closed or dropped mid-write gives the queue back too.
        event.listen(engine.pool, "checkin", self._record_done)
        event.listen(engine.pool, "invalidate", self._record_done)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if conn.info.get("cf_writing") or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        # Bounded like the database's busy timeout: past it, the database's own lock decides.
        if self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            conn.info["cf_writing"] = True

    def _record_done(self, _dbapi: Any, record: Any, *_: Any) -> None:
        if record is not None:
            self._give_back(record.info)

    def _give_back(self, info: dict[str, Any] | None) -> None:
        if info is not None and info.pop("cf_writing", False):
            self._lock.release()


def _info(connection: Any) -> dict[str, Any] | None:
    """The pool record's info of a pooled connection; None for the first connect's ad-hoc one."""
    try:
        return connection.info  # type: ignore[no-any-return]
    except (AttributeError, NotImplementedError):
        return None


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if make_url(url).database not in (None, "", ":memory:"):
            _WriterQueue().install(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("chronoforce.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; runs at every start-up)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class Store:
    """An engine plus a session factory; the one handle the rest of chronoforce passes around."""

    def __init__(self, url: str, *, migrate: bool = True, **engine_kwargs: Any) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def head_revision() -> str | None:
    """The newest migration this version of chronoforce ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
