"""The console's read models on SQLite and PostgreSQL: search and the overview counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Parcel, Shipment
from chronoforce.web.console import queries

NOW = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    with s.session() as session:
        for n, (company, contact) in enumerate(
            [("Müller SAS", "Louis García"), ("Boulangerie Dupont", "Anne Dupont")], start=1
        ):
            shipment = Shipment(
                sf_object="Order",
                sf_id=f"8018d000000000{n}AAA",
                order_number=f"0000000{n}",
                state="labeled",
                status="in_transit",
                source={
                    "record": {
                        "Id": f"8018d000000000{n}AAA",
                        "OrderNumber": f"0000000{n}",
                        "Account": {"Name": company},
                        "ShipToContact": {"Name": contact, "Phone": "+33 6 00 00 00 01"},
                    }
                },
                created_at=NOW - dt.timedelta(hours=n),
            )
            session.add(shipment)
            session.flush()
            session.add(
                Parcel(shipment_id=shipment.id, skybill_number=f"XR00000000{n}FR", weight_kg=1)
            )
        session.add(Shipment(sf_object="Order", sf_id="8018d0000000009AAA", created_at=NOW))
        session.add(
            ExceptionRow(
                key="k", operation="label.create", kind="timeout", code="CARRIER_TIMEOUT",
                message="no answer", last_seen=NOW - dt.timedelta(minutes=5),
            )
        )  # fmt: skip
        session.add(
            Outbox(
                dedup_key="o1", sf_object="Order", operation="update", payload={},
                state="sent", sent_at=NOW - dt.timedelta(hours=2),
            )
        )  # fmt: skip
    yield s
    s.dispose()


def _orders(rows: list[Shipment]) -> list[str]:
    return sorted(r.order_number for r in rows)


def test_search_by_order_number_skybill_record_id_and_customer(store: Store) -> None:
    with store.session() as session:
        assert _orders(queries.search_shipments(session, "00000002")) == ["00000002"]
        assert _orders(queries.search_shipments(session, "xr000000001fr")) == ["00000001"]
        assert _orders(queries.search_shipments(session, "8018d0000000002AAA")) == ["00000002"]
        # Customer names, accents included (the record is stored as JSON with escapes).
        assert _orders(queries.search_shipments(session, "müller")) == ["00000001"]
        assert _orders(queries.search_shipments(session, "García")) == ["00000001"]
        assert _orders(queries.search_shipments(session, "dupont")) == ["00000002"]
        assert queries.search_shipments(session, "nobody-like-this") == []
        for pattern in ("%", "_", "\\"):  # typed characters, never LIKE wildcards
            assert queries.search_shipments(session, pattern) == [], pattern
        assert len(queries.search_shipments(session, "")) == 3
        story = queries.shipment_story(session, 1, MappingConfig.from_settings({}))
        assert story is not None and story.customer == "Müller SAS · Louis García"


def test_overview_counts_today_health_and_writes_per_hour(store: Store) -> None:
    with store.session() as session:
        view = queries.overview(session, NOW)
    assert view.shipments_today == 3
    assert dict(view.by_status) == {"in_transit": 2, "pending": 1}
    assert view.due_labels == 1
    assert dict(view.exceptions_open) == {"timeout": 1}
    carrier, salesforce = view.health
    assert carrier.state == "degraded" and "CARRIER_TIMEOUT" in carrier.detail
    assert salesforce.state == "ok"
    assert len(view.writes_per_hour) == queries.CHART_HOURS
    assert dict(view.writes_per_hour)["13:00"] == 1
    assert view.writes_per_hour[-1][0] == "15:00"
