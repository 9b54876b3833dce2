"""The client against the sandbox org: collections per record, call counts, files, injection."""

from __future__ import annotations

import math

import pytest

from chronoforce.domain.errors import SalesforceUnavailableError, SalesforceValidationError
from chronoforce.salesforce.soql import SoqlInjectionError


@pytest.mark.parametrize("count", [1, 200, 450])
def test_n_updates_cost_ceil_n_over_200_collection_calls(org, client, count, orders):
    ids = orders(client, count)
    before = client.calls().get("collection", 0)
    org.sandbox.reset_stats()
    results = client.collection(
        "update", "Order", [{"Id": i, "Chronopost_Label_Status__c": "Created"} for i in ids]
    )
    assert [r.id for r in results] == ids and all(r.success for r in results)
    assert client.calls()["collection"] - before == math.ceil(count / 200)
    assert org.sandbox.stats()["collections"] == math.ceil(count / 200)  # as the org counted
    statuses = {r["Chronopost_Label_Status__c"] for r in org.sandbox.records("Order")}
    assert statuses == {"Created"}


def test_results_come_back_in_input_order_with_the_refused_field_named(client, orders):
    ids = orders(client, 3)
    results = client.collection(
        "update",
        "Order",
        [
            {"Id": ids[0], "Chronopost_Label_Status__c": "Created"},
            {"Id": ids[1], "Chronopost_Label_Status__c": "Shipped to the moon"},
            {"Id": ids[2], "Chronopost_Tracking_Number__c": "XY123456789FR"},
        ],
    )
    assert [r.success for r in results] == [True, False, True]
    refused = results[1]
    assert refused.errors[0].status_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert refused.errors[0].fields == ("Chronopost_Label_Status__c",)
    error = refused.error(record_id=ids[1])
    assert (
        isinstance(error, SalesforceValidationError) and error.field == "Chronopost_Label_Status__c"
    )
    assert not refused.retryable


def test_locked_rows_fail_alone_and_are_retryable(org, client, orders):
    ids = orders(client, 40)
    org.sandbox.set_faults(lock_row_share=0.5)
    results = client.collection(
        "update", "Order", [{"Id": i, "Chronopost_Label_Status__c": "Created"} for i in ids]
    )
    locked = [r for r in results if not r.success]
    assert 0 < len(locked) < len(ids)
    assert {e.status_code for r in locked for e in r.errors} == {"UNABLE_TO_LOCK_ROW"}
    assert all(r.retryable and isinstance(r.error(), SalesforceUnavailableError) for r in locked)
    org.sandbox.set_faults(lock_row_share=0.0)
    retry = [ids[n] for n, r in enumerate(results) if not r.success]
    again = client.collection(
        "update", "Order", [{"Id": i, "Chronopost_Label_Status__c": "Created"} for i in retry]
    )
    assert all(r.success for r in again)


def test_upsert_by_external_id_creates_then_updates(org, client, orders):
    (order,) = orders(client, 1)
    event = {"Event_Key__c": "XY1|DC|2024-05-01T10:00:00Z", "Order__c": order, "Code__c": "DC"}
    first = client.collection(
        "upsert", "Chronopost_Tracking_Event__c", [event], external_id_field="Event_Key__c"
    )
    second = client.collection(
        "upsert",
        "Chronopost_Tracking_Event__c",
        [{**event, "Code__c": "DD"}],
        external_id_field="Event_Key__c",
    )
    assert first[0].success and second[0].success and first[0].id == second[0].id
    (row,) = org.sandbox.records("Chronopost_Tracking_Event__c")
    assert row["Code__c"] == "DD"


def test_label_file_is_uploaded_once_and_linked_to_order_and_shipment(org, client, orders):
    (order,) = orders(client, 1)
    (result,) = client.collection(
        "create", "Shipment", [{"ShipToName": "Marie Curie", "Order__c": order}]
    )
    shipment = result.id
    pdf = b"%PDF-1.4 label for the test\n%%EOF"
    version_id, document_id = client.upload_file("Label 00000001", "label.pdf", pdf, order)
    assert version_id.startswith("068") and document_id.startswith("069")
    results = client.link_file(document_id, [shipment])
    assert all(r.success for r in results)
    linked = {
        r["LinkedEntityId"]
        for r in org.sandbox.records("ContentDocumentLink")
        if r["ContentDocumentId"] == document_id
    }
    assert {order, shipment} <= linked
    assert client.calls()["file"] == 1


def test_query_iter_streams_pages_of_the_requested_size(client, orders):
    orders(client, 450)
    before = client.calls().get("query", 0)
    ids = [r["Id"] for r in client.query_iter("SELECT Id FROM Order", batch_size=200)]
    assert len(ids) == len(set(ids)) == 450
    assert client.calls()["query"] - before == 3


def test_get_and_cached_describe(client, orders):
    (order,) = orders(client, 1)
    record = client.get("Order", order, ["OrderNumber", "Chronopost_Weight_Kg__c"])
    assert record["Chronopost_Weight_Kg__c"] == 1.5
    first = client.describe("Order")
    assert client.describe("Order") is first
    assert client.calls()["describe"] == 1
    assert any(f["name"] == "Chronopost_Ship__c" for f in first["fields"])


def test_injection_through_an_id_is_refused_before_any_call(client):
    before = dict(client.calls())
    with pytest.raises(SoqlInjectionError):
        client.get("Order", "x' OR Name != '")
    with pytest.raises(SoqlInjectionError):
        client.link_file("069000000000001AAA", ["001' OR Id != '"])
    assert client.calls() == before
