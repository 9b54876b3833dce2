"""Small statements the pipeline needs on both SQLite and PostgreSQL: insert-if-absent, leases,
watermarks."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import and_, inspect, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chronoforce.store.models import Base, Shipment, Watermark


@functools.cache
def _insert_many(dialect: str, model: type[Base]) -> Any:
    """The executemany INSERT … ON CONFLICT DO NOTHING RETURNING key, built once per table."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    key = next(iter(inspect(model).primary_key))
    return insert(model).on_conflict_do_nothing().returning(key)


def insert_ignore(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT DO NOTHING; returns how many rows were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if len({frozenset(row) for row in rows}) == 1:
        # Rows with the same keys: one cached statement run as executemany (SQLAlchemy's
        # "insertmanyvalues" batches it). A multi-VALUES statement is compiled afresh on every
        # call, which dominated a 200,000-order backfill (bench/bench_scale.py). RETURNING
        # gives the new rows only, on both backends (executemany has no reliable rowcount).
        many = _insert_many(dialect, model)
        session.flush()  # what session.execute's autoflush did: pending rows go first
        return len(session.connection().execute(many, rows).all())
    statement = insert(model).values(rows).on_conflict_do_nothing()
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def take_lease(
    session: Session,
    shipment_id: int,
    owner: str,
    now: dt.datetime,
    duration: dt.timedelta,
    states: tuple[str, ...],
) -> bool:
    """Atomically take the shipment if it is in `states` and nobody holds a live lease on it."""
    result = session.execute(
        update(Shipment)
        .where(
            and_(
                Shipment.id == shipment_id,
                Shipment.state.in_(states),
                or_(Shipment.lease_expires_at.is_(None), Shipment.lease_expires_at < now),
            )
        )
        .values(lease_owner=owner, lease_expires_at=now + duration)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def release_lease(session: Session, shipment_id: int, owner: str) -> None:
    session.execute(
        update(Shipment)
        .where(Shipment.id == shipment_id, Shipment.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


# --- watermarks: where a detection source stopped (`delta:<object>`, `pubsub:<topic>`) --------
# Written in the caller's session, so a watermark moves in the same transaction as the work it
# stands for (the intents of a page).


def read_watermark(session: Session, source: str) -> str | None:
    """The stored watermark of `source`; None when there is none."""
    mark = session.get(Watermark, source)
    return mark.value if mark else None


def advance_watermark(session: Session, source: str, value: str) -> None:
    """Move the watermark forward to `value`, never back (a page read again leaves it)."""
    mark = session.get(Watermark, source)
    if mark is None:
        session.add(Watermark(source=source, value=value))
    elif value > mark.value:
        mark.value = value


def set_watermark(session: Session, source: str, value: str) -> None:
    """Store `value` as the watermark, whatever was there (an opaque position: a replay id)."""
    mark = session.get(Watermark, source)
    if mark is None:
        session.add(Watermark(source=source, value=value))
    else:
        mark.value = value


def drop_watermark(session: Session, source: str) -> None:
    """Forget the watermark of `source` (the next read starts where the source says)."""
    mark = session.get(Watermark, source)
    if mark is not None:
        session.delete(mark)
