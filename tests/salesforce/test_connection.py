"""Logging in to the sandbox org with every flow, renewing expired sessions, the API budget."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from chronoforce.config import Secrets
from chronoforce.domain.errors import (
    RateLimitedError,
    SalesforceUnavailableError,
    SalesforceValidationError,
    SessionExpiredError,
)
from chronoforce.salesforce.auth import SalesforceAuthError, Token, token_source
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.salesforce.connection import Connection, connect
from chronoforce.salesforce.transport import SalesforceSession

DEMO_USERNAME = "integration@chronoforce.example"
JWT_CLIENT_ID = "chronoforce-jwt"  # the JWT connected app of conftest.served


def _count_orders(client: SalesforceClient) -> int:
    return len(list(client.query_iter("SELECT Id FROM Order")))


def test_client_credentials_flow_logs_in_and_queries(org):
    client = org.client()
    assert _count_orders(client) == 0
    assert client.calls() == {"auth": 1, "query": 1}


def test_password_flow_sends_password_and_security_token(org):
    secrets = Secrets(
        sf_client_secret=SecretStr("chronoforce-demo-secret"),
        sf_password=SecretStr("chronoforce-demo"),
        sf_security_token=SecretStr("SANDBOXTOKEN"),
    )
    client = org.client(secrets=secrets, auth="password", username=DEMO_USERNAME)
    assert _count_orders(client) == 0


def test_wrong_password_is_an_auth_error_that_never_shows_the_password(org):
    secrets = Secrets(
        sf_client_secret=SecretStr("chronoforce-demo-secret"),
        sf_password=SecretStr("hunter2-wrong"),
    )
    with pytest.raises(SalesforceAuthError) as caught:
        connect(org.config(auth="password", username=DEMO_USERNAME), secrets)
    assert caught.value.code == "invalid_grant"
    assert "hunter2-wrong" not in caught.value.request_payload
    assert "chronoforce-demo-secret" not in caught.value.request_payload


def test_jwt_bearer_flow_with_a_key_whose_certificate_the_org_trusts(org, jwt_app):
    secrets = Secrets(sf_private_key=SecretStr(jwt_app[0]))
    client = org.client(
        secrets=secrets, auth="jwt", client_id=JWT_CLIENT_ID, username=DEMO_USERNAME
    )
    assert _count_orders(client) == 0


def test_jwt_signed_by_another_key_is_refused(org, make_key_pair):
    other_key, _ = make_key_pair()
    config = org.config(auth="jwt", client_id=JWT_CLIENT_ID, username=DEMO_USERNAME)
    with pytest.raises(SalesforceAuthError) as caught:
        connect(config, Secrets(sf_private_key=SecretStr(other_key)))
    assert "PRIVATE KEY" not in caught.value.request_payload.replace("PRIVATE KEY ***", "")


def test_expired_session_is_renewed_once_and_the_call_succeeds(org):
    client = org.client()
    _count_orders(client)
    org.sandbox.expire_sessions()
    assert _count_orders(client) == 0
    assert client.calls()["auth"] == 2
    assert client.calls()["query"] == 3  # the refused one, and its repeat


def test_session_refused_again_after_renewal_raises_session_expired(org):
    config = org.config()
    real = token_source(config, Secrets(sf_client_secret=SecretStr("chronoforce-demo-secret")))
    tokens = iter(["real", "bogus", "bogus"])

    def source(session):
        token = real(session)
        return token if next(tokens) == "real" else Token("00Dbogus!token", token.instance_url)

    connection = Connection(config, source, SalesforceSession(ca_file=org.ca_file))
    client = SalesforceClient(connection)
    org.clients.append(client)
    org.sandbox.expire_sessions()
    with pytest.raises(SessionExpiredError):
        _count_orders(client)


def test_request_limit_exceeded_becomes_rate_limited(org):
    client = org.client()
    org.sandbox.set_api_budget(max=100, used=100)
    with pytest.raises(RateLimitedError) as caught:
        _count_orders(client)
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after


def test_reserve_stops_writes_before_the_budget_runs_out_without_calling(org):
    client = org.client(api_reserve_fraction=0.2)
    org.sandbox.set_api_budget(max=1000, used=850)
    _count_orders(client)  # reads still go: 150 left is above half the reserve
    assert client.usage is not None and client.usage.remaining < 200
    with pytest.raises(RateLimitedError) as caught:
        client.collection("create", "Account", [{"Name": "Never sent"}])
    assert caught.value.code == "API_RESERVE"
    assert "collection" not in client.calls()


def test_usage_is_read_from_every_response(org):
    client = org.client()
    org.sandbox.set_api_budget(max=5000, used=40)
    _count_orders(client)
    assert client.usage is not None and client.usage.max == 5000 and client.usage.used >= 40


def test_on_call_sees_every_exchange_with_secrets_redacted(org):
    seen = []
    client = org.client(on_call=seen.append)
    _count_orders(client)
    assert [c.kind for c in seen] == ["auth", "query"]
    auth, query = seen
    assert "chronoforce-demo-secret" not in auth.request_body
    assert (
        "access_token" in auth.response_body
        and client.connection.sf.session_id not in auth.response_body
    )
    assert query.status == 200 and "SELECT" in query.url and query.duration_s > 0


def test_invalid_query_is_a_validation_error_with_its_code(client):
    with pytest.raises(SalesforceValidationError) as caught:
        list(client.query_iter("SELECT Nope__c FROM Order"))
    assert caught.value.code == "INVALID_FIELD"


def test_server_unavailable_is_a_transient_error(org):
    client = org.client()
    org.sandbox.set_faults(status_503_share=1.0)
    try:
        with pytest.raises(SalesforceUnavailableError) as caught:
            _count_orders(client)
    finally:
        org.sandbox.set_faults(status_503_share=0.0)
    assert caught.value.transient
