"""SQLite state of the Chronopost sandbox: shipments, parcels, their scheduled events, counters.

One connection guarded by a lock (uvicorn's loop and test threads share it); it must never hold
the lock while doing anything but SQL, and never store passwords.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (
    reservation TEXT PRIMARY KEY, account TEXT NOT NULL, created_at REAL NOT NULL,
    mode TEXT NOT NULL, esd_number TEXT,
    reserved INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS parcels (
    skybill TEXT PRIMARY KEY, reservation TEXT NOT NULL, account TEXT NOT NULL,
    shipper_ref TEXT, recipient_ref TEXT, product TEXT NOT NULL, weight REAL NOT NULL,
    scenario TEXT NOT NULL, created_at REAL NOT NULL, cancelled_at REAL,
    id_relais TEXT, is_return INTEGER NOT NULL DEFAULT 0, mode TEXT NOT NULL,
    label BLOB NOT NULL, label_data TEXT NOT NULL, rank INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS parcels_by_ref ON parcels (account, shipper_ref);
CREATE INDEX IF NOT EXISTS parcels_by_reservation ON parcels (reservation, rank);
CREATE TABLE IF NOT EXISTS events (
    skybill TEXT NOT NULL, seq INTEGER NOT NULL, code TEXT NOT NULL, at REAL NOT NULL,
    office TEXT NOT NULL, zip TEXT NOT NULL, PRIMARY KEY (skybill, seq)
);
"""


@dataclass(frozen=True)
class Parcel:
    skybill: str
    reservation: str
    account: str
    shipper_ref: str | None
    recipient_ref: str | None
    product: str
    weight: float
    scenario: str
    created_at: float
    cancelled_at: float | None
    id_relais: str | None
    is_return: bool
    mode: str
    label: bytes
    label_data: dict[str, Any]
    rank: int

    def summary(self) -> dict[str, Any]:
        """What the admin API shows: everything but the label bytes."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("label", "label_data")}
        data["recipient"] = self.label_data.get("recipient", {})
        return data


@dataclass(frozen=True)
class StoredEvent:
    code: str
    at: float
    office: str
    zip: str


_PARCEL_COLUMNS = (
    "skybill, reservation, account, shipper_ref, recipient_ref, product, weight, scenario, "
    "created_at, cancelled_at, id_relais, is_return, mode, label, label_data, rank"
)


def _parcel(row: tuple[Any, ...]) -> Parcel:
    values = list(row)
    values[11] = bool(values[11])
    values[13] = bytes(values[13])
    values[14] = json.loads(values[14])
    return Parcel(*values)


class Store:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(shipments)")}
        if "reserved" not in columns:  # a sandbox file made before labels were stored (issue 21)
            self._db.execute("ALTER TABLE shipments ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- meta and counters ---------------------------------------------------------------------

    def get_meta(self, key: str, default: str) -> str:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_counter(self, name: str, count: int = 1) -> int:
        """Reserve `count` values of a persistent counter; returns the first one."""
        key = f"counter:{name}"
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            first = int(row[0]) if row else 0
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(first + count))
            )
        return first

    # --- writes --------------------------------------------------------------------------------

    def add_shipment(
        self,
        reservation: str,
        account: str,
        created_at: float,
        mode: str,
        esd_number: str | None,
        parcels: list[Parcel],
        events: dict[str, list[StoredEvent]],
        *,
        reserved: bool = False,
    ) -> None:
        """`reserved`: shipped with withReservation 1 or 2, so its label can be fetched again."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO shipments (reservation, account, created_at, mode, esd_number, "
                "reserved) VALUES (?, ?, ?, ?, ?, ?)",
                (reservation, account, created_at, mode, esd_number, int(reserved)),
            )
            for p in parcels:
                db.execute(
                    f"INSERT INTO parcels ({_PARCEL_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        p.skybill, p.reservation, p.account, p.shipper_ref, p.recipient_ref,
                        p.product, p.weight, p.scenario, p.created_at, p.cancelled_at,
                        p.id_relais, int(p.is_return), p.mode, p.label,
                        json.dumps(p.label_data), p.rank,
                    ),
                )  # fmt: skip
                db.executemany(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (p.skybill, i, e.code, e.at, e.office, e.zip)
                        for i, e in enumerate(events[p.skybill])
                    ],
                )

    def cancel(self, skybill: str, at: float, event: StoredEvent) -> None:
        """Mark cancelled, drop the events still to come, and record the cancellation event."""
        with self._tx() as db:
            db.execute("UPDATE parcels SET cancelled_at = ? WHERE skybill = ?", (at, skybill))
            db.execute("DELETE FROM events WHERE skybill = ? AND at > ?", (skybill, at))
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE skybill = ?", (skybill,)
            ).fetchone()
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                (skybill, seq, event.code, event.at, event.office, event.zip),
            )

    def reset(self) -> None:
        with self._tx() as db:
            for table in ("events", "parcels", "shipments", "meta"):
                db.execute(f"DELETE FROM {table}")

    # --- reads ---------------------------------------------------------------------------------

    def parcel(self, skybill: str) -> Parcel | None:
        rows = self._query(f"SELECT {_PARCEL_COLUMNS} FROM parcels WHERE skybill = ?", (skybill,))
        return _parcel(rows[0]) if rows else None

    def parcels_by_ref(self, account: str, shipper_ref: str) -> list[Parcel]:
        rows = self._query(
            f"SELECT {_PARCEL_COLUMNS} FROM parcels WHERE account = ? AND shipper_ref = ? "
            "ORDER BY created_at, rank",
            (account, shipper_ref),
        )
        return [_parcel(r) for r in rows]

    def parcels_of_reservation(self, reservation: str) -> list[Parcel]:
        rows = self._query(
            f"SELECT {_PARCEL_COLUMNS} FROM parcels WHERE reservation = ? ORDER BY rank",
            (reservation,),
        )
        return [_parcel(r) for r in rows]

    def is_reserved(self, reservation: str) -> bool:
        """Whether the shipment was made with withReservation 1 or 2 (its label is stored)."""
        rows = self._query("SELECT reserved FROM shipments WHERE reservation = ?", (reservation,))
        return bool(rows and rows[0][0])

    def parcels_of_account(self, account: str) -> list[Parcel]:
        """Every parcel of one account, oldest first (trackSearch)."""
        rows = self._query(
            f"SELECT {_PARCEL_COLUMNS} FROM parcels WHERE account = ? ORDER BY created_at, rank",
            (account,),
        )
        return [_parcel(r) for r in rows]

    def all_parcels(self) -> list[Parcel]:
        rows = self._query(f"SELECT {_PARCEL_COLUMNS} FROM parcels ORDER BY created_at, rank")
        return [_parcel(r) for r in rows]

    def live_labels(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM parcels WHERE cancelled_at IS NULL")[0][0])

    def events(self, skybill: str, until: float) -> list[StoredEvent]:
        rows = self._query(
            "SELECT code, at, office, zip FROM events WHERE skybill = ? AND at <= ? ORDER BY seq",
            (skybill, until),
        )
        return [StoredEvent(*r) for r in rows]
