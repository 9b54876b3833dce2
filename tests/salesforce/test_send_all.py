"""`send_all`: collections and queries five to a Composite call, against the sandbox org."""

from __future__ import annotations

from chronoforce.domain.errors import RateLimitedError
from chronoforce.salesforce.client import (
    CollectionRequest,
    QueryRequest,
    RecordResult,
    composite_calls,
)


def _status(ids: list[str], value: str) -> CollectionRequest:
    records = [{"Id": i, "Chronopost_Label_Status__c": value} for i in ids]
    return CollectionRequest("update", "Order", records)


def test_seven_collections_and_a_query_cost_two_calls_and_answer_in_order(org, client, orders):
    ids = orders(client, 14)
    org.sandbox.reset_stats()
    before = client.api_calls()
    requests = [_status(ids[2 * k : 2 * k + 2], "Created") for k in range(7)]
    requests.insert(3, QueryRequest("SELECT Id FROM Order WHERE Id = '" + ids[0] + "'"))
    outcomes = client.send_all(requests)
    assert client.api_calls() - before == 2 == composite_calls(len(requests))
    assert org.sandbox.stats()["composite"] == 2 and org.sandbox.stats()["collections"] == 0
    # In request order: the query (4th) sees the first three collections' writes.
    assert [r["Id"] for r in outcomes[3]] == [ids[0]]  # type: ignore[index]
    results = [o for k, o in enumerate(outcomes) if k != 3]
    assert [r.id for rs in results for r in rs] == ids  # type: ignore[union-attr]
    assert all(isinstance(r, RecordResult) and r.success for rs in results for r in rs)  # type: ignore[union-attr]
    assert {o["Chronopost_Label_Status__c"] for o in org.sandbox.records("Order")} == {"Created"}


def test_a_lone_request_is_a_call_of_its_own(org, client, orders):
    ids = orders(client, 2)
    org.sandbox.reset_stats()
    (outcome,) = client.send_all([_status(ids, "Created")])
    assert all(r.success for r in outcome)  # type: ignore[union-attr]
    assert org.sandbox.stats()["collections"] == 1 and org.sandbox.stats()["composite"] == 0


def test_a_collection_refused_as_a_whole_is_split_and_the_others_commit(org, client, orders):
    ids = orders(client, 4)
    bad = CollectionRequest(
        "update",
        "Order",
        [
            {"Id": ids[2], "Chronopost_Label_Status__c": "Created"},
            {"Id": ids[3], "No_Such_Field__c": "x"},
        ],
    )
    first, second = client.send_all([_status(ids[:2], "Created"), bad])
    assert all(r.success for r in first)  # type: ignore[union-attr]
    ok, refused = second  # type: ignore[misc]
    assert ok.success and not refused.success
    assert refused.errors[0].status_code == "INVALID_FIELD"
    created = {
        o["Id"]
        for o in org.sandbox.records("Order")
        if o.get("Chronopost_Label_Status__c") == "Created"
    }
    assert created == set(ids[:3])


def test_a_spent_budget_refuses_the_call_and_nothing_after_it_is_sent(org, client, orders):
    ids = orders(client, 12)
    org.sandbox.set_api_budget(used=org.sandbox.api_max)
    outcomes = client.send_all([_status([i], "Created") for i in ids])
    assert len(outcomes) == 12 and all(isinstance(o, RateLimitedError) for o in outcomes)
    statuses = {o.get("Chronopost_Label_Status__c") for o in org.sandbox.records("Order")}
    assert statuses == {"Requested"}


def test_a_call_refused_after_an_earlier_one_went_keeps_the_earlier_answers(org, client, orders):
    ids = orders(client, 7)
    org.sandbox.set_api_budget(used=org.sandbox.api_max - 1)  # room for one call
    outcomes = client.send_all([_status([i], "Created") for i in ids])
    assert all(isinstance(o, list) and o[0].success for o in outcomes[:5])
    assert all(isinstance(o, RateLimitedError) for o in outcomes[5:])
    created = [o["Id"] for o in org.sandbox.records("Order")
               if o.get("Chronopost_Label_Status__c") == "Created"]  # fmt: skip
    assert sorted(created) == sorted(ids[:5])
