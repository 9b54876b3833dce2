"""Tracking sync: carrier events become one status on Shipment, Order, events and Cases."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from chronoforce.domain.models import TrackingEvent
from chronoforce.pipeline import tracking
from chronoforce.pipeline.tracking import Tracking, TrackingConfig
from chronoforce.store.db import Store
from chronoforce.store.models import Event, Parcel, Shipment, TrackingCase

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

# The agreed scenarios: codes in order (docs/sandbox-chronopost.md); final normalized status.
SCENARIOS: dict[str, tuple[list[str], str]] = {
    "delivered": (["DC", "DB", "DY", "SC", "TS", "SD", "TA", "D"], "delivered"),
    "absent": (["DC", "DB", "DY", "SC", "TS", "SD", "TA", "P", "TA", "D"], "delivered"),
    "relay": (["DC", "DB", "DY", "SC", "TS", "SD", "RB", "MD", "RI"], "delivered"),
    "refused": (["DC", "DB", "DY", "SC", "TS", "SD", "TA", "PR", "R"], "returned"),
    "address_incorrect": (["DC", "DB", "DY", "SC", "TS", "SD", "TA", "IN", "R"], "returned"),
    "damaged": (["DC", "DB", "DY", "SC", "TS", "KC", "R"], "returned"),
    "customs": (["DC", "DB", "DY", "SC", "TS", "DO"], "exception"),
    "anomaly": (["DC", "DB", "DY", "SC", "TS", "PT"], "exception"),
    "return_to_sender": (["DC", "DB", "DY", "SC", "TS", "SD", "TA", "N", "R"], "returned"),
    "uncollected": (["DC", "DB", "DY", "SC", "TS", "SD", "RB", "MD", "IP", "FI", "R"], "returned"),
    "delivered_damaged": (["DC", "PC", "SC", "TS", "SD", "TA", "DD"], "delivered"),
}
EXCEPTION_SCENARIOS = [
    "refused",
    "address_incorrect",
    "damaged",
    "customs",
    "anomaly",
    "return_to_sender",
    "uncollected",
]
# The first event of each that opens a Case (Case rules: pipeline/tracking/cases.py).
FIRST_CASE_CODES = {"PR", "IN", "KC", "DO", "PT", "R", "FI"}


# --- a Salesforce org in memory, speaking the port the outbox uses ------------------------------


@dataclass
class Result:
    id: str | None
    success: bool
    errors: Sequence[Any] = ()


@dataclass
class Org:
    """Records by type and id, upserts by external id, and a count of API calls."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def query_iter(self, soql: str) -> Iterator[dict[str, Any]]:
        self.calls["query"] += 1
        return iter(())

    def collection(
        self,
        op: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        external_id_field: str | None = None,
        all_or_none: bool = False,
    ) -> list[Result]:
        assert len(records) <= 200
        self.calls[f"{op}:{sobject}"] += 1
        table = self.records.setdefault(sobject, {})
        results = []
        for record in records:
            fields = {k: v for k, v in record.items() if k != "attributes"}
            if op == "update":
                table.setdefault(fields["Id"], {}).update(fields)
                results.append(Result(fields["Id"], True))
                continue
            if op == "upsert":
                key = fields[external_id_field or ""]
                found = next((i for i, r in table.items() if r.get(external_id_field) == key), None)
                if found:
                    table[found].update(fields)
                    results.append(Result(found, True))
                    continue
            new_id = f"{sobject[:3]}{next(self.ids):015d}"
            table[new_id] = {"Id": new_id, **fields}
            results.append(Result(new_id, True))
        return results

    def of(self, sobject: str) -> list[dict[str, Any]]:
        return list(self.records.get(sobject, {}).values())

    def writes(self) -> int:
        return sum(n for k, n in self.calls.items() if k != "query")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now


def labeled(store: Store, n: int, *, parcels: int = 1, prefix: str = "XY") -> list[int]:
    """`n` labeled shipments of Orders with a linked Shipment record, as labels.py leaves them."""
    ids = []
    with store.session() as session:
        for i in range(n):
            order_id = f"801{i:015d}"
            shipment = Shipment(
                sf_object="Order",
                sf_id=order_id,
                order_number=f"00{i}",
                state="labeled",
                status="label_created",
                source={"shipment_id": f"0OB{i:015d}"},
                next_poll_at=T0,
            )
            session.add(shipment)
            session.flush()
            for p in range(parcels):
                session.add(
                    Parcel(
                        shipment_id=shipment.id,
                        position=p + 1,
                        skybill_number=f"{prefix}{i:07d}{p}FR",
                        weight_kg=Decimal("1.0"),
                    )
                )
            ids.append(shipment.id)
    return ids


def event(skybill: str, code: str, hours: float) -> TrackingEvent:
    return TrackingEvent(
        skybill_number=skybill,
        code=code,
        label=f"label {code}",
        time=T0 + dt.timedelta(hours=hours),
        place="PARIS",
        postal_code="75001",
    )


def scenario_events(skybill: str, name: str) -> list[TrackingEvent]:
    return [event(skybill, code, 3 * i) for i, code in enumerate(SCENARIOS[name][0])]


def sync(store: Store, org: Org, clock: Clock | None = None) -> None:
    tracking.flush(store, org, now=clock or Clock())


# --- ingestion --------------------------------------------------------------------------------


def test_delivered_parcel_reaches_delivered_on_shipment_order_and_event_records(
    store: Store,
) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, TrackingConfig(order_status_map={"delivered": "Delivered"}), now=Clock())
    t.ingest(scenario_events("XY00000000FR", "delivered"))
    sync(store, org)

    (shipment,) = org.of("Shipment")
    assert shipment["Chronopost_Status__c"] == "delivered"
    assert shipment["Chronopost_Last_Event_Code__c"] == "D"
    assert shipment["Status"] == "Delivered"
    assert shipment["ActualDeliveryDate"] == "2026-03-03T05:00:00Z"
    (order,) = org.of("Order")
    assert order["Chronopost_Status__c"] == "delivered" and order["Status"] == "Delivered"
    events = org.of("Chronopost_Tracking_Event__c")
    assert [e["Code__c"] for e in sorted(events, key=lambda e: e["Event_Time__c"])] == SCENARIOS[
        "delivered"
    ][0]
    assert events[0]["Event_Key__c"] == "XY00000000FR|DC|2026-03-02T08:00:00Z"
    assert {e["Order__c"] for e in events} == {"801000000000000000"}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_reaches_its_normalized_status(store: Store, name: str) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    for e in scenario_events("XY00000000FR", name):  # one event at a time, as polls see them
        t.ingest([e])
        sync(store, org)
    assert org.of("Shipment")[0]["Chronopost_Status__c"] == SCENARIOS[name][1]
    assert org.of("Order")[0]["Chronopost_Status__c"] == SCENARIOS[name][1]
    assert len(org.of("Chronopost_Tracking_Event__c")) == len(SCENARIOS[name][0])


def test_order_status_is_left_alone_without_a_mapping(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    Tracking(store, now=Clock()).ingest(scenario_events("XY00000000FR", "delivered"))
    sync(store, org)
    assert "Status" not in org.of("Order")[0]


def test_replayed_events_are_stored_once_and_write_nothing(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    events = scenario_events("XY00000000FR", "delivered")[:4]
    first = t.ingest(events)
    sync(store, org)
    calls = org.writes()
    again = t.ingest(events)
    sync(store, org)
    assert (first.new_events, again.new_events, again.changed) == (4, 0, [])
    assert org.writes() == calls
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 4


def test_same_instant_in_another_time_zone_is_the_same_event(store: Store) -> None:
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    utc_event = event("XY00000000FR", "DC", 0)
    paris = dt.timezone(dt.timedelta(hours=1))
    t.ingest([utc_event])
    report = t.ingest([TrackingEvent("XY00000000FR", "DC", "x", utc_event.time.astimezone(paris))])
    assert report.new_events == 0


def test_events_of_unknown_skybills_are_kept_but_change_nothing(store: Store) -> None:
    org = Org()
    report = Tracking(store, now=Clock()).ingest([event("ZZ99999999FR", "DC", 0)])
    sync(store, org)
    assert (report.new_events, report.unknown_skybills, org.writes()) == (1, 1, 0)


def test_shipment_with_two_parcels_is_delivered_only_when_both_are(store: Store) -> None:
    labeled(store, 1, parcels=2)
    t = Tracking(store, now=Clock())
    t.ingest(scenario_events("XY00000000FR", "delivered"))
    t.ingest(scenario_events("XY00000001FR", "delivered")[:5])
    with store.session() as session:
        assert session.scalar(select(Shipment.status)) == "in_transit"
    t.ingest(scenario_events("XY00000001FR", "delivered"))
    with store.session() as session:
        assert session.scalar(select(Shipment.status)) == "delivered"


# --- Cases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXCEPTION_SCENARIOS)
def test_exception_scenarios_open_exactly_one_case_and_update_it(store: Store, name: str) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    for e in scenario_events("XY00000000FR", name):
        t.ingest([e])
        sync(store, org)
    (case,) = org.of("Case")
    assert case["Origin"] == "Chronopost" and case["Priority"] == "High"
    assert case["Chronopost_Order__c"] == "801000000000000000"
    assert case["Chronopost_Shipment__c"] == "0OB000000000000000"
    assert case["Chronopost_Tracking_Number__c"] == "XY00000000FR"
    assert case["Chronopost_Status__c"] == SCENARIOS[name][1]
    codes = SCENARIOS[name][0]
    first_bad = next(i for i, c in enumerate(codes) if c in FIRST_CASE_CODES)
    comments = org.of("CaseComment")
    assert len(comments) == len(codes) - first_bad - 1  # one per later status change
    assert all(c["ParentId"] == case["Id"] for c in comments)


def test_case_updates_decided_before_the_case_exists_are_sent_once_it_does(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    events = scenario_events("XY00000000FR", "refused")
    for e in events:  # PR, R both before the first flush
        t.ingest([e])
    sync(store, org)
    (case,) = org.of("Case")
    assert case["Status"] == "Working" and case["Chronopost_Status__c"] == "returned"
    assert case["Subject"].startswith("Chronopost exception (refused): order")
    assert [c["CommentBody"].split()[1] for c in org.of("CaseComment")] == ["R"]


def test_delivery_after_an_exception_comments_and_closes_the_case(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    codes = ["DC", "DB", "TS", "DO", "TS", "TA", "D"]  # held at customs, then released
    for i, code in enumerate(codes):
        t.ingest([event("XY00000000FR", code, i)])
        sync(store, org)
    (case,) = org.of("Case")
    assert case["Status"] == "Closed"
    assert org.of("CaseComment")[-1]["CommentBody"].startswith("Chronopost D ")
    with store.session() as session:
        assert session.scalar(select(TrackingCase.state)) == "closed"


def test_an_exception_reported_after_delivery_keeps_delivered_and_the_case_closed(
    store: Store,
) -> None:
    """domain/status.py: a terminal status is never undone by a later event."""
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    for i, code in enumerate(["DC", "DO", "D", "AV"]):
        t.ingest([event("XY00000000FR", code, i)])
        sync(store, org)
    (case,) = org.of("Case")
    assert case["Status"] == "Closed"
    (shipment,) = org.of("Shipment")
    assert shipment["Chronopost_Status__c"] == "delivered"


def test_a_parcel_delivered_damaged_opens_a_case_that_stays_open(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    Tracking(store, now=Clock()).ingest(scenario_events("XY00000000FR", "delivered_damaged"))
    sync(store, org)
    (case,) = org.of("Case")
    assert case["Chronopost_Status__c"] == "delivered" and case["Status"] == "New"
    assert case["Subject"].startswith("Chronopost delivered (delivered damaged): order")
    assert "(delivered_damaged)" in case["Description"]


@pytest.mark.parametrize("name", ["absent", "relay", "delivered"])
def test_an_absent_recipient_or_a_relay_pickup_opens_no_case(store: Store, name: str) -> None:
    org = Org()
    labeled(store, 1)
    t = Tracking(store, now=Clock())
    for e in scenario_events("XY00000000FR", name):
        t.ingest([e])
        sync(store, org)
    assert org.of("Case") == []


def test_cases_can_be_turned_off(store: Store) -> None:
    org = Org()
    labeled(store, 1)
    config = TrackingConfig.model_validate({"case": {"enabled": False}})
    Tracking(store, config, now=Clock()).ingest(scenario_events("XY00000000FR", "anomaly"))
    sync(store, org)
    assert org.of("Case") == [] and org.of("Shipment")[0]["Chronopost_Status__c"] == "exception"


# (Salesforce call counts for 1,000 parcels: tests/pipeline/test_tracking_e2e.py, on the sandbox.)
