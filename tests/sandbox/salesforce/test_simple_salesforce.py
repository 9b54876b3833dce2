"""simple-salesforce, unchanged, against the sandbox: logins, paging, CRUD, upsert, collections,
describe and files."""

from __future__ import annotations

import base64

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from chronoforce.sandbox.salesforce import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_SECURITY_TOKEN,
    DEMO_USERNAME,
    SalesforceSandbox,
)

from .conftest import API


def _port(base_url: str) -> str:
    return base_url.rsplit(":", 1)[1]


def test_soap_login_with_domain_pointing_at_loopback(
    sb: SalesforceSandbox, base_url: str, http: requests.Session
) -> None:
    sf = Salesforce(
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        security_token=DEMO_SECURITY_TOKEN,
        domain=f"localhost:{_port(base_url)}/login",
        session=http,
        version=API,
    )
    assert sf.sf_instance == f"localhost:{_port(base_url)}"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert sb.stats()["auth"] == 1


def test_wrong_password_fails_soap_login_with_invalid_login(
    base_url: str, http: requests.Session, sb: SalesforceSandbox
) -> None:
    from simple_salesforce.exceptions import SalesforceAuthenticationFailed

    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=DEMO_USERNAME,
            password="wrong",
            security_token=DEMO_SECURITY_TOKEN,
            domain=f"localhost:{_port(base_url)}/login",
            session=http,
        )
    assert failure.value.code == "INVALID_LOGIN"


def test_client_credentials_login_returns_the_sandbox_instance_url(
    sb: SalesforceSandbox, base_url: str, http: requests.Session
) -> None:
    # On the org's My Domain (simple-salesforce: domain="NAME.my"), as Salesforce requires.
    sf = Salesforce(
        consumer_key=DEMO_CLIENT_ID,
        consumer_secret=DEMO_CLIENT_SECRET,
        domain=f"localhost:{_port(base_url)}/acme.my",
        session=http,
    )
    assert f"https://{sf.sf_instance}" == base_url


def test_client_credentials_on_the_shared_login_host_is_refused(
    base_url: str, http: requests.Session
) -> None:
    """REAL-ORG-FACTS.md R24: login.salesforce.com / test.salesforce.com refuse this flow."""
    for host in ("login", "test"):
        with pytest.raises(SalesforceAuthenticationFailed, match="not supported on this domain"):
            Salesforce(
                consumer_key=DEMO_CLIENT_ID,
                consumer_secret=DEMO_CLIENT_SECRET,
                domain=f"localhost:{_port(base_url)}/{host}",
                session=http,
            )


def test_query_all_iter_pages_with_batch_size(sf: Salesforce, sb: SalesforceSandbox) -> None:
    sb.seed(orders=450, seed=3)
    sb.reset_stats()
    records = list(
        sf.query_all_iter(
            "SELECT Id, OrderNumber, Account.Name FROM Order ORDER BY OrderNumber",
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
    )
    assert len(records) == 450
    assert [r["OrderNumber"] for r in records] == sorted(r["OrderNumber"] for r in records)
    assert len({r["Id"] for r in records}) == 450
    assert records[0]["Account"]["Name"]
    assert sb.stats()["query"] == 3  # 200 + 200 + 50


def test_sobject_crud_round_trip(sf: Salesforce, sb: SalesforceSandbox) -> None:
    account = sf.Account.create({"Name": "Maison Dupont", "Phone": "+33 1 23 45 67 89"})
    assert account["success"] and account["id"].startswith("001") and len(account["id"]) == 18
    order = sf.Order.create(
        {
            "AccountId": account["id"],
            "EffectiveDate": "2024-05-01",
            "ShippingCity": "Lyon",
            "Chronopost_Ship__c": True,
            "Chronopost_Label_Status__c": "Requested",
        }
    )
    fetched = sf.Order.get(order["id"])
    assert fetched["Status"] == "Draft" and fetched["OrderNumber"] == "00000001"
    assert fetched["attributes"] == {
        "type": "Order",
        "url": f"/services/data/v{API}/sobjects/Order/{order['id']}",
    }
    assert sf.Order.update(order["id"], {"Chronopost_Tracking_Number__c": "XY123456789FR"}) == 204
    assert sf.Order.get(order["id"])["Chronopost_Tracking_Number__c"] == "XY123456789FR"
    assert sf.Order.get(order["id"][:15])["Id"] == order["id"]  # 15-character ids work too
    assert sf.Order.delete(order["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Order.get(order["id"])


def test_upsert_creates_then_updates_by_external_id(sf: Salesforce, sb: SalesforceSandbox) -> None:
    key = "Event_Key__c/XY123456789FR|D|2024-05-02T09:15:00Z"
    assert (
        sf.Chronopost_Tracking_Event__c.upsert(key, {"Code__c": "D", "Status__c": "delivered"})
        == 201
    )
    assert sf.Chronopost_Tracking_Event__c.upsert(key, {"Label__c": "Livré"}) == 200
    [event] = sb.records("Chronopost_Tracking_Event__c")
    assert event["Code__c"] == "D" and event["Label__c"] == "Livré"
    assert event["Event_Key__c"] == "XY123456789FR|D|2024-05-02T09:15:00Z"
    assert event["Name"] == "TE-0000001"


def test_collections_through_restful_report_each_record(
    sf: Salesforce, sb: SalesforceSandbox
) -> None:
    ids = sb.seed(orders=3, seed=1)["Order"]
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Order"}, "id": ids[0], "Chronopost_Status__c": "in_transit"},
            {"attributes": {"type": "Order"}, "id": ids[1], "Chronopost_Status__c": "lost"},
            {
                "attributes": {"type": "Order"},
                "id": ids[2],
                "Chronopost_Tracking_Number__c": "X" * 256,
            },
        ],
    }
    sb.reset_stats()
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"] == [
        {
            "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "message": "Chronopost Status: bad value for restricted picklist field: lost",
            "fields": ["Chronopost_Status__c"],
        }
    ]
    assert results[2]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sb.stats()["collections"] == 1 and sb.stats()["total"] == 1


def test_describe_lists_custom_fields_from_the_package(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Order.describe()["fields"]}
    status = fields["Chronopost_Status__c"]
    assert status["type"] == "picklist" and status["restrictedPicklist"] is True
    assert [v["value"] for v in status["picklistValues"]][:3] == [
        "pending",
        "label_created",
        "picked_up",
    ]
    assert fields["Chronopost_Tracking_Number__c"]["length"] == 255
    assert fields["EffectiveDate"]["nillable"] is False
    event_key = {f["name"]: f for f in sf.Chronopost_Tracking_Event__c.describe()["fields"]}[
        "Event_Key__c"
    ]
    assert event_key["externalId"] is True and event_key["unique"] is True


def test_file_upload_links_the_document_and_serves_the_bytes(
    sf: Salesforce, sb: SalesforceSandbox
) -> None:
    order_id = sb.seed(orders=1)["Order"][0]
    pdf = b"%PDF-1.4\n%label\n" + bytes(range(256))
    version = sf.ContentVersion.create(
        {
            "Title": "Label XY123456789FR",
            "PathOnClient": "label.pdf",
            "VersionData": base64.b64encode(pdf).decode(),
            "FirstPublishLocationId": order_id,
        }
    )
    assert sf.ContentVersion.get_base64(version["id"], base64_field="VersionData") == pdf
    stored = sf.ContentVersion.get(version["id"])
    assert stored["ContentSize"] == len(pdf) and stored["FileExtension"] == "pdf"
    links = sf.query(
        f"SELECT ContentDocumentId, ShareType FROM ContentDocumentLink WHERE LinkedEntityId = '{order_id}'"
    )
    assert links["records"][0]["ContentDocumentId"] == stored["ContentDocumentId"]
    assert sb.stats()["files"] == 2


def test_malformed_soql_raises_malformed_request(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT Id FORM Order")
    assert failure.value.content[0]["errorCode"] == "MALFORMED_QUERY"
