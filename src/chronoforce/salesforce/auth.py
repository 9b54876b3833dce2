"""OAuth 2.0 token flows for the Salesforce REST API: JWT bearer, client credentials, password.

Each flow posts to `/services/oauth2/token` and returns a `Token`. A token, secret, private key
or assertion must never be logged or kept in an error: errors carry redacted payloads only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from chronoforce.config import SalesforceConfig, Secrets
from chronoforce.domain.errors import PermanentError, SalesforceUnavailableError
from chronoforce.redaction import redact_text

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105  # an endpoint, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts JWT assertions whose `exp` is at most 3 minutes ahead (OAuth JWT bearer flow).
JWT_LIFETIME = dt.timedelta(minutes=3)
# The JWT `aud` Salesforce documents: login or test, whatever host the assertion is posted to
# (a My Domain `aud` is refused by some orgs). REAL-ORG-FACTS.md §5.
LOGIN_AUDIENCE = "https://login.salesforce.com"
TEST_AUDIENCE = "https://test.salesforce.com"
# Shared login hosts: the client-credentials flow is refused there (HELP:000886201).
SHARED_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


class SalesforceAuthError(PermanentError):
    """The org refused our credentials (`invalid_grant`, `invalid_client`…): fix configuration."""

    default_code = "SALESFORCE_AUTH"


@dataclass(frozen=True)
class Token:
    """An access token and the instance it is valid for; `repr` never shows the token."""

    access_token: str = field(repr=False)
    instance_url: str
    issued_at: str = ""
    identity_url: str = ""  # …/id/<org id>/<user id>: the Pub/Sub API needs the org id

    @property
    def org_id(self) -> str:
        parts = self.identity_url.rstrip("/").split("/")
        return parts[-2] if len(parts) >= 2 and parts[-3:-2] == ["id"] else ""


TokenSource = Callable[[requests.Session], Token]


def jwt_assertion(
    client_id: str,
    username: str,
    audience: str,
    private_key: str,
    now: dt.datetime | None = None,
) -> str:
    """RS256-signed assertion: iss = consumer key, sub = username, aud = login URL, exp ≤ 3 min."""
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "iss": client_id,
        "sub": username,
        "aud": audience.rstrip("/"),
        "exp": int((issued + JWT_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def request_token(session: requests.Session, base_url: str, form: dict[str, str]) -> Token:
    """POST the form to the token endpoint; errors become typed errors with redacted payloads."""
    url = base_url.rstrip("/") + TOKEN_PATH
    try:
        response = session.post(url, data=form, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise SalesforceUnavailableError(
            f"token endpoint unreachable: {type(exc).__name__}", operation="auth"
        ) from exc
    body = _json(response)
    if response.status_code >= 500:
        raise SalesforceUnavailableError(
            f"token endpoint answered HTTP {response.status_code}",
            operation="auth",
            response_payload=redact_text(response.text[:2000]),
        )
    if response.status_code != 200 or "access_token" not in body:
        raise SalesforceAuthError(
            str(body.get("error_description") or f"HTTP {response.status_code}"),
            code=str(body.get("error") or "SALESFORCE_AUTH"),
            operation="auth",
            request_payload=redact_text("&".join(f"{k}={v}" for k, v in form.items())),
            response_payload=redact_text(response.text[:2000]),
        )
    return Token(
        access_token=str(body["access_token"]),
        instance_url=str(body.get("instance_url") or base_url).rstrip("/"),
        issued_at=str(body.get("issued_at", "")),
        identity_url=str(body.get("id", "")),
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _secret(value: Any, name: str) -> str:
    if value is None:
        raise SalesforceAuthError(f"secret CHRONOFORCE_{name.upper()} is not set", field=name)
    return str(value.get_secret_value())


def jwt_audience(config: SalesforceConfig) -> str:
    """`salesforce.jwt_audience`, or login/test as `login_url`'s host implies (a sandbox org:
    test.salesforce.com or a `…--name.sandbox.my.salesforce.com` My Domain)."""
    if config.jwt_audience.strip():
        return config.jwt_audience.strip().rstrip("/")
    host = (urlsplit(config.login_url).hostname or "").lower()
    sandbox = host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com")
    return TEST_AUDIENCE if sandbox else LOGIN_AUDIENCE


def my_domain_url(config: SalesforceConfig) -> str:
    """The org's My Domain URL the client-credentials flow must post to (never login/test)."""
    url = config.instance_url.strip().rstrip("/")
    host = (urlsplit(url).hostname or "").lower()
    if not url or host in SHARED_LOGIN_HOSTS:
        raise SalesforceAuthError(
            "the client-credentials flow needs salesforce.instance_url set to the org's My "
            "Domain URL (https://NAME.my.salesforce.com); login.salesforce.com and "
            "test.salesforce.com refuse it",
            code="CONFIG_MY_DOMAIN_MISSING",
            field="salesforce.instance_url",
            operation="auth",
        )
    return url


def token_source(config: SalesforceConfig, secrets: Secrets) -> TokenSource:
    """The flow `config.auth` names, as a function of the HTTP session (called again to renew)."""
    if config.auth == "jwt":
        key = _secret(secrets.sf_private_key, "sf_private_key")
        audience = jwt_audience(config)

        def by_jwt(session: requests.Session) -> Token:
            assertion = jwt_assertion(config.client_id, config.username, audience, key)
            form = {"grant_type": JWT_GRANT, "assertion": assertion}
            return request_token(session, config.login_url, form)

        return by_jwt
    if config.auth == "password":
        password = _secret(secrets.sf_password, "sf_password")
        security_token = (
            secrets.sf_security_token.get_secret_value() if secrets.sf_security_token else ""
        )

        def by_password(session: requests.Session) -> Token:
            form = {
                "grant_type": "password",
                "client_id": config.client_id,
                "client_secret": _optional(secrets),
                "username": config.username,
                "password": password + security_token,
            }
            return request_token(session, config.login_url, form)

        return by_password
    client_secret = _secret(secrets.sf_client_secret, "sf_client_secret")
    my_domain = my_domain_url(config)

    def by_client_credentials(session: requests.Session) -> Token:
        # Salesforce takes this grant on the org's My Domain URL only.
        form = {
            "grant_type": "client_credentials",
            "client_id": config.client_id,
            "client_secret": client_secret,
        }
        return request_token(session, my_domain, form)

    return by_client_credentials


def _optional(secrets: Secrets) -> str:
    return secrets.sf_client_secret.get_secret_value() if secrets.sf_client_secret else ""
