"""The change-event log the Pub/Sub service reads: one CDC event per change, same transaction,
72-hour retention on the sandbox clock."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.salesforce.errors import RecordErrors


@pytest.fixture()
def sb(tmp_path: Path) -> SalesforceSandbox:
    return SalesforceSandbox(db_path=tmp_path / "org.db")


def _order(sb: SalesforceSandbox) -> str:
    account = sb.org.create("Account", {"Name": "Chez Paul"})
    return sb.org.create("Order", {"AccountId": account, "EffectiveDate": "2024-05-01"})


def test_create_update_delete_each_append_one_event(sb: SalesforceSandbox) -> None:
    order_id = _order(sb)
    sb.org.update("Order", order_id, {"Chronopost_Status__c": "in_transit", "Description": None})
    sb.org.delete("Order", order_id)
    events = sb.read_changes("/data/OrderChangeEvent", None, 10)
    assert [e[2]["ChangeEventHeader"]["changeType"] for e in events] == [
        "CREATE",
        "UPDATE",
        "DELETE",
    ]
    created, updated, _ = (e[2] for e in events)
    assert created["ChangeEventHeader"]["recordIds"] == [order_id]
    assert (
        created["EffectiveDate"] == "2024-05-01"
        and created["ChangeEventHeader"]["changedFields"] == []
    )
    header = updated["ChangeEventHeader"]
    assert header["changedFields"] == ["Chronopost_Status__c", "LastModifiedDate"]
    assert updated["Chronopost_Status__c"] == "in_transit"
    assert header["entityName"] == "Order" and header["commitUser"] == sb.user_id
    assert header["changeOrigin"] == "com/salesforce/api/rest/61.0"
    assert len(header["transactionKey"]) == 36 and header["sequenceNumber"] == 1
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_failed_write_leaves_neither_record_nor_event(sb: SalesforceSandbox) -> None:
    order_id = _order(sb)
    before = sb.latest_replay_id("/data/OrderChangeEvent")
    with pytest.raises(RecordErrors):
        sb.org.update("Order", order_id, {"Chronopost_Status__c": "lost"})
    assert sb.latest_replay_id("/data/OrderChangeEvent") == before


def test_events_live_in_the_agreed_table(sb: SalesforceSandbox, tmp_path: Path) -> None:
    _order(sb)
    with sqlite3.connect(tmp_path / "org.db") as conn:
        topics = [r[0] for r in conn.execute("SELECT topic FROM change_event ORDER BY replay_id")]
    assert topics == ["/data/AccountChangeEvent", "/data/OrderChangeEvent"]


def test_custom_object_topic_drops_the_c_suffix(sb: SalesforceSandbox) -> None:
    sb.org.create("Chronopost_Tracking_Event__c", {"Event_Key__c": "k1"})
    assert "/data/Chronopost_Tracking_Event__ChangeEvent" in sb.topics()
    [(_, _, payload)] = sb.read_changes("/data/Chronopost_Tracking_Event__ChangeEvent", None, 5)
    assert payload["ChangeEventHeader"]["entityName"] == "Chronopost_Tracking_Event__c"


def test_events_older_than_72_hours_are_not_served(sb: SalesforceSandbox) -> None:
    _order(sb)
    first = sb.earliest_replay_id("/data/OrderChangeEvent")
    sb.advance_clock(dt.timedelta(hours=71))
    assert sb.earliest_replay_id("/data/OrderChangeEvent") == first
    sb.advance_clock(dt.timedelta(hours=2))
    assert sb.read_changes("/data/OrderChangeEvent", None, 10) == []
    assert sb.latest_replay_id("/data/OrderChangeEvent") is None
    second = _order(sb)
    assert sb.read_changes("/data/OrderChangeEvent", None, 10)[0][2]["ChangeEventHeader"][
        "recordIds"
    ] == [second]


def test_read_changes_resumes_after_a_replay_id(sb: SalesforceSandbox) -> None:
    for _ in range(3):
        _order(sb)
    events = sb.read_changes("/data/OrderChangeEvent", None, 10)
    later = sb.read_changes("/data/OrderChangeEvent", events[0][0], 1)
    assert [e[0] for e in later] == [events[1][0]]


def test_describe_and_token_helpers(sb: SalesforceSandbox) -> None:
    names = [f["name"] for f in sb.describe("Shipment")["fields"]]
    assert "Order__c" in names and "TrackingNumber" in names
    assert sb.validate_token("nope") is False
    assert sb.org_id.startswith("00D") and len(sb.org_id) == 18


def test_item_changes_roll_up_into_order_total(sb: SalesforceSandbox) -> None:
    order_id = _order(sb)
    sb.org.create("OrderItem", {"OrderId": order_id, "Quantity": 2, "UnitPrice": 10.5})
    [order] = sb.records("Order")
    assert order["TotalAmount"] == 21.0
