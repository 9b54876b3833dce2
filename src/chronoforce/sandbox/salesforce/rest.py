"""The REST API under /services/data/vNN.N/: a path router over the org's operations.

`Rest.dispatch` is HTTP-framework free so `/composite` and `/composite/batch` run their
subrequests through exactly the same code as top-level requests. Budget, sessions and faults are
the HTTP layer's job (app.py), never this module's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from chronoforce.sandbox.salesforce.collections import Collections
from chronoforce.sandbox.salesforce.describe import describe_object, describe_summary
from chronoforce.sandbox.salesforce.errors import ApiError, RecordErrors, not_found
from chronoforce.sandbox.salesforce.org import DEFAULT_BATCH, MultipleMatches, Org
from chronoforce.sandbox.salesforce.soql import SoqlError, normalize_datetime

VERSIONS = [f"{v}.0" for v in range(50, 63)]
_RELEASES = ["Winter", "Spring", "Summer"]


def version_list(base: str = "") -> list[dict[str, str]]:
    out = []
    for index, version in enumerate(VERSIONS):
        season, year = _RELEASES[index % 3], 21 + index // 3  # v50.0 is Winter '21
        out.append(
            {
                "label": f"{season} '{year}",
                "url": f"{base}/services/data/v{version}",
                "version": version,
            }
        )
    return out


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # binary body (file bytes)


@dataclass
class Request:
    method: str
    path: str  # after /services/data/vNN.N/, still percent-encoded
    query: dict[str, list[str]]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


Handler = Callable[["Rest", Request, dict[str, str]], Reply]
_W = r"[A-Za-z0-9_]+"
_V = r"[^/]+"


def error_reply(exc: Exception) -> Reply:
    if isinstance(exc, RecordErrors):
        return Reply(exc.errors[0].status, [e.rest() for e in exc.errors])
    if isinstance(exc, ApiError):
        return Reply(exc.status, [exc.rest()])
    if isinstance(exc, SoqlError):
        return Reply(400, [{"message": exc.message, "errorCode": exc.error_code}])
    if isinstance(exc, MultipleMatches):
        return Reply(300, exc.urls)
    raise exc


class Rest:
    def __init__(self, org: Org, limits: Callable[[], dict[str, Any]]) -> None:
        self.org = org
        self.limits = limits
        # `/composite/batch` spends one API request per subrequest, the call itself included
        # (REST API guide, "Composite Batch"); the sandbox sets this to charge the extra ones.
        self.spend: Callable[[int], None] = lambda count: None
        self.view_setup = True  # the integration user has View Setup and Configuration
        self.collections = Collections(org)
        self._describe: dict[tuple[str, str], dict[str, Any]] = {}
        self.routes: list[tuple[re.Pattern[str], dict[str, tuple[Handler, str]]]] = [
            (re.compile(p), methods) for p, methods in _ROUTES
        ]

    def route(self, method: str, path: str) -> tuple[Handler, str, dict[str, str]]:
        """Handler, stats category and path parameters; raises 404/405 ApiErrors."""
        for pattern, methods in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method not in methods:
                allowed = ",".join(methods)
                raise ApiError(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are {allowed}",
                )
            handler, category = methods[method]
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            return handler, category, params
        raise not_found()

    def category(self, method: str, path: str) -> str:
        try:
            _, category, params = self.route(method, path)
        except ApiError:
            return "other"
        if category == "sobject_create" and params.get("t", "").lower() == "contentversion":
            return "files"
        return category

    def dispatch(self, request: Request) -> Reply:
        try:
            handler, _, params = self.route(request.method, request.path)
            return handler(self, request, params)
        except (ApiError, RecordErrors, SoqlError, MultipleMatches) as exc:
            return error_reply(exc)

    # --- handlers ----------------------------------------------------------------------------

    def resources(self, request: Request, params: dict[str, str]) -> Reply:
        base = f"/services/data/v{self.org.version}"
        names = ["sobjects", "query", "queryAll", "composite", "limits"]
        return Reply(200, {name: f"{base}/{name}" for name in names})

    def get_limits(self, request: Request, params: dict[str, str]) -> Reply:
        if not self.view_setup:
            # `/limits` needs "View Setup and Configuration" (REST API guide, Limits); the
            # errorCode and wording of the refusal are our choice (not documented).
            raise ApiError(
                403,
                "INSUFFICIENT_ACCESS",
                "The user needs the View Setup and Configuration permission to read limits.",
            )
        return Reply(200, self.limits())

    def global_describe(self, request: Request, params: dict[str, str]) -> Reply:
        objects = [describe_summary(o, self.org.version) for o in self.org.schema.values()]
        return Reply(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    def describe(self, request: Request, params: dict[str, str]) -> Reply:
        obj = self.org.sobject(params["t"])
        key = (obj.name, self.org.version)
        if key not in self._describe:
            self._describe[key] = describe_object(obj, self.org.schema, self.org.version)
        return Reply(200, self._describe[key])

    def sobject_info(self, request: Request, params: dict[str, str]) -> Reply:
        obj = self.org.sobject(params["t"])
        return Reply(
            200, {"objectDescribe": describe_summary(obj, self.org.version), "recentItems": []}
        )

    def create(self, request: Request, params: dict[str, str]) -> Reply:
        body = _object_body(request.body)
        record_id = self.org.create(params["t"], body)
        return Reply(201, {"id": record_id, "success": True, "errors": []})

    def get(self, request: Request, params: dict[str, str]) -> Reply:
        fields = request.arg("fields")
        names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
        return Reply(200, self.org.get(params["t"], params["id"], names))

    def update(self, request: Request, params: dict[str, str]) -> Reply:
        self.org.update(params["t"], params["id"], _object_body(request.body))
        return Reply(204)

    def delete(self, request: Request, params: dict[str, str]) -> Reply:
        self.org.delete(params["t"], params["id"])
        return Reply(204)

    def get_sub(self, request: Request, params: dict[str, str]) -> Reply:
        """`/sobjects/{T}/{id}/{blobField}` (file bytes) or `/sobjects/{T}/{extField}/{value}`."""
        obj = self.org.sobject(params["t"])
        f = obj.field(params["b"])
        if f is not None and f.type == "base64" and obj.name == "ContentVersion":
            data = self.org.version_data(params["a"])
            return Reply(200, raw=data, headers={"Content-Type": "application/octetstream"})
        _name, matches = self.org.upsert_key(obj, params["a"], params["b"])
        if len(matches) > 1:
            raise MultipleMatches([self.org.url(obj.name, i) for i in matches])
        if not matches:
            raise not_found()
        return Reply(200, self.org.get(obj.name, matches[0]))

    def upsert(self, request: Request, params: dict[str, str]) -> Reply:
        record_id, created = self.org.upsert(
            params["t"], params["a"], params["b"], _object_body(request.body)
        )
        body = {"id": record_id, "success": True, "errors": [], "created": created}
        return Reply(201 if created else 200, body)

    def updated(self, request: Request, params: dict[str, str]) -> Reply:
        obj = self.org.sobject(params["t"])
        try:
            start = normalize_datetime(request.arg("start") or "")
            end = normalize_datetime(request.arg("end") or "")
        except ValueError:
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", "invalid start or end") from None
        rows = self.org.store.execute(
            f'SELECT "Id" FROM {obj.table} WHERE "SystemModstamp" >= ? AND "SystemModstamp" <= ? '
            'AND "IsDeleted" = 0 ORDER BY rowid',
            (start, end),
        )
        return Reply(200, {"ids": [r[0] for r in rows], "latestDateCovered": end})

    def query(self, request: Request, params: dict[str, str]) -> Reply:
        soql = request.arg("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "SOQL statement cannot be empty")
        include_deleted = request.path.lower().startswith("queryall")
        return Reply(200, self.org.query(soql, include_deleted, _batch_size(request)))

    def query_more(self, request: Request, params: dict[str, str]) -> Reply:
        return Reply(200, self.org.query_more(params["loc"]))

    def collection(self, request: Request, params: dict[str, str]) -> Reply:
        return self.collections.handle(request.method, request.body, request.query, params)

    def composite(self, request: Request, params: dict[str, str]) -> Reply:
        from chronoforce.sandbox.salesforce.composite import run_composite

        return run_composite(self, request.body)

    def batch(self, request: Request, params: dict[str, str]) -> Reply:
        from chronoforce.sandbox.salesforce.composite import run_batch

        return run_batch(self, request.body)


def _object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(
            400, "JSON_PARSER_ERROR", "The request body must be a JSON object for this resource."
        )
    return body


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
    if not match:
        return DEFAULT_BATCH
    # Salesforce clamps the requested size to 200..2000.
    return max(200, min(2000, int(match.group(1))))


def split_url(url: str) -> tuple[str | None, str, dict[str, list[str]]]:
    """`/services/data/v61.0/sobjects/X?a=b` -> ("61.0", "sobjects/X", {"a": ["b"]})."""
    parts = urlsplit(url)
    match = re.match(r"^/services/data/v(\d+\.\d+)/?(.*)$", parts.path)
    if match is None:
        return None, parts.path, {}
    return match.group(1), match.group(2), parse_qs(parts.query)


_ROUTES: list[tuple[str, dict[str, tuple[Handler, str]]]] = [
    (r"^$", {"GET": (Rest.resources, "other")}),
    (r"^limits/?$", {"GET": (Rest.get_limits, "limits")}),
    (r"^sobjects/?$", {"GET": (Rest.global_describe, "describe")}),
    (
        rf"^sobjects/(?P<t>{_W})/?$",
        {"GET": (Rest.sobject_info, "describe"), "POST": (Rest.create, "sobject_create")},
    ),
    (rf"^sobjects/(?P<t>{_W})/describe/?$", {"GET": (Rest.describe, "describe")}),
    (rf"^sobjects/(?P<t>{_W})/updated/?$", {"GET": (Rest.updated, "sobject_read")}),
    (
        rf"^sobjects/(?P<t>{_W})/(?P<id>{_V})/?$",
        {
            "GET": (Rest.get, "sobject_read"),
            "PATCH": (Rest.update, "sobject_update"),
            "DELETE": (Rest.delete, "sobject_delete"),
        },
    ),
    (
        rf"^sobjects/(?P<t>{_W})/(?P<a>{_W})/(?P<b>{_V})/?$",
        {"GET": (Rest.get_sub, "files"), "PATCH": (Rest.upsert, "sobject_upsert")},
    ),
    (r"^(query|queryAll)/?$", {"GET": (Rest.query, "query")}),
    (r"^(query|queryAll)/(?P<loc>[A-Za-z0-9_-]+)/?$", {"GET": (Rest.query_more, "query")}),
    (
        r"^composite/sobjects/?$",
        {m: (Rest.collection, "collections") for m in ("GET", "POST", "PATCH", "DELETE")},
    ),
    (rf"^composite/sobjects/(?P<t>{_W})/?$", {"GET": (Rest.collection, "collections")}),
    (
        rf"^composite/sobjects/(?P<t>{_W})/(?P<f>{_W})/?$",
        {"PATCH": (Rest.collection, "collections")},
    ),
    (r"^composite/?$", {"POST": (Rest.composite, "composite")}),
    (r"^composite/batch/?$", {"POST": (Rest.batch, "composite")}),
]
