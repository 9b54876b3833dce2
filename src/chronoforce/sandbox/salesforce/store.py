"""SQLite storage of the sandbox org: one table per object, the change-event log, file bytes.

Every record change and its change event are written in one transaction. It must never hold a
connection per thread: one connection behind one lock serves the HTTP thread and Python callers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chronoforce.sandbox.salesforce.schema import SObject

RETENTION_SECONDS = 72 * 3600  # Change Data Capture / platform event retention

_EVENT_TABLES = """
CREATE TABLE IF NOT EXISTS change_event(
    replay_id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS change_event_topic ON change_event(topic, replay_id);
CREATE TABLE IF NOT EXISTS content_blob(version_id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sandbox_counter(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class Tx:
    """One Salesforce transaction: its events share a transactionKey and count sequenceNumber."""

    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    sequence: int = 0
    commit_number: int = 0


class Store:
    def __init__(self, path: str | Path, schema: dict[str, SObject]) -> None:
        self.schema = schema
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._tx: Tx | None = None
        self._savepoints = 0
        self._create()
        self._numbers = {name: self._max_rowid(obj) for name, obj in self.stored().items()}

    def stored(self) -> dict[str, SObject]:
        return {name: obj for name, obj in self.schema.items() if not obj.event}

    def _create(self) -> None:
        with self.lock:
            self.conn.executescript(_EVENT_TABLES)
            for obj in self.stored().values():
                columns = ", ".join(
                    f'"{f.name}" {f.sql_type}' + (" PRIMARY KEY" if f.name == "Id" else "")
                    for f in obj.stored_fields
                )
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {obj.table} ({columns})")
                present = {row[1] for row in self.conn.execute(f"PRAGMA table_info({obj.table})")}
                for f in obj.stored_fields:  # a package upgrade adds fields to an existing file
                    if f.name not in present:
                        self.conn.execute(
                            f'ALTER TABLE {obj.table} ADD COLUMN "{f.name}" {f.sql_type}'
                        )
                self._indexes(obj)

    def _indexes(self, obj: SObject) -> None:
        indexed = [f for f in obj.stored_fields if f.type == "reference" or f.external_id]
        indexed += [obj.fields["SystemModstamp"]]
        for f in indexed:
            unique = "UNIQUE " if f.unique else ""
            self.conn.execute(
                f'CREATE {unique}INDEX IF NOT EXISTS "{obj.name}_{f.name}" '
                f'ON {obj.table}("{f.name}")'
            )

    def _max_rowid(self, obj: SObject) -> int:
        row = self.conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {obj.table}").fetchone()
        return int(row[0])

    # --- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A transaction, or a savepoint inside the current one (rolled back on error)."""
        with self.lock:
            if self._tx is not None:
                self._savepoints += 1
                name = f"sp{self._savepoints}"
                self.conn.execute(f"SAVEPOINT {name}")
                try:
                    yield self._tx
                except BaseException:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                    raise
                self.conn.execute(f"RELEASE {name}")
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._tx = Tx(commit_number=self._bump("commit"))
            numbers = dict(self._numbers)
            try:
                yield self._tx
            except BaseException:
                self.conn.execute("ROLLBACK")
                self._numbers = numbers
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._tx = None

    def _bump(self, name: str) -> int:
        self.conn.execute(
            "INSERT INTO sandbox_counter(name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return int(
            self.conn.execute(
                "SELECT value FROM sandbox_counter WHERE name = ?", (name,)
            ).fetchone()[0]
        )

    def next_number(self, sobject: str) -> int:
        with self.lock:
            self._numbers[sobject] += 1
            return self._numbers[sobject]

    # --- rows --------------------------------------------------------------------------------

    def insert(self, obj: SObject, number: int, values: dict[str, Any]) -> None:
        names = list(values)
        marks = ", ".join("?" for _ in names)
        cols = ", ".join(f'"{n}"' for n in names)
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {obj.table} (rowid, {cols}) VALUES (?, {marks})",
                [number, *values.values()],
            )

    def insert_many(self, obj: SObject, names: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
        """Bulk insert for the seed generator: rows start with their rowid."""
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        with self.lock:
            self.conn.executemany(
                f"INSERT INTO {obj.table} (rowid, {cols}) VALUES (?, {marks})", rows
            )

    def update(self, obj: SObject, record_id: str, values: dict[str, Any]) -> None:
        sets = ", ".join(f'"{n}" = ?' for n in values)
        with self.lock:
            self.conn.execute(
                f'UPDATE {obj.table} SET {sets} WHERE "Id" = ?', [*values.values(), record_id]
            )

    def fetch(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        with self.lock:
            cursor = self.conn.execute(f'SELECT * FROM {obj.table} WHERE "Id" = ?', (record_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def ids_where(self, obj: SObject, field_name: str, value: Any) -> list[str]:
        with self.lock:
            rows = self.conn.execute(
                f'SELECT "Id" FROM {obj.table} WHERE "{field_name}" = ? AND "IsDeleted" = 0 '
                "ORDER BY rowid",
                (value,),
            ).fetchall()
        return [r[0] for r in rows]

    def rows(self, obj: SObject, include_deleted: bool = False) -> list[dict[str, Any]]:
        where = "" if include_deleted else ' WHERE "IsDeleted" = 0'
        with self.lock:
            cursor = self.conn.execute(f"SELECT * FROM {obj.table}{where} ORDER BY rowid")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.conn.execute(sql, list(params)).fetchall()

    # --- blobs and events --------------------------------------------------------------------

    def put_blob(self, version_id: str, data: bytes) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO content_blob VALUES (?, ?)", (version_id, data))

    def blob(self, version_id: str) -> bytes | None:
        rows = self.execute("SELECT data FROM content_blob WHERE version_id = ?", (version_id,))
        return bytes(rows[0][0]) if rows else None

    def append_event(self, topic: str, created_at: float, payload: dict[str, Any]) -> int:
        with self.lock:
            cursor = self.conn.execute(
                "INSERT INTO change_event(topic, created_at, payload) VALUES (?, ?, ?)",
                (topic, created_at, json.dumps(payload, separators=(",", ":"))),
            )
            return int(cursor.lastrowid or 0)

    def read_changes(
        self, topic: str, after: int | None, limit: int, not_before: float
    ) -> list[tuple[int, float, dict[str, Any]]]:
        rows = self.execute(
            "SELECT replay_id, created_at, payload FROM change_event "
            "WHERE topic = ? AND replay_id > ? AND created_at >= ? ORDER BY replay_id LIMIT ?",
            (topic, after or 0, not_before, limit),
        )
        return [(int(r[0]), float(r[1]), json.loads(r[2])) for r in rows]

    def replay_bound(self, topic: str, newest: bool, not_before: float) -> int | None:
        func = "max" if newest else "min"
        rows = self.execute(
            f"SELECT {func}(replay_id) FROM change_event WHERE topic = ? AND created_at >= ?",
            (topic, not_before),
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def topics(self) -> list[str]:
        return [r[0] for r in self.execute("SELECT DISTINCT topic FROM change_event ORDER BY 1")]

    def reset(self) -> None:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            for obj in self.stored().values():
                self.conn.execute(f"DELETE FROM {obj.table}")
            for table in ("change_event", "content_blob", "sandbox_counter"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.execute("DELETE FROM sqlite_sequence WHERE name = 'change_event'")
            self.conn.execute("COMMIT")
            self._numbers = dict.fromkeys(self._numbers, 0)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
