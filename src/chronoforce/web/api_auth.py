"""Who may call the API: OAuth2 client credentials (tokens we issue) or a static key per client.

`POST /api/v1/oauth/token` trades a configured client's secret for a short-lived bearer token;
`require(scope)` guards each endpoint (401 without valid credentials, 403 without the scope) and
`LoggedRoute` logs every call with its client id. Secrets and tokens are only kept as hashes:
never log, store or echo one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Form, Header, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import delete

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.logs import get_logger
from chronoforce.store.db import Store
from chronoforce.store.models import ApiToken
from chronoforce.web.api_config import ApiClient, ApiConfig, sha256_hex
from chronoforce.web.api_models import status_of
from chronoforce.web.clock import clock_of

log = get_logger(component="api")

TOKEN_PREFIX = "cft_"  # noqa: S105 - a prefix, not a secret
_hasher = PasswordHasher()
# A dummy hash checked when the client id is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(Exception):
    """Answered 401 (no or bad credentials) or 403 (valid client, scope missing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    client_id: str
    scopes: frozenset[str]
    via: str  # "token" or "api_key"


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - RFC 6749 token type
    expires_in: int
    scope: str


class OAuthError(BaseModel):
    error: str
    error_description: str = ""


def _config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.api_config
    return config


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _client(config: ApiConfig, client_id: str) -> ApiClient | None:
    return next((c for c in config.clients if c.id == client_id), None)


def _secret_matches(client: ApiClient | None, secret: str) -> bool:
    """argon2 for client secrets: people may pick them, so a slow hash protects weak ones."""
    stored = client.client_hash if client is not None and client.client_hash else ""
    try:
        _hasher.verify(stored or _DUMMY_HASH, secret)
    except (VerificationError, InvalidHashError):
        return False
    return bool(stored)


def issue_token(
    store: Store,
    client: ApiClient,
    scopes: tuple[str, ...],
    ttl_s: int,
    now: dt.datetime | None = None,
) -> str:
    """A new bearer token; `now`: the app's clock (web/clock.py), the system's if not given."""
    # Tokens are 256 random bits: a plain SHA-256 digest cannot be reversed or guessed, and a
    # digest lookup stays one indexed read per call (argon2 would cost ~50 ms a request).
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = now or SYSTEM_CLOCK.now()
    with store.session() as session:
        session.execute(delete(ApiToken).where(ApiToken.expires_at < now))
        session.add(
            ApiToken(
                digest=sha256_hex(token),
                client_id=client.id,
                scopes=list(scopes),
                expires_at=now + dt.timedelta(seconds=ttl_s),
            )
        )
    return token


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return user, password


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Basic"} if status == 401 else None
    body = OAuthError(error=error, error_description=description).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


class LoggedRoute(APIRoute):
    """Every API call logged once, with its client id, status and duration (never a secret)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def logged(request: Request) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except Exception as exc:
                status = status_of(exc)
                raise
            finally:
                log.info(
                    "api call",
                    client_id=getattr(request.state, "client_id", ""),
                    method=request.method,
                    path=request.url.path,
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )

        return logged


router = APIRouter(prefix="/api/v1", tags=["auth"], route_class=LoggedRoute)


@router.post(
    "/oauth/token",
    response_model=TokenAnswer,
    responses={400: {"model": OAuthError}, 401: {"model": OAuthError}},
    summary="OAuth2 client credentials: a bearer token for a configured client",
)
async def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Any:
    """RFC 6749 §4.4: client id and secret in the form or as HTTP Basic; `scope` narrows."""
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    basic = _basic(authorization)
    cid, secret = basic if basic else (client_id or "", client_secret or "")
    config = _config(request)
    client = _client(config, cid)
    if not await run_in_threadpool(_secret_matches, client, secret) or client is None:
        log.info("api token refused", client_id=cid[:80])
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    wanted = tuple(scope.split()) if scope else client.scopes
    if not set(wanted) <= set(client.scopes):
        return _oauth_error(400, "invalid_scope", f"allowed: {' '.join(client.scopes)}")
    issued = await run_in_threadpool(
        issue_token, _store(request), client, wanted, config.access_ttl_s, clock_of(request).now()
    )
    log.info("api token issued", client_id=client.id, scopes=list(wanted))
    return TokenAnswer(access_token=issued, expires_in=config.access_ttl_s, scope=" ".join(wanted))


def _from_token(store: Store, token: str, now: dt.datetime | None = None) -> Caller | None:
    with store.session() as session:
        row = session.get(ApiToken, sha256_hex(token))
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
        if expires <= (now or SYSTEM_CLOCK.now()):
            return None
        return Caller(row.client_id, frozenset(row.scopes), "token")


def _from_key(config: ApiConfig, key: str) -> Caller | None:
    digest = sha256_hex(key)
    for client in config.clients:
        if client.key_sha256 and hmac.compare_digest(client.key_sha256, digest):
            return Caller(client.id, frozenset(client.scopes), "api_key")
    return None


def authenticate(request: Request) -> Caller:
    """The caller from `Authorization: Bearer …` (token or API key) or `X-API-Key`."""
    header = request.headers.get("authorization", "")
    key = request.headers.get("x-api-key", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not bearer and not key:
        raise AuthError(401, "missing credentials: send Authorization: Bearer <token> or X-API-Key")
    caller = None
    if bearer.startswith(TOKEN_PREFIX):
        caller = _from_token(_store(request), bearer, clock_of(request).now())
    caller = caller or _from_key(_config(request), bearer or key)
    if caller is None:
        raise AuthError(401, "invalid or expired credentials")
    request.state.client_id = caller.client_id
    return caller


# Declared so the OpenAPI document shows both ways in; `authenticate` reads the headers itself.
_BEARER = HTTPBearer(
    auto_error=False, description="a token from /api/v1/oauth/token, or an API key"
)
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="a static API key")


def require(scope: str) -> Callable[..., Caller]:
    """A dependency: the authenticated caller, who must hold `scope`."""

    def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
        _key: Annotated[str | None, Security(_API_KEY)] = None,
    ) -> Caller:
        caller = authenticate(request)
        if scope not in caller.scopes:
            raise AuthError(403, f"client {caller.client_id} lacks the scope {scope!r}")
        return caller

    dependency.__name__ = f"require_{scope}"
    return dependency


def auth_error_response(exc: AuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="chronoforce"'} if exc.status == 401 else None
    return JSONResponse(
        {"code": "UNAUTHORIZED" if exc.status == 401 else "FORBIDDEN", "message": exc.message},
        status_code=exc.status,
        headers=headers,
    )
