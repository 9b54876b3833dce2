"""Raw HTTP against the sandbox: status codes, headers and error bodies as Salesforce sends them."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from chronoforce.sandbox.salesforce import (
    DEMO_CLIENT_ID,
    DEMO_USERNAME,
    ConnectedApp,
    SalesforceSandbox,
)
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles

from .conftest import FAST_STOP, data_url


def _order(api: requests.Session, base_url: str, sb: SalesforceSandbox) -> str:
    return sb.seed(orders=1)["Order"][0]


def test_versions_listing_covers_v50_to_v62(base_url: str, http: requests.Session) -> None:
    versions = [v["version"] for v in http.get(f"{base_url}/services/data/").json()]
    assert versions[0] == "50.0" and versions[-1] == "62.0" and len(versions) == 13


def test_every_api_response_carries_sforce_limit_info(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    first = api.get(data_url(base_url, "limits"))
    second = api.get(data_url(base_url, "query"), params={"q": "SELECT Id FROM Nope"})
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/100000"
    assert first.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99999}


def test_unknown_token_answers_401_invalid_session_id(
    base_url: str, http: requests.Session, sb: SalesforceSandbox
) -> None:
    response = http.get(data_url(base_url, "limits"), headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_token_expires_on_the_sandbox_clock(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    assert api.get(data_url(base_url, "limits")).status_code == 200
    sb.advance_clock(dt.timedelta(hours=2, seconds=1))
    response = api.get(data_url(base_url, "limits"))
    assert response.status_code == 401
    assert response.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_forced_session_expiry_answers_401(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    sb.expire_sessions()
    assert api.get(data_url(base_url, "limits")).status_code == 401


def test_spent_budget_answers_403_request_limit_exceeded(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    sb.set_api_budget(max=10, used=9)
    assert api.get(data_url(base_url, "limits")).status_code == 200
    response = api.get(data_url(base_url, "limits"))
    assert response.status_code == 403
    assert response.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert response.headers["Sforce-Limit-Info"] == "api-usage=10/10"


def test_lock_fault_answers_unable_to_lock_row(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    order_id = _order(api, base_url, sb)
    sb.set_faults(lock_row_share=1.0)
    response = api.patch(
        data_url(base_url, f"sobjects/Order/{order_id}"), json={"Chronopost_Priority__c": True}
    )
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": f"unable to obtain exclusive access to this record or 1 records: {order_id}",
            "errorCode": "UNABLE_TO_LOCK_ROW",
            "fields": [],
        }
    ]
    sb.set_faults(lock_row_share=0.0)
    assert (
        api.patch(
            data_url(base_url, f"sobjects/Order/{order_id}"), json={"Chronopost_Priority__c": True}
        ).status_code
        == 204
    )


def test_lock_fault_share_hits_a_seeded_part_of_collection_records(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    ids = sb.seed(orders=40)["Order"]
    sb.set_faults(lock_row_share=0.5, seed=7)
    records = [{"attributes": {"type": "Order"}, "id": i, "Description": "touched"} for i in ids]
    results = api.patch(
        data_url(base_url, "composite/sobjects"), json={"allOrNone": False, "records": records}
    ).json()
    locked = [r for r in results if not r["success"]]
    assert 5 < len(locked) < 35
    assert {r["errors"][0]["statusCode"] for r in locked} == {"UNABLE_TO_LOCK_ROW"}
    updated = {r["Id"] for r in sb.records("Order") if r["Description"] == "touched"}
    assert updated == {r["id"] for r in results if r["success"]}


def test_503_fault_answers_server_unavailable(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    sb.set_faults(status_503_share=1.0)
    response = api.get(data_url(base_url, "limits"))
    assert response.status_code == 503 and response.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_string_too_long_has_salesforce_message(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    order_id = _order(api, base_url, sb)
    response = api.patch(
        data_url(base_url, f"sobjects/Order/{order_id}"),
        json={"Chronopost_Last_Event_Code__c": "ABCDEFGHIJK"},
    )
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "Chronopost Last Event Code: data value too large: ABCDEFGHIJK (max length=10)",
            "errorCode": "STRING_TOO_LONG",
            "fields": ["Chronopost_Last_Event_Code__c"],
        }
    ]


def test_missing_required_fields_answer_required_field_missing(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    response = api.post(data_url(base_url, "sobjects/Order"), json={"ShippingCity": "Paris"})
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "Required fields are missing: [AccountId, EffectiveDate]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["AccountId", "EffectiveDate"],
        }
    ]


def test_bad_reference_answers_malformed_id(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    response = api.post(
        data_url(base_url, "sobjects/Order"),
        json={"AccountId": "nope", "EffectiveDate": "2024-01-01"},
    )
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "MALFORMED_ID"
    assert response.json()[0]["fields"] == ["AccountId"]


def test_updating_a_deleted_record_answers_entity_is_deleted(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    order_id = _order(api, base_url, sb)
    assert api.delete(data_url(base_url, f"sobjects/Order/{order_id}")).status_code == 204
    response = api.patch(
        data_url(base_url, f"sobjects/Order/{order_id}"), json={"Description": "x"}
    )
    assert response.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert api.get(data_url(base_url, f"sobjects/Order/{order_id}")).status_code == 404
    deleted = api.get(
        data_url(base_url, "queryAll"), params={"q": "SELECT Id, IsDeleted FROM Order"}
    ).json()
    assert deleted["records"][0]["IsDeleted"] is True


def test_unknown_field_in_query_answers_invalid_field(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    response = api.get(data_url(base_url, "query"), params={"q": "SELECT Id, Colour__c FROM Order"})
    assert response.status_code == 400
    body = response.json()[0]
    assert body["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Colour__c' on entity 'Order'" in body["message"]
    assert "ERROR at Row:1:Column:12" in body["message"]


def test_upsert_with_several_matches_answers_300(
    tls: TlsFiles, tmp_path, http: requests.Session
) -> None:
    import shutil

    from chronoforce.sandbox.salesforce.schema import default_metadata_dir

    package = tmp_path / "default"
    shutil.copytree(default_metadata_dir(), package)
    (package / "objects/Order/fields/Legacy_Key__c.field-meta.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><CustomField xmlns="http://soap.sforce.com/2006/04/metadata">'
        "<fullName>Legacy_Key__c</fullName><label>Legacy Key</label><type>Text</type><length>20</length>"
        "<externalId>true</externalId></CustomField>"
    )
    sandbox = SalesforceSandbox(metadata_dir=package)
    ids = sandbox.seed(orders=2)["Order"]
    for order_id in ids:
        sandbox.org.update("Order", order_id, {"Legacy_Key__c": "K1"})
    token = sandbox.auth.issue(DEMO_USERNAME, DEMO_CLIENT_ID)
    with BackgroundServer(sandbox.app, tls=tls, options=FAST_STOP) as server:
        response = http.patch(
            f"{server.url}/services/data/v61.0/sobjects/Order/Legacy_Key__c/K1",
            json={"Description": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 300
    assert response.json() == [f"/services/data/v61.0/sobjects/Order/{i}" for i in ids]


def test_collections_all_or_none_rolls_every_record_back(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    records = [
        {"attributes": {"type": "Account"}, "Name": "Ok"},
        {"attributes": {"type": "Account"}, "Name": "x" * 300},
    ]
    results = api.post(
        data_url(base_url, "composite/sobjects"), json={"allOrNone": True, "records": records}
    ).json()
    assert results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sb.records("Account") == []


def test_collections_refuse_more_than_200_records(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(201)]
    response = api.post(data_url(base_url, "composite/sobjects"), json={"records": records})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_composite_resolves_references_and_counts_once(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v61.0/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Chez Paul"},
            },
            {
                "method": "POST",
                "url": "/services/data/v61.0/sobjects/Order",
                "referenceId": "order",
                "body": {"AccountId": "@{acct.id}", "EffectiveDate": "2024-05-01"},
            },
            {
                "method": "GET",
                "url": "/services/data/v61.0/sobjects/Order/@{order.id}?fields=AccountId",
                "referenceId": "read",
            },
        ],
    }
    sb.reset_stats()
    response = api.post(data_url(base_url, "composite"), json=body).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in response] == [201, 201, 200]
    assert response[2]["body"]["AccountId"] == response[0]["body"]["id"]
    assert sb.stats()["total"] == 1


def test_composite_all_or_none_failure_rolls_back_earlier_subrequests(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v61.0/sobjects/Account",
                "referenceId": "a",
                "body": {"Name": "Kept?"},
            },
            {
                "method": "POST",
                "url": "/services/data/v61.0/sobjects/Order",
                "referenceId": "o",
                "body": {},
            },
        ],
    }
    response = api.post(data_url(base_url, "composite"), json=body).json()["compositeResponse"]
    assert response[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert response[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sb.records("Account") == []


def test_platform_event_publish_stores_no_record(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    response = api.post(
        data_url(base_url, "sobjects/Chronopost_Ship_Request__e"),
        json={"Record_Id__c": "8018d0000000001AAA", "Reason__c": "manual"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("e00") and body["success"] is True and body["errors"] == []
    [(_, _, payload)] = sb.read_changes("/event/Chronopost_Ship_Request__e", None, 10)
    assert payload["Reason__c"] == "manual" and payload["CreatedById"] == sb.user_id


def _keypair(tmp_path) -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chronoforce-jwt")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_jwt_bearer_flow_checks_signature_and_claims(
    tls: TlsFiles, tmp_path, http: requests.Session
) -> None:
    private_pem, cert_pem = _keypair(tmp_path)
    other_pem, _ = _keypair(tmp_path)
    sandbox = SalesforceSandbox(connected_apps=[ConnectedApp("jwt-app", certificate_pem=cert_pem)])
    claims = {
        "iss": "jwt-app",
        "sub": DEMO_USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 120,
    }
    with BackgroundServer(sandbox.app, tls=tls, options=FAST_STOP) as server:

        def token(key: bytes, **override: object) -> requests.Response:
            assertion = jwt.encode({**claims, **override}, key, algorithm="RS256")
            return http.post(
                f"{server.url}/services/oauth2/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )

        good = token(private_pem)
        assert good.status_code == 200 and good.json()["instance_url"] == server.url
        assert sandbox.validate_token(good.json()["access_token"])
        assert token(other_pem).json() == {
            "error": "invalid_grant",
            "error_description": "invalid assertion",
        }
        assert (
            token(private_pem, aud="https://example.com").json()["error_description"]
            == "audience is invalid"
        )
        assert token(private_pem, exp=int(time.time()) - 5).json()["error"] == "invalid_grant"
        assert token(private_pem, sub="nobody@example.com").status_code == 400


def test_refresh_token_flow_issues_a_new_access_token(
    base_url: str, http: requests.Session, sb: SalesforceSandbox
) -> None:
    refresh = sb.issue_refresh_token(DEMO_CLIENT_ID)
    response = http.post(
        f"{base_url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": DEMO_CLIENT_ID},
    )
    assert response.status_code == 200 and sb.validate_token(response.json()["access_token"])
    bad = http.post(
        f"{base_url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "nope", "client_id": DEMO_CLIENT_ID},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_wrong_client_secret_answers_invalid_client(
    base_url: str, http: requests.Session, sb: SalesforceSandbox
) -> None:
    response = http.post(
        f"{base_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": "x",
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_multipart_content_version_upload(
    api: requests.Session, base_url: str, sb: SalesforceSandbox
) -> None:
    import json

    files = {
        "entity_content": (
            None,
            json.dumps({"Title": "label", "PathOnClient": "label.zpl"}),
            "application/json",
        ),
        "VersionData": ("label.zpl", b"^XA^FO50,50^FDXY123^FS^XZ", "application/octet-stream"),
    }
    response = api.post(data_url(base_url, "sobjects/ContentVersion"), files=files)
    assert response.status_code == 201, response.text
    data = api.get(
        data_url(base_url, f"sobjects/ContentVersion/{response.json()['id']}/VersionData")
    )
    assert data.content == b"^XA^FO50,50^FDXY123^FS^XZ"


def test_admin_endpoints_seed_stats_and_reset(
    base_url: str, http: requests.Session, sb: SalesforceSandbox
) -> None:
    seeded = http.post(f"{base_url}/_sandbox/seed", json={"orders": 5, "seed": 2}).json()
    assert seeded["created"]["Order"] == 5 and len(seeded["ids"]["Order"]) == 5
    assert http.get(f"{base_url}/_sandbox/summary").json()["records"]["Order"] == 5
    http.post(f"{base_url}/_sandbox/faults", json={"latency": 0.0, "lock_row_share": 0.25})
    assert sb.faults.lock_row_share == 0.25
    http.post(f"{base_url}/_sandbox/reset")
    assert sb.records("Order") == []
