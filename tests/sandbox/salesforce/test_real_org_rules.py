"""The sandbox answers as real orgs do (REAL-ORG-FACTS.md §7), over HTTPS and gRPC on loopback.

Each test names the rule it shows; docs/sandbox-salesforce.md keeps the rule → test table.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from chronoforce.salesforce.pubsub import PubSubClient, PubSubCredentials
from chronoforce.sandbox.salesforce import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_SECURITY_TOKEN,
    DEMO_USERNAME,
    SalesforceSandbox,
)
from chronoforce.sandbox.salesforce.pubsub import PubSubServer
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles

from .conftest import FAST_STOP, data_url

Serve = Callable[[SalesforceSandbox], tuple[str, requests.Session]]


@pytest.fixture()
def serve(tls: TlsFiles) -> Iterator[Serve]:
    """`serve(sandbox)`: (url, logged-in session) for a sandbox of the test's own profile."""
    running: list[BackgroundServer] = []
    sessions: list[requests.Session] = []

    def start(sandbox: SalesforceSandbox) -> tuple[str, requests.Session]:
        server = BackgroundServer(sandbox.app, tls=tls, options=FAST_STOP).start()
        running.append(server)
        http = requests.Session()
        http.verify, http.trust_env = str(tls.ca_cert), False
        sessions.append(http)
        token = http.post(
            f"{server.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        return server.url, http

    yield start
    for http in sessions:
        http.close()
    for server in running:
        server.stop()


def _query(http: requests.Session, url: str, soql: str) -> requests.Response:
    return http.get(data_url(url, "query"), params={"q": soql})


def test_r1_an_org_without_shipment_answers_invalid_type_and_404(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox(order_only=True))
    refused = _query(http, url, "SELECT Id FROM Shipment")
    assert refused.status_code == 400
    [error] = refused.json()
    assert error["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Shipment' is not supported." in error["message"]
    assert "ERROR at Row:1:Column:16" in error["message"]
    for path in ("sobjects/Shipment/describe", "sobjects/ShipmentItem", "sobjects/Shipment/x"):
        answer = http.get(data_url(url, path))
        assert answer.status_code == 404 and answer.json()[0]["errorCode"] == "NOT_FOUND"
    names = {o["name"] for o in http.get(data_url(url, "sobjects")).json()["sobjects"]}
    assert "Order" in names and not names & {"Shipment", "ShipmentItem", "OrderSummary"}
    case_fields = {
        f["name"] for f in http.get(data_url(url, "sobjects/Case/describe")).json()["fields"]
    }
    assert "Chronopost_Order__c" in case_fields and "Chronopost_Shipment__c" not in case_fields


def test_r2_an_object_the_user_may_not_read_answers_alike(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox(hidden_objects={"Case"}))
    assert _query(http, url, "SELECT Id FROM Case").json()[0]["errorCode"] == "INVALID_TYPE"
    assert http.get(data_url(url, "sobjects/Case/describe")).status_code == 404


def test_r3_shipment_hangs_from_order_management_not_from_order(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox())
    fields = {
        f["name"]: f for f in http.get(data_url(url, "sobjects/Shipment/describe")).json()["fields"]
    }
    assert "OrderId" not in fields and "Order" not in fields
    assert fields["FulfillmentOrderId"]["referenceTo"] == ["FulfillmentOrder"]
    assert fields["OrderSummaryId"]["referenceTo"] == ["OrderSummary"]
    assert fields["Provider"]["type"] == "picklist" and not fields["Provider"]["restrictedPicklist"]
    assert not fields["ShipmentNumber"]["createable"]
    assert not fields["TotalItemsQuantity"]["createable"]
    summary = {
        f["name"]: f
        for f in http.get(data_url(url, "sobjects/OrderSummary/describe")).json()["fields"]
    }
    assert summary["OriginalOrderId"]["referenceTo"] == ["Order"]


def test_r4_a_field_newer_than_the_requested_api_version_does_not_exist(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox())

    def describe(version: str) -> set[str]:
        answer = http.get(f"{url}/services/data/v{version}/sobjects/Shipment/describe")
        return {f["name"] for f in answer.json()["fields"]}

    assert "FulfillmentOrderId" in describe("61.0") and "FulfillmentOrderId" not in describe("50.0")
    soql = {"q": "SELECT Id, FulfillmentOrder.OrderSummaryId FROM Shipment"}
    assert http.get(f"{url}/services/data/v51.0/query", params=soql).status_code == 200
    old = http.get(f"{url}/services/data/v50.0/query", params=soql)
    assert old.status_code == 400 and old.json()[0]["errorCode"] == "INVALID_FIELD"
    write = {"ShipToName": "x", "FulfillmentOrderId": None}
    assert http.post(f"{url}/services/data/v50.0/sobjects/Shipment", json=write).status_code == 400


def test_r5_r6_a_collection_not_well_formed_is_refused_as_a_whole(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    endpoint = data_url(url, "composite/sobjects")

    def post(records: list[dict[str, Any]]) -> requests.Response:
        return http.post(endpoint, json={"allOrNone": False, "records": records})

    good = {"attributes": {"type": "Account"}, "Name": "Dupont"}
    unknown = post([good, {**good, "Bogus__c": 1}])
    assert unknown.status_code == 400
    assert unknown.json() == [
        {
            "message": "No such column 'Bogus__c' on sobject of type Account",
            "errorCode": "INVALID_FIELD",
        }
    ]
    assert post([good, {"Name": "no type"}]).status_code == 400
    assert post([good] * 201).status_code == 400
    assert (
        http.post(
            endpoint, data="{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert sandbox.records("Account") == [], "nothing of a refused request is committed"
    single = http.post(data_url(url, "sobjects/Account"), json={"Name": "x", "Bogus__c": 1})
    assert single.status_code == 400
    assert single.json() == [
        {
            "message": "No such column 'Bogus__c' on sobject of type Account",
            "errorCode": "INVALID_FIELD",
            "fields": [],
        }
    ]
    per_record = SalesforceSandbox(unknown_field_in_collection="record")
    url2, http2 = serve(per_record)
    answer = http2.post(
        data_url(url2, "composite/sobjects"), json={"records": [good, {**good, "Bogus__c": 1}]}
    )
    assert answer.status_code == 200 and [r["success"] for r in answer.json()] == [True, False]


def test_r7_a_field_hidden_by_fls_is_an_unknown_field_in_soql_and_writes(serve: Serve) -> None:
    sandbox = SalesforceSandbox(hidden_fields={"Order": {"Chronopost_Pickup_Number__c"}})
    url, http = serve(sandbox)
    answer = _query(http, url, "SELECT Id, Chronopost_Pickup_Number__c FROM Order")
    assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALID_FIELD"
    written = http.post(
        data_url(url, "composite/sobjects"),
        json={"records": [{"attributes": {"type": "Order"}, "Chronopost_Pickup_Number__c": "P"}]},
    )
    assert written.status_code == 400 and "No such column" in written.json()[0]["message"]


def test_r7_a_readable_but_not_editable_field_fails_per_record(serve: Serve) -> None:
    sandbox = SalesforceSandbox(read_only_fields={"Account": {"AccountNumber"}})
    url, http = serve(sandbox)
    fields = {
        f["name"]: f for f in http.get(data_url(url, "sobjects/Account/describe")).json()["fields"]
    }
    assert not fields["AccountNumber"]["updateable"]
    answer = http.post(
        data_url(url, "composite/sobjects"),
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Name": "a", "AccountNumber": "C-1"},
                {"attributes": {"type": "Account"}, "Name": "b"},
            ]
        },
    )
    assert answer.status_code == 200
    refused, taken = answer.json()
    assert taken["success"]
    assert refused["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert refused["errors"][0]["fields"] == ["AccountNumber"]


def test_r8_over_long_values_fail_per_record_and_case_comments_count_bytes(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    case = http.post(data_url(url, "sobjects/Case"), json={"Subject": "late"}).json()["id"]
    endpoint = data_url(url, "composite/sobjects")
    answer = http.post(
        endpoint,
        json={
            "records": [
                {
                    "attributes": {"type": "CaseComment"},
                    "ParentId": case,
                    "CommentBody": "é" * 2001,
                },
                {
                    "attributes": {"type": "CaseComment"},
                    "ParentId": case,
                    "CommentBody": "e" * 4000,
                },
            ]
        },
    )
    assert answer.status_code == 200
    refused, taken = answer.json()
    assert taken["success"] and not refused["success"]
    [error] = refused["errors"]
    assert error["statusCode"] == "STRING_TOO_LONG" and error["fields"] == ["CommentBody"]
    assert error["message"].startswith("Comment Body: data value too large:")
    assert [c["CommentBody"] for c in sandbox.records("CaseComment")] == ["e" * 4000]


def test_r11_request_limit_exceeded_carries_no_retry_after(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    sandbox.set_api_budget(max=5, used=5)
    answer = _query(http, url, "SELECT Id FROM Account")
    assert answer.status_code == 403
    assert answer.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert "Retry-After" not in answer.headers
    assert not [h for h in answer.headers if h.lower().startswith("x-ratelimit")]


def test_r11_sessions_expire_after_idle_time_not_at_a_fixed_age(serve: Serve) -> None:
    sandbox = SalesforceSandbox(token_ttl=dt.timedelta(hours=2))
    url, http = serve(sandbox)
    for _ in range(3):  # 4.5 h old, never idle for 2 h: still valid
        sandbox.advance_clock(dt.timedelta(hours=1, minutes=30))
        assert _query(http, url, "SELECT Id FROM Account").status_code == 200
    sandbox.advance_clock(dt.timedelta(hours=2, minutes=1))
    expired = _query(http, url, "SELECT Id FROM Account")
    assert expired.status_code == 401
    assert expired.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_r12_composite_counts_once_and_composite_batch_per_subrequest(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    query = {"method": "GET", "url": "/services/data/v61.0/query?q=SELECT+Id+FROM+Account"}
    used = sandbox.api_used
    composite = [{**query, "referenceId": f"q{n}"} for n in range(3)]
    assert http.post(data_url(url, "composite"), json={"compositeRequest": composite}).ok
    assert sandbox.api_used == used + 1
    batch = [{"method": "GET", "url": "v61.0/query?q=SELECT+Id+FROM+Account"}] * 3
    assert http.post(data_url(url, "composite/batch"), json={"batchRequests": batch}).ok
    assert sandbox.api_used == used + 1 + 3


def test_r12_limits_need_view_setup(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox(view_setup=False))
    refused = http.get(data_url(url, "limits"))
    assert refused.status_code == 403
    assert refused.headers["Sforce-Limit-Info"].startswith("api-usage=")
    url, http = serve(SalesforceSandbox())
    assert http.get(data_url(url, "limits")).json()["DailyApiRequests"]["Max"] == 100_000


def test_r13_content_document_links_are_queried_by_id_only_from_v59(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox())
    unfiltered = "SELECT Id, LinkedEntityId FROM ContentDocumentLink"
    refused = _query(http, url, unfiltered)
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert "requires a filter by a single Id" in refused.json()[0]["message"]
    filtered = f"{unfiltered} WHERE LinkedEntityId IN ('8018d0000000001AAA')"
    assert _query(http, url, filtered).status_code == 200
    older = http.get(f"{url}/services/data/v58.0/query", params={"q": unfiltered})
    assert older.status_code == 200


def test_r14_an_activated_order_keeps_its_account(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    first, second = (sandbox.org.create("Account", {"Name": n}) for n in ("A", "B"))
    order = sandbox.org.create("Order", {"AccountId": first, "EffectiveDate": "2024-05-01"})
    patch = data_url(url, f"sobjects/Order/{order}")
    assert http.patch(patch, json={"AccountId": second}).status_code == 204  # Draft: allowed
    assert http.patch(patch, json={"Status": "Activated"}).status_code == 204
    refused = http.patch(patch, json={"AccountId": first})
    assert refused.status_code == 400 and refused.json()[0]["fields"] == ["AccountId"]


@pytest.mark.parametrize(
    ("condition", "accepted"),
    [
        ("CreatedDate > 2024-01-01T00:00:00Z", True),
        ("CreatedDate > 2024-01-01T00:00:00.000Z", True),
        ("CreatedDate > 2024-01-01T00:00:00+02:00", True),
        ("CreatedDate > '2024-01-01T00:00:00Z'", False),  # quoted
        ("CreatedDate > 2024-01-01", False),  # a date against a dateTime field
        ("EffectiveDate > 2024-01-01T00:00:00Z", False),  # a dateTime against a date field
        ("EffectiveDate > 2024-01-01", True),
    ],
)
def test_r15_date_and_datetime_literals(serve: Serve, condition: str, accepted: bool) -> None:
    url, http = serve(SalesforceSandbox())
    answer = _query(http, url, f"SELECT Id FROM Order WHERE {condition}")
    assert (answer.status_code == 200) is accepted, answer.text
    if not accepted:
        assert answer.status_code == 400 and answer.json()[0]["errorCode"] == "INVALID_FIELD"


def test_r16_a_system_update_moves_systemmodstamp_alone(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    account = sandbox.org.create("Account", {"Name": "Dupont"})
    [before] = sandbox.records("Account")
    sandbox.advance_clock(dt.timedelta(minutes=5))
    sandbox.system_update("Account", account)
    [after] = sandbox.records("Account")
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after["SystemModstamp"] > after["LastModifiedDate"]
    since = before["SystemModstamp"].replace("+0000", "Z")
    found = _query(http, url, f"SELECT Id FROM Account WHERE SystemModstamp > {since}")
    assert [r["Id"] for r in found.json()["records"]] == [account]


def test_r17_pages_may_be_shorter_than_asked_and_paging_still_reaches_every_row(
    serve: Serve,
) -> None:
    sandbox = SalesforceSandbox(short_pages=0.5, seed=4)
    sandbox.seed(orders=600, seed=1)
    url, http = serve(sandbox)
    sizes, ids = [], []
    page = _query(http, url, "SELECT Id FROM Order").json()
    while True:
        sizes.append(len(page["records"]))
        ids += [r["Id"] for r in page["records"]]
        if page["done"]:
            break
        assert page["nextRecordsUrl"].startswith("/services/data/v61.0/query/")
        page = http.get(url + page["nextRecordsUrl"]).json()
    assert len(ids) == len(set(ids)) == 600
    assert len(sizes) > 1, sizes  # 600 rows fit one 2,000-row page unless some are cut
    bogus = http.get(data_url(url, "query/01gNOPE-10"))
    assert bogus.status_code == 400 and bogus.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_r17_two_long_text_fields_make_pages_of_200(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    rows = [
        {"attributes": {"type": "Chronopost_Integration_Error__c"}, "Message__c": f"m{n}"}
        for n in range(200)
    ]
    for _ in range(2):
        assert http.post(data_url(url, "composite/sobjects"), json={"records": rows}).ok
    soql = "SELECT Id, Message__c, Request_Payload__c FROM Chronopost_Integration_Error__c"
    page = _query(http, url, soql).json()
    assert len(page["records"]) == 200 and not page["done"]


def test_r18_offset_beyond_2000_is_number_outside_valid_range(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox())
    assert _query(http, url, "SELECT Id FROM Account LIMIT 1 OFFSET 2000").status_code == 200
    refused = _query(http, url, "SELECT Id FROM Account LIMIT 1 OFFSET 2001")
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_r26_data_calls_belong_on_instance_url_not_on_the_login_host(serve: Serve) -> None:
    sandbox = SalesforceSandbox()
    url, http = serve(sandbox)
    answer = http.post(
        f"{url}/login.salesforce.com/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "username": DEMO_USERNAME,
            "password": DEMO_PASSWORD + DEMO_SECURITY_TOKEN,
        },
    ).json()
    assert answer["instance_url"] == url
    assert answer["id"] == f"{url}/id/{sandbox.org_id}/{sandbox.user_id}"
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    on_login = http.get(f"{url}/login.salesforce.com/services/data/v61.0/limits", headers=headers)
    assert on_login.status_code == 401
    assert http.get(f"{answer['instance_url']}/services/data/v61.0/limits", headers=headers).ok


def test_r24_client_credentials_are_refused_off_my_domain(serve: Serve) -> None:
    url, http = serve(SalesforceSandbox())
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    for host in ("login.salesforce.com", "test.salesforce.com"):
        answer = http.post(f"{url}/{host}/services/oauth2/token", data=form)
        assert answer.status_code == 400
        assert answer.json() == {
            "error": "invalid_grant",
            "error_description": "request not supported on this domain",
        }
    mine = http.post(f"{url}/acme.my.salesforce.com/services/oauth2/token", data=form)
    assert mine.status_code == 200 and "refresh_token" not in mine.json()


@pytest.fixture()
def grpc_world(tls: TlsFiles, serve: Serve) -> Iterator[Callable[..., Any]]:
    stop: list[Any] = []

    def make(
        **server_options: Any,
    ) -> tuple[SalesforceSandbox, PubSubClient, requests.Session, str]:
        sandbox = SalesforceSandbox()
        url, http = serve(sandbox)
        grpc = PubSubServer(sandbox, tls=tls, **server_options).start()
        token = http.headers["Authorization"].removeprefix("Bearer ")
        client = PubSubClient(
            grpc.target, PubSubCredentials(token, url, sandbox.org_id), ca_file=tls.ca_cert
        )
        stop.extend([client.close, grpc.stop])
        return sandbox, client, http, url

    yield make
    for fn in stop:
        fn()


def test_r19_no_keepalive_at_subscribe_time_then_on_schedule(grpc_world: Any) -> None:
    _, client, _, _ = grpc_world(keepalive=0.6, first_keepalive=0.3, idle_close=None)
    started = time.monotonic()
    subscription = client.subscribe("/event/Chronopost_Ship_Request__e", start="LATEST")
    try:
        assert subscription.wait_ready(timeout=5)
        first = time.monotonic() - started
        assert 0.25 <= first < 2.0, first
        seen = subscription.last_message_at
        assert subscription.drain(wait=3.0) == []  # a keepalive does not end the wait
        assert subscription.last_message_at - seen >= 0.5, "the next one 0.6 s later"
    finally:
        subscription.close()


def test_r20_the_server_closes_a_stream_that_asks_for_nothing(grpc_world: Any) -> None:
    _, client, http, url = grpc_world(keepalive=0.2, first_keepalive=0.2, idle_close=0.5)
    subscription = client.subscribe(
        "/event/Chronopost_Ship_Request__e", start="EARLIEST", batch_size=1
    )
    try:
        http.post(data_url(url, "sobjects/Chronopost_Ship_Request__e"), json={"Reason__c": "x"})
        assert len(subscription.drain(wait=3.0)) == 1  # pending is now 0, nothing asked since
        subscription._reader.join(timeout=5)  # the stream's reader ends when the server closes
        assert not subscription._reader.is_alive(), "closed after about idle_close seconds"
    finally:
        subscription.close()
