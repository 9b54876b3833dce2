"""The HTTPS face of the sandbox: Starlette routes for OAuth, SOAP login, the REST API and the
loopback-only admin endpoints under /_sandbox/.

Sessions, the API budget, `Sforce-Limit-Info` and injected faults are applied here, once per
HTTP request. It never logs request bodies or headers (they carry tokens and passwords).
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from chronoforce.sandbox.salesforce.auth import SHARED_LOGIN_HOSTS, OAuthError
from chronoforce.sandbox.salesforce.errors import ApiError, invalid_session, not_found
from chronoforce.sandbox.salesforce.rest import VERSIONS, Reply, Request, version_list

if TYPE_CHECKING:
    from chronoforce.sandbox.salesforce.sandbox import SalesforceSandbox

JSON_TYPE = "application/json;charset=UTF-8"
_LOGIN_HOST_PREFIX = re.compile(rb"^/[^/]+\.salesforce\.com(?=/)")


class LoginHostPaths:
    """Serve `/login.salesforce.com/services/…` as `/services/…`.

    simple-salesforce builds login URLs as `https://{domain}.salesforce.com/…`; with
    `domain="localhost:PORT/login"` they land here, on loopback, with TLS verified.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            found = _LOGIN_HOST_PREFIX.match(raw)
            if found:
                raw = _LOGIN_HOST_PREFIX.sub(b"", raw)
                state = dict(scope.get("state") or {})
                state["login_host"] = found.group(0).decode().strip("/")
                scope = dict(
                    scope,
                    raw_path=raw,
                    path=_LOGIN_HOST_PREFIX.sub(b"", scope["path"].encode()).decode(),
                    state=state,
                )
        await self.app(scope, receive, send)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status, headers=headers, media_type=JSON_TYPE if content else None)


def instance_url(request: HttpRequest) -> str:
    return f"https://{request.headers.get('host', 'localhost')}"


def build_app(sb: SalesforceSandbox) -> ASGIApp:
    async def versions(request: HttpRequest) -> Response:
        return _json(200, version_list())

    async def token(request: HttpRequest) -> Response:
        sb.count("auth")
        form = {k: str(v) for k, v in (await request.form()).items()}
        auth_header = request.headers.get("authorization", "")
        basic = auth_header[6:] if auth_header.lower().startswith("basic ") else None
        try:
            host = str(getattr(request.state, "login_host", ""))
            shared = host if host.lower() in SHARED_LOGIN_HOSTS else ""
            body = sb.auth.token(form, basic, instance_url(request), shared)
        except OAuthError as exc:
            return _json(exc.status, {"error": exc.error, "error_description": exc.description})
        return _json(200, body)

    async def soap_login(request: HttpRequest) -> Response:
        sb.count("auth")
        status, xml = sb.auth.soap_login(
            await request.body(), instance_url(request), request.path_params["version"]
        )
        return Response(xml, status, media_type="text/xml;charset=UTF-8")

    async def api(request: HttpRequest) -> Response:
        return await _api(sb, request)

    routes = [
        Route("/services/data", versions, methods=["GET"]),
        Route("/services/data/", versions, methods=["GET"]),
        Route("/services/oauth2/token", token, methods=["POST"]),
        Route("/services/Soap/u/{version}", soap_login, methods=["POST"]),
        Route("/services/Soap/u/{version}/{org}", soap_login, methods=["POST"]),
        Route(
            "/services/data/v{version}/{rest:path}",
            api,
            methods=["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"],
        ),
        Route("/services/data/v{version}", api, methods=["GET"]),
    ]
    from chronoforce.sandbox.salesforce.admin import admin_routes

    app = Starlette(routes=[*routes, *admin_routes(sb)])
    return LoginHostPaths(app)


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "oauth") and value.strip() else None


async def _api(sb: SalesforceSandbox, request: HttpRequest) -> Response:
    version = request.path_params["version"]
    if version not in VERSIONS:
        error = not_found()
        return _json(404, [error.rest()])
    token = _bearer(request)
    on_login_host = str(getattr(request.state, "login_host", "")).lower() in SHARED_LOGIN_HOSTS
    # Data calls belong on the token's instance_url, never on the shared login host (R26; the
    # answer is our choice: the documents do not say what the login host answers).
    if token is None or on_login_host or not sb.validate_token(token):
        return _json(401, [invalid_session().rest()], {"WWW-Authenticate": "Token"})
    raw = request.scope.get("raw_path") or request.url.path.encode()
    raw_path = raw.decode().split("?", 1)[0]
    path = re.sub(r"^/services/data/v[^/]+/?", "", raw_path)
    category = sb.rest.category(request.method, path)
    refused = sb.charge(category)
    if refused is not None:
        return _json(refused.status, [refused.rest()], sb.limit_headers())
    await sb.faults.delay()
    if sb.faults.unavailable():
        error = ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        return _json(503, [error.rest()], sb.limit_headers())
    try:
        body = await _body(request)
    except ValueError as exc:
        return _json(
            400, [{"message": str(exc), "errorCode": "JSON_PARSER_ERROR"}], sb.limit_headers()
        )
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
    sub = Request(
        request.method, path, parse_qs(request.url.query, keep_blank_values=True), body, headers
    )
    reply = sb.serve(version, sub)
    return _reply(reply, sb.limit_headers())


def _reply(reply: Reply, headers: dict[str, str]) -> Response:
    if reply.raw is not None:
        return Response(reply.raw, reply.status, headers={**headers, **reply.headers})
    return _json(reply.status, reply.body, {**headers, **reply.headers})


async def _body(request: HttpRequest) -> Any:
    if request.method in ("GET", "HEAD"):
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        return await _multipart(request)
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Unexpected character ('{raw.decode(errors='replace')[exc.pos : exc.pos + 1]}'): "
            f"was expecting a JSON value at [line:{exc.lineno}, column:{exc.colno}]"
        ) from None


async def _multipart(request: HttpRequest) -> Any:
    """Salesforce's multipart insert: a JSON `entity_content` part plus the binary part."""
    form = await request.form(max_part_size=64 * 1024 * 1024)
    entity: dict[str, Any] = {}
    binary: bytes | None = None
    binary_name = "VersionData"
    for name, value in form.multi_items():
        if isinstance(value, str):
            if name.startswith("entity"):
                entity = json.loads(value)
            continue
        data = await value.read()
        if name.startswith("entity"):
            entity = json.loads(data)
        else:
            binary, binary_name = data, name
    if binary is not None:
        entity[binary_name] = base64.b64encode(binary).decode()
    return entity
