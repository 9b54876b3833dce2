"""`/composite` (up to 25 dependent subrequests with `@{ref.field}` references) and
`/composite/batch` (up to 25 independent ones).

Subrequests run through the same REST router as top-level calls; the whole call counts as one API
request. It never lets a subrequest reach the admin endpoints or another composite call.

Rules of `/composite` (REST API guide, "Send Multiple Requests Using Composite",
resources_composite_composite_post.htm, 242.0; REAL-ORG-FACTS.md §2.2):
- at most 25 subrequests, of which at most 5 are sObject Collections or query operations
  (Query, QueryAll, query-more);
- sObject Collections are supported inside from API version 43.0 (the collection upsert form
  exists from 46.0, REAL-ORG-FACTS.md §2.1);
- sObject Blob Get is not supported inside.
The answers when these are broken are not documented; ours are in docs/sandbox-salesforce.md.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from chronoforce.sandbox.salesforce.errors import ApiError

if TYPE_CHECKING:
    from chronoforce.sandbox.salesforce.rest import Reply, Rest

MAX_SUBREQUESTS = 25
MAX_COLLECTION_OR_QUERY = 5
COLLECTIONS_SINCE = 43.0
COLLECTION_UPSERT_SINCE = 46.0
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])+)\}")
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Halt(Exception):
    """Undo an allOrNone composite call."""


class _Unresolved(Exception):
    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.reference = reference


def _lookup(results: dict[str, Any], name: str, path: str) -> Any:
    if name not in results:
        raise _Unresolved(name)
    value = results[name]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(f"{name}{path}") from None
    return value


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:  # keep the referenced value's JSON type
            return _lookup(results, whole.group(1), whole.group(2))
        return _REF.sub(lambda m: str(_lookup(results, m.group(1), m.group(2))), value)
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    return value


def _kind(rest: Rest, method: str, url: str) -> str | None:
    """What a subrequest url is for the composite rules: `collection`, `query`, `blob` or None."""
    from chronoforce.sandbox.salesforce.rest import Rest as RestClass
    from chronoforce.sandbox.salesforce.rest import split_url

    _, path, _ = split_url(url)
    try:
        handler, category, params = rest.route(method.upper(), path)
    except ApiError:
        return None
    if category == "collections":
        return "collection"
    if category == "query":
        return "query"
    if handler is RestClass.get_sub:  # sObject Blob Get, or sObject Rows by External ID
        try:
            f = rest.org.sobject(params["t"]).field(params["b"])
        except ApiError:
            return None
        if f is not None and f.type == "base64":
            return "blob"
    return None


def _too_many(count: int) -> ApiError:
    # The cap is documented; the errorCode and message of the refusal are our choice.
    return ApiError(
        400,
        "LIMIT_EXCEEDED",
        f"Composite API allows at most {MAX_COLLECTION_OR_QUERY} sObject Collections or query "
        f"subrequests, got {count}",
    )


def _invalid(message: str) -> Reply:
    from chronoforce.sandbox.salesforce.rest import Reply

    return Reply(400, [{"message": message, "errorCode": "INVALID_URL"}])


def _subrequest(
    rest: Rest, method: str, url: str, body: Any, headers: dict[str, str], composite: bool = False
) -> Reply:
    from chronoforce.sandbox.salesforce.rest import Request, split_url

    version, path, query = split_url(url)
    if version is None or path.startswith("composite/batch") or path.rstrip("/") == "composite":
        return _invalid(f"Invalid subrequest url: {url}")
    if composite:
        kind = _kind(rest, method, url)
        if kind == "blob":
            return _invalid(f"sObject Blob Get is not supported in a composite subrequest: {url}")
        if kind == "collection":
            upsert = method.upper() == "PATCH" and len(path.strip("/").split("/")) == 4
            since = COLLECTION_UPSERT_SINCE if upsert else COLLECTIONS_SINCE
            if float(version) < since:
                return _invalid(
                    f"sObject Collections are supported in a composite subrequest from API "
                    f"version {since}: {url}"
                )
    reply = rest.dispatch(Request(method.upper(), path, query, body, headers))
    if composite and reply.raw is not None:  # binary answers have no place in a JSON response
        return _invalid(f"A binary resource is not supported in a composite subrequest: {url}")
    return reply


def _entries(body: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise ApiError(400, "JSON_PARSER_ERROR", f"The request body must contain '{key}'.")
    entries = body[key]
    if len(entries) > MAX_SUBREQUESTS:
        raise ApiError(
            400,
            "LIMIT_EXCEEDED",
            f"Composite API allows at most {MAX_SUBREQUESTS} subrequests, got {len(entries)}",
        )
    return [e if isinstance(e, dict) else {} for e in entries]


def run_composite(rest: Rest, body: Any) -> Reply:
    from chronoforce.sandbox.salesforce.rest import Reply

    entries = _entries(body, "compositeRequest")
    # Counted on the urls as sent, before anything runs, so a refused call commits nothing; a url
    # that is one whole `@{ref}` is counted again once resolved (and then everything rolls back).
    capped = sum(
        _kind(rest, str(e.get("method", "GET")), str(e.get("url", ""))) in ("collection", "query")
        for e in entries
    )
    if capped > MAX_COLLECTION_OR_QUERY:
        raise _too_many(capped)
    all_or_none = bool(body.get("allOrNone", False))
    results: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    try:
        with rest.org.store.transaction():
            failed = False
            counted = 0
            for entry in entries:
                reference = str(entry.get("referenceId", ""))
                if failed and all_or_none:
                    responses.append(_halted(reference))
                    continue
                try:
                    url = _substitute(str(entry.get("url", "")), results)
                    sub_body = _substitute(entry.get("body"), results)
                except _Unresolved as exc:
                    failed = True
                    responses.append(_unresolved(reference, exc.reference))
                    continue
                method = str(entry.get("method", "GET"))
                if _kind(rest, method, url) in ("collection", "query"):
                    counted += 1
                    if counted > MAX_COLLECTION_OR_QUERY:
                        raise _too_many(counted)
                reply = _subrequest(
                    rest,
                    method,
                    url,
                    sub_body,
                    {k.lower(): str(v) for k, v in (entry.get("httpHeaders") or {}).items()},
                    composite=True,
                )
                if reply.status >= 400:
                    failed = True
                else:
                    results[reference] = reply.body
                responses.append(
                    {
                        "body": reply.body,
                        "httpHeaders": reply.headers,
                        "httpStatusCode": reply.status,
                        "referenceId": reference,
                    }
                )
            if failed and all_or_none:
                raise _Halt
    except _Halt:
        responses = [
            r if r["httpStatusCode"] >= 400 else _halted(r["referenceId"]) for r in responses
        ]
    return Reply(200, {"compositeResponse": responses})


def _halted(reference: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }


def _unresolved(reference: str, missing: str) -> dict[str, Any]:
    message = (
        f"Invalid reference specified. No value for {missing} found in {missing.split('.')[0]}."
    )
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference,
    }


def run_batch(rest: Rest, body: Any) -> Reply:
    from chronoforce.sandbox.salesforce.rest import Reply

    entries = _entries(body, "batchRequests")
    halt = bool(body.get("haltOnError", False))
    results: list[dict[str, Any]] = []
    has_errors = False
    for entry in entries:
        if has_errors and halt:
            results.append(
                {
                    "statusCode": 412,
                    "result": [
                        {
                            "errorCode": "BATCH_PROCESSING_HALTED",
                            "message": "Batch processing halted per request",
                        }
                    ],
                }
            )
            continue
        url = "/services/data/" + str(entry.get("url", "")).lstrip("/")
        url = re.sub(r"^/services/data/(services/data/)?", "/services/data/", url)
        reply = _subrequest(rest, str(entry.get("method", "GET")), url, entry.get("richInput"), {})
        has_errors = has_errors or reply.status >= 400
        results.append({"statusCode": reply.status, "result": reply.body})
    rest.spend(max(0, len(entries) - 1))  # the HTTP call itself was charged once already
    return Reply(200, {"hasErrors": has_errors, "results": results})


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
