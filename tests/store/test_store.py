"""The store on SQLite and PostgreSQL: migrations, and constraints that make double work impossible."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from chronoforce.store.db import Store, current_revision, head_revision
from chronoforce.store.models import Event, ExceptionRow, Outbox, Parcel, Shipment, Watermark


@pytest.fixture()
def store(db_url: str):
    s = Store(db_url)
    yield s
    s.dispose()


def test_migrations_create_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"shipment", "parcel", "event", "exception", "outbox", "watermark"} <= tables
    assert current_revision(store.engine) == head_revision()


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    Store(db_url).dispose()
    s = Store(db_url)
    assert current_revision(s.engine) == head_revision()
    s.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    s = Store(sqlite_url)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.dispose()


def test_one_shipment_per_record_and_intent(store: Store) -> None:
    with store.session() as session:
        session.add(Shipment(sf_object="Order", sf_id="801000000000001AAA", intent="outbound"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Shipment(sf_object="Order", sf_id="801000000000001AAA", intent="outbound"))
    with store.session() as session:  # a return of the same order is another intent
        session.add(Shipment(sf_object="Order", sf_id="801000000000001AAA", intent="return"))
        assert session.scalar(select(Shipment).where(Shipment.intent == "return")) is not None


def test_skybill_numbers_are_unique(store: Store) -> None:
    with store.session() as session:
        shipment = Shipment(sf_object="Order", sf_id="801000000000002AAA")
        session.add(shipment)
        session.flush()
        session.add(
            Parcel(
                shipment_id=shipment.id, skybill_number="XY123456789FR", weight_kg=Decimal("1.5")
            )
        )
    with pytest.raises(IntegrityError), store.session() as session:
        other = Shipment(sf_object="Order", sf_id="801000000000003AAA")
        session.add(other)
        session.flush()
        session.add(Parcel(shipment_id=other.id, skybill_number="XY123456789FR", weight_kg=1))


def test_an_event_is_stored_once(store: Store) -> None:
    at = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    with store.session() as session:
        session.add(Event(skybill_number="XY123456789FR", code="D", event_time=at))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Event(skybill_number="XY123456789FR", code="D", event_time=at))
    with store.session() as session:
        stored = session.scalar(select(Event))
        assert stored is not None and stored.event_time.replace(tzinfo=dt.UTC) == at


def test_outbox_and_exception_keys_are_unique(store: Store) -> None:
    with store.session() as session:
        session.add(
            Outbox(
                dedup_key="Order:801:abc", sf_object="Order", operation="update", payload={"a": 1}
            )
        )
        session.add(
            ExceptionRow(
                key="801:label:X", operation="label", kind="address", code="X", message="m"
            )
        )
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(
            Outbox(dedup_key="Order:801:abc", sf_object="Order", operation="update", payload={})
        )
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(
            ExceptionRow(key="801:label:X", operation="label", kind="address", code="X", message="")
        )


def test_watermark_round_trip(store: Store) -> None:
    with store.session() as session:
        session.add(Watermark(source="Order", value="2026-11-24T09:00:00.000Z"))
    with store.session() as session:
        mark = session.get(Watermark, "Order")
        assert mark is not None
        mark.value = "2026-11-24T10:00:00.000Z"
    with store.session() as session:
        assert session.get(Watermark, "Order").value == "2026-11-24T10:00:00.000Z"  # type: ignore[union-attr]
