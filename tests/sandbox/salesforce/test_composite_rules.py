"""`/composite` enforces what Salesforce documents for the client's sObject Collections inside it.

REST API guide, "Send Multiple Requests Using Composite" (resources_composite_composite_post.htm,
242.0) and REAL-ORG-FACTS.md §2.1/§2.2: ≤25 subrequests, of which ≤5 sObject Collections or
query operations; collections inside from API 43.0 (upsert form 46.0); no sObject Blob Get; the
whole call is one API request. The refusals' codes are our choice (docs/sandbox-salesforce.md).
Everything runs over HTTPS on loopback.
"""

from __future__ import annotations

import base64
from typing import Any

import requests

from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_USERNAME, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles

from .conftest import API, FAST_STOP, data_url

Sub = dict[str, Any]


def sub(method: str, path: str, ref: str, body: Any = None, version: str = API) -> Sub:
    entry: Sub = {"method": method, "url": f"/services/data/v{version}/{path}", "referenceId": ref}
    if body is not None:
        entry["body"] = body
    return entry


def accounts(*names: str) -> dict[str, Any]:
    return {"records": [{"attributes": {"type": "Account"}, "Name": n} for n in names]}


def create_collection(ref: str, *names: str, version: str = API) -> Sub:
    return sub("POST", "composite/sobjects", ref, accounts(*names), version)


def query(ref: str, soql: str = "SELECT+Id+FROM+Account", resource: str = "query") -> Sub:
    return sub("GET", f"{resource}?q={soql}", ref)


def composite(
    api: requests.Session, base_url: str, entries: list[Sub], all_or_none: bool = False
) -> requests.Response:
    body = {"allOrNone": all_or_none, "compositeRequest": entries}
    return api.post(data_url(base_url, "composite"), json=body)


def used(response: requests.Response) -> int:
    return int(response.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0])


def names(sb: SalesforceSandbox) -> list[str]:
    return sorted(str(r["Name"]) for r in sb.records("Account"))


def test_six_collection_or_query_subrequests_refuse_the_whole_call(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    entries = [
        sub("POST", "sobjects/Account", "single", {"Name": "Single"}),
        create_collection("c1", "A"),
        create_collection("c2", "B"),
        create_collection("c3", "C"),
        query("q"),
        query("qa", resource="queryAll"),
        sub("GET", "query/01gSANDBOX-2000", "more"),  # query more counts too; never runs here
    ]
    before = sb.api_used
    refused = composite(api, base_url, entries)
    assert refused.status_code == 400
    [error] = refused.json()
    assert error["errorCode"] == "LIMIT_EXCEEDED"
    assert "at most 5 sObject Collections or query subrequests, got 6" in error["message"]
    assert sb.records("Account") == [], "nothing of a refused composite call is committed"
    assert sb.api_used == before + 1 and used(refused) == before + 1, "charged as one call"


def test_a_url_that_is_one_whole_reference_is_counted_once_resolved(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    hidden = f"/services/data/v{API}/query?q=SELECT+Id+FROM+Account"
    entries = [
        sub("POST", "sobjects/Account", "acct", {"Name": "Holder", "Description": hidden}),
        sub("GET", "sobjects/Account/@{acct.id}?fields=Description", "read"),
        *[create_collection(f"c{n}", f"C{n}") for n in range(5)],
        {"method": "GET", "url": "@{read.Description}", "referenceId": "sixth"},
    ]
    refused = composite(api, base_url, entries)
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert sb.records("Account") == [], "what ran before the sixth is rolled back"


def test_five_collection_or_query_subrequests_are_accepted_and_each_answers_per_record(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    update = {
        "records": [
            {"attributes": {"type": "Account"}, "id": "@{created[0].id}", "Name": "Renamed"},
        ]
    }
    event = {"attributes": {"type": "Chronopost_Tracking_Event__c"}, "Code__c": "D"}
    upsert = {"records": [{**event, "Event_Key__c": "K1"}, {**event, "Event_Key__c": "K2"}]}
    entries = [
        create_collection("created", "First", "Second"),
        sub("PATCH", "composite/sobjects", "updated", update),
        sub("PATCH", "composite/sobjects/Chronopost_Tracking_Event__c/Event_Key__c", "up", upsert),
        query("q", "SELECT+Name+FROM+Account+ORDER+BY+Name"),
        query("qa", resource="queryAll"),
        sub("GET", "sobjects/Account/@{created[1].id}?fields=Name", "read"),
    ]
    response = composite(api, base_url, entries)
    assert response.status_code == 200
    answers = {r["referenceId"]: r for r in response.json()["compositeResponse"]}
    assert [r["httpStatusCode"] for r in answers.values()] == [200, 200, 200, 200, 200, 200]
    created = answers["created"]["body"]
    assert [r["success"] for r in created] == [True, True] and all(r["id"] for r in created)
    assert answers["updated"]["body"] == [{"id": created[0]["id"], "success": True, "errors": []}]
    assert [r["created"] for r in answers["up"]["body"]] == [True, True]
    assert [r["Name"] for r in answers["q"]["body"]["records"]] == ["Renamed", "Second"]
    assert answers["read"]["body"]["Name"] == "Second"
    assert names(sb) == ["Renamed", "Second"]
    keys = sorted(r["Event_Key__c"] for r in sb.records("Chronopost_Tracking_Event__c"))
    assert keys == ["K1", "K2"]


def test_twenty_five_subrequests_with_five_collections_pass_and_twenty_six_do_not(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    singles = [sub("POST", "sobjects/Account", f"s{n}", {"Name": f"S{n:02}"}) for n in range(20)]
    collections = [create_collection(f"c{n}", f"C{n}a", f"C{n}b") for n in range(5)]
    accepted = composite(api, base_url, singles + collections)
    assert accepted.status_code == 200
    codes = [r["httpStatusCode"] for r in accepted.json()["compositeResponse"]]
    assert codes == [201] * 20 + [200] * 5
    assert len(sb.records("Account")) == 30
    sb.reset()
    plain = [sub("POST", "sobjects/Account", f"p{n}", {"Name": f"P{n}"}) for n in range(25)]
    assert composite(api, base_url, plain).status_code == 200
    sb.reset()
    refused = composite(
        api, base_url, [*plain, sub("POST", "sobjects/Account", "x", {"Name": "X"})]
    )
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert sb.records("Account") == []


def test_an_oversized_collection_fails_alone_and_others_commit(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    too_many = create_collection("big", *[f"Big{n}" for n in range(201)])
    top_level = api.post(data_url(base_url, "composite/sobjects"), json=too_many["body"])
    entries = [create_collection("before", "Before"), too_many, create_collection("after", "After")]
    response = composite(api, base_url, entries)
    assert response.status_code == 200
    before, big, after = response.json()["compositeResponse"]
    assert (big["httpStatusCode"], big["body"]) == (top_level.status_code, top_level.json())
    assert big["httpStatusCode"] == 400 and big["body"][0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert before["httpStatusCode"] == after["httpStatusCode"] == 200
    assert names(sb) == ["After", "Before"]
    sb.reset()
    halted = composite(api, base_url, entries, all_or_none=True).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in halted] == [400, 400, 400]
    assert halted[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sb.records("Account") == [], "allOrNone rolls the earlier collection back"


def _unknown_field_answers(url: str, http: requests.Session) -> tuple[Any, Any]:
    body = {
        "records": [*accounts("Good")["records"], {**accounts("Bad")["records"][0], "Bogus__c": 1}]
    }
    top = http.post(data_url(url, "composite/sobjects"), json=body)
    entries = [sub("POST", "composite/sobjects", "bad", body)]
    [inside] = http.post(data_url(url, "composite"), json={"compositeRequest": entries}).json()[
        "compositeResponse"
    ]
    return (top.status_code, top.json()), (inside["httpStatusCode"], inside["body"])


def test_an_unknown_field_in_a_collection_subrequest_answers_as_the_top_level_collection(
    api: requests.Session, base_url: str, sb: SalesforceSandbox, tls: TlsFiles
) -> None:
    top, inside = _unknown_field_answers(base_url, api)
    assert inside == top
    assert inside[0] == 400 and inside[1][0]["errorCode"] == "INVALID_FIELD"
    assert sb.records("Account") == []
    per_record = SalesforceSandbox(unknown_field_in_collection="record")
    token = per_record.auth.issue(DEMO_USERNAME, DEMO_CLIENT_ID)
    with BackgroundServer(per_record.app, tls=tls, options=FAST_STOP) as server:
        http = requests.Session()
        http.verify, http.trust_env = str(tls.ca_cert), False
        http.headers["Authorization"] = f"Bearer {token}"
        with http:
            top, inside = _unknown_field_answers(server.url, http)
    assert inside[0] == top[0] == 200
    assert [r["success"] for r in inside[1]] == [r["success"] for r in top[1]] == [True, False]
    assert inside[1][1]["errors"] == top[1][1]["errors"]


def test_collections_below_api_43_are_refused_for_that_subrequest(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    event = {"attributes": {"type": "Chronopost_Tracking_Event__c"}, "Code__c": "D"}
    upsert_path = "composite/sobjects/Chronopost_Tracking_Event__c/Event_Key__c"
    entries = [
        create_collection("v42", "Old", version="42.0"),
        create_collection("v43", "New", version="43.0"),
        sub("PATCH", upsert_path, "u45", {"records": [{**event, "Event_Key__c": "E45"}]}, "45.0"),
        sub("PATCH", upsert_path, "u46", {"records": [{**event, "Event_Key__c": "E46"}]}, "46.0"),
        sub("POST", "sobjects/Account", "single42", {"Name": "Single"}, "42.0"),
    ]
    answers = composite(api, base_url, entries).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in answers] == [400, 200, 400, 200, 201]
    for refused, since in ((answers[0], "43.0"), (answers[2], "46.0")):
        [error] = refused["body"]
        assert error["errorCode"] == "INVALID_URL"
        assert f"from API version {since}" in error["message"]
    assert names(sb) == ["New", "Single"]
    assert [r["Event_Key__c"] for r in sb.records("Chronopost_Tracking_Event__c")] == ["E46"]


def test_the_whole_call_counts_once_however_many_collections_it_carries(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    first = api.get(data_url(base_url, "limits"))
    entries = [create_collection(f"c{n}", *[f"N{n}-{i}" for i in range(200)]) for n in range(5)]
    response = composite(api, base_url, entries)
    assert response.status_code == 200
    assert all(r["httpStatusCode"] == 200 for r in response.json()["compositeResponse"])
    assert len(sb.records("Account")) == 1000
    assert used(response) == used(first) + 1
    assert sb.stats()["composite"] == 1 and sb.stats()["collections"] == 0


def test_a_blob_get_inside_composite_is_refused_but_rows_by_external_id_are_not(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    file = {
        "Title": "label",
        "PathOnClient": "label.pdf",
        "VersionData": base64.b64encode(b"%PDF-1.4 label").decode(),
    }
    version_id = api.post(data_url(base_url, "sobjects/ContentVersion"), json=file).json()["id"]
    api.patch(
        data_url(base_url, "sobjects/Chronopost_Tracking_Event__c/Event_Key__c/K9"),
        json={"Code__c": "D"},
    ).raise_for_status()
    entries = [
        sub("GET", f"sobjects/ContentVersion/{version_id}/VersionData", "blob"),
        sub("GET", f"sobjects/ContentVersion/{version_id}?fields=Title", "meta"),
        sub("GET", "sobjects/Chronopost_Tracking_Event__c/Event_Key__c/K9", "byKey"),
        sub("POST", "sobjects/Account", "after", {"Name": "After"}),
    ]
    blob, meta, by_key, after = composite(api, base_url, entries).json()["compositeResponse"]
    assert blob["httpStatusCode"] == 400
    [error] = blob["body"]
    assert error["errorCode"] == "INVALID_URL" and "Blob Get is not supported" in error["message"]
    assert meta["httpStatusCode"] == 200 and meta["body"]["Title"] == "label"
    assert by_key["httpStatusCode"] == 200 and by_key["body"]["Event_Key__c"] == "K9"
    assert after["httpStatusCode"] == 201 and names(sb) == ["After"]
