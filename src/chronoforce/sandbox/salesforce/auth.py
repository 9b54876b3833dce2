"""Who may call the sandbox: connected apps, users, OAuth token flows, SOAP login, sessions.

Tokens live in memory and expire on the sandbox clock. It must never log or echo a password, a
client secret, an assertion or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from lxml import etree

DEMO_CLIENT_ID = "chronoforce-demo"
DEMO_CLIENT_SECRET = "chronoforce-demo-secret"  # noqa: S105 - documented demo credential
DEMO_USERNAME = "integration@chronoforce.example"
DEMO_PASSWORD = "chronoforce-demo"  # noqa: S105 - documented demo credential
DEMO_SECURITY_TOKEN = "SANDBOXTOKEN"  # noqa: S105 - documented demo credential
JWT_MAX_AHEAD_SECONDS = 300  # Salesforce wants exp at most a few minutes ahead
# The JWT `aud` most orgs accept, whatever host the assertion is posted to; a My Domain `aud`
# is refused by some ("audience is invalid"). REAL-ORG-FACTS.md §5, R25 (configurable).
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
# Hosts that serve logins for every org: the client-credentials flow is refused there
# (HELP:000886201; REAL-ORG-FACTS.md R24). The sandbox's own URL plays the org's My Domain.
SHARED_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    client_secret: str | None = None
    certificate_pem: str | None = None  # X.509 certificate (or public key) for JWT bearer
    run_as: str = DEMO_USERNAME  # the user the client-credentials flow runs as


@dataclass(frozen=True)
class SandboxUser:
    username: str
    password: str
    security_token: str = ""


@dataclass
class Session:
    user_id: str
    client_id: str
    expires_at: float  # sandbox-clock epoch seconds


class OAuthError(Exception):
    """`400 {"error", "error_description"}` from the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def _public_key(pem: str) -> Any:
    data = pem.encode()
    if b"CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


class Auth:
    def __init__(
        self,
        apps: list[ConnectedApp],
        users: list[SandboxUser],
        user_ids: dict[str, str],
        org_id: str,
        token_ttl: float,
        clock: Callable[[], float],
        jwt_audiences: tuple[str, ...] = JWT_AUDIENCES,
    ) -> None:
        self.apps = {a.client_id: a for a in apps}
        self.users = {u.username.lower(): u for u in users}
        self.user_ids = user_ids
        self.org_id = org_id
        self.token_ttl = token_ttl  # idle timeout: every API call starts it again
        self.clock = clock
        self.jwt_audiences = tuple(a.rstrip("/") for a in jwt_audiences)
        self._sessions: dict[str, Session] = {}
        self._refresh: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    # --- sessions ----------------------------------------------------------------------------

    def issue(self, username: str, client_id: str) -> str:
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(48)}"
        user_id = self.user_ids[username.lower()]
        with self._lock:
            self._sessions[token] = Session(user_id, client_id, self.clock() + self.token_ttl)
        return token

    def session(self, token: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            now = self.clock()
            if session.expires_at <= now:
                del self._sessions[token]
                return None
            # Session timeout is inactivity-based: each call resets it (REAL-ORG-FACTS.md §5).
            session.expires_at = now + self.token_ttl
            return session

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def issue_refresh_token(self, client_id: str, username: str = DEMO_USERNAME) -> str:
        """What a user's web-server OAuth consent would have produced (for the refresh flow)."""
        if client_id not in self.apps or username.lower() not in self.users:
            raise KeyError("unknown connected app or user")
        token = f"5Aep{secrets.token_urlsafe(40)}"
        with self._lock:
            self._refresh[token] = (client_id, username)
        return token

    # --- token endpoint ----------------------------------------------------------------------

    def token(
        self, form: dict[str, str], basic: str | None, instance_url: str, login_host: str = ""
    ) -> dict[str, Any]:
        """`login_host`: the shared login host the request was addressed to ("" = My Domain)."""
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            if login_host:
                raise OAuthError("invalid_grant", "request not supported on this domain")
            app = self._client(form, basic)
            username = app.run_as
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            app, username = self._jwt(form.get("assertion", ""), instance_url)
        elif grant == "refresh_token":
            app, username = self._refresh_grant(form, basic)
        elif grant == "password":
            app = self._client(form, basic)
            username = self._check_password(form.get("username", ""), form.get("password", ""))
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        return self._token_body(self.issue(username, app.client_id), username, app, instance_url)

    def _token_body(
        self, token: str, username: str, app: ConnectedApp, instance_url: str
    ) -> dict[str, Any]:
        user_id = self.user_ids[username.lower()]
        identity = f"{instance_url}/id/{self.org_id}/{user_id}"
        issued_at = str(int(time.time() * 1000))
        key = (app.client_secret or app.client_id).encode()
        signature = base64.b64encode(
            hmac.new(key, (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return {
            "access_token": token,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
            "scope": "api",
        }

    def _client(self, form: dict[str, str], basic: str | None) -> ConnectedApp:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if basic:
            try:
                client_id, _, secret = base64.b64decode(basic).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if app.client_secret is None or not hmac.compare_digest(app.client_secret, secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        return app

    def _refresh_grant(self, form: dict[str, str], basic: str | None) -> tuple[ConnectedApp, str]:
        entry = self._refresh.get(form.get("refresh_token", ""))
        if entry is None:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        app = self.apps[entry[0]]
        client_id = form.get("client_id") or (
            base64.b64decode(basic).decode().partition(":")[0] if basic else ""
        )
        if client_id != app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        return app, entry[1]

    def _jwt(self, assertion: str, instance_url: str) -> tuple[ConnectedApp, str]:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        app = self.apps.get(str(claims.get("iss", "")))
        if app is None or app.certificate_pem is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        try:
            # exp is checked below: simple-salesforce sends it as a string.
            jwt.decode(
                assertion,
                _public_key(app.certificate_pem),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        aud = str(claims.get("aud", "")).rstrip("/")
        if aud not in self.jwt_audiences:  # checked whatever host the assertion came to
            raise OAuthError("invalid_grant", "audience is invalid")
        try:
            exp = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        now = time.time()  # JWT claims are wall-clock, not sandbox-clock
        if exp <= now or exp > now + JWT_MAX_AHEAD_SECONDS:
            raise OAuthError("invalid_grant", "expired authorization code")
        username = str(claims.get("sub", ""))
        if username.lower() not in self.users:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return app, self.users[username.lower()].username

    def _check_password(self, username: str, password: str) -> str:
        user = self.users.get(username.lower())
        expected = None if user is None else user.password + user.security_token
        if expected is None or not hmac.compare_digest(expected, password):
            raise OAuthError("invalid_grant", "authentication failure")
        assert user is not None
        return user.username

    # --- SOAP login (simple-salesforce's username/password flow) ---------------------------

    def soap_login(self, body: bytes, instance_url: str, version: str) -> tuple[int, str]:
        try:
            root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError:
            return 500, _soap_fault("INVALID_LOGIN", "INVALID_LOGIN: malformed login request")
        username = _first_text(root, "username")
        password = _first_text(root, "password")
        try:
            username = self._check_password(username, password)
        except OAuthError:
            return 500, _soap_fault(
                "INVALID_LOGIN",
                "INVALID_LOGIN: Invalid username, password, security token; or user locked out.",
            )
        token = self.issue(username, "soap-login")
        user_id = self.user_ids[username.lower()]
        return 200, _login_response(instance_url, version, token, user_id, self.org_id, username)


def _first_text(root: Any, local: str) -> str:
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == local:
            return str(element.text or "")
    return ""


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )


def _login_response(
    instance_url: str, version: str, token: str, user_id: str, org_id: str, username: str
) -> str:
    server = f"{instance_url}/services/Soap/u/{version}/{org_id[:15]}"
    meta = f"{instance_url}/services/Soap/m/{version}/{org_id[:15]}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse>'
        f"<result><metadataServerUrl>{meta}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{server}</serverUrl><sessionId>{escape(token)}</sessionId>"
        f"<userId>{user_id}</userId><userInfo><organizationId>{org_id}</organizationId>"
        f"<userName>{escape(username)}</userName><userId>{user_id}</userId>"
        "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
    )
