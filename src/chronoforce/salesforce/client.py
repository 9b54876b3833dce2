"""`SalesforceClient`: the few Salesforce operations the pipeline uses, over one `Connection`.

Queries stream page by page, writes go in sObject Collections of at most 200 records with one
result per record in input order, and label files go up as ContentVersions. It must never raise
for one refused record of a collection (that record's `RecordResult` says why) and never log a
token; every call is counted by kind so tests can hold the pipeline to an API budget.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import quote, urlencode

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from chronoforce.config import Settings
from chronoforce.domain.errors import (
    ChronoforceError,
    RateLimitedError,
    SalesforceUnavailableError,
    SalesforceValidationError,
    TransientError,
)
from chronoforce.logs import get_logger
from chronoforce.salesforce import soql
from chronoforce.salesforce.connection import TRANSIENT_CODES, Connection, connect, translate
from chronoforce.salesforce.fit import Fitted, fit_record
from chronoforce.salesforce.limits import ApiUsage
from chronoforce.salesforce.transport import OnCall

COLLECTION_SIZE = 200  # sObject Collections limit per request (REST API reference)
# Of a Composite call's 25 subrequests, up to 5 may be sObject Collections or queries [D]
# (REST API Developer Guide, "Send Multiple Requests Using Composite", 242.0).
COMPOSITE_COLLECTIONS = 5
log = get_logger(component="salesforce")
Operation = Literal["create", "update", "upsert"]


@dataclass(frozen=True)
class RecordError:
    status_code: str
    message: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordResult:
    """The outcome of one record of a collection call; `notes` says what was made to fit."""

    id: str | None
    success: bool
    errors: list[RecordError] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    @property
    def retryable(self) -> bool:
        """True when every error is a transient one (a locked row, a busy server)."""
        return not self.success and all(e.status_code in TRANSIENT_CODES for e in self.errors)

    def error(self, record_id: str = "", operation: str = "") -> ChronoforceError | None:
        """This record's failure as a chronoforce error (None when it succeeded)."""
        if self.success:
            return None
        first = self.errors[0] if self.errors else RecordError("UNKNOWN", "refused")
        cls = SalesforceUnavailableError if self.retryable else SalesforceValidationError
        return cls(
            first.message,
            code=first.status_code,
            record_id=record_id or (self.id or ""),
            field=",".join(first.fields),
            operation=operation,
            response_payload=json.dumps([e.__dict__ for e in self.errors]),
        )


def _record_result(raw: Mapping[str, Any]) -> RecordResult:
    errors = [
        RecordError(
            status_code=str(e.get("statusCode") or e.get("errorCode") or "UNKNOWN"),
            message=str(e.get("message", "")),
            fields=tuple(str(f) for f in e.get("fields") or ()),
        )
        for e in raw.get("errors") or ()
    ]
    return RecordResult(id=raw.get("id"), success=bool(raw.get("success")), errors=errors)


@dataclass(frozen=True)
class CollectionRequest:
    """One sObject Collections call of `send_all`: at most 200 records of one object."""

    op: Operation | str
    sobject: str
    records: Sequence[Mapping[str, Any]]
    external_id_field: str | None = None


@dataclass(frozen=True)
class QueryRequest:
    """One SOQL query of `send_all` (its records, every page)."""

    soql: str


Request = CollectionRequest | QueryRequest
Outcome = list[RecordResult] | list[dict[str, Any]] | ChronoforceError


@dataclass(frozen=True)
class _Prepared:
    """A collection fitted to the org's describe: records it refuses here (unknown fields),
    the others in chunks of 200; `results` puts the answers back in input order."""

    operation: str
    path: str
    method: str
    fitted: list[Fitted]
    refused: dict[int, RecordResult]
    sendable: list[int]
    chunks: list[list[dict[str, Any]]]

    def results(self, sent: Sequence[RecordResult]) -> list[RecordResult]:
        by_index = dict(zip(self.sendable, sent, strict=True))
        results = []
        for i in range(len(self.fitted)):
            result = self.refused.get(i) or by_index[i]
            if self.fitted[i].notes:
                result = RecordResult(
                    result.id, result.success, result.errors, tuple(self.fitted[i].notes)
                )
            results.append(result)
        return results


def _sub_error(status: int, body: Any, operation: str) -> ChronoforceError:
    """A composite subrequest's refusal as the error a call of its own would raise
    (`connection.translate`: 403 REQUEST_LIMIT_EXCEEDED, 401, 5xx, a validation error)."""
    error = translate(SalesforceError("composite", status or 503, "composite", body), operation)
    return error


def _whole_call(errors: Sequence[Exception]) -> bool:
    """The group's one call failed on the way (unreachable, 5xx, a session or the budget):
    the same transient error for all its requests, not one answer per subrequest."""
    return isinstance(errors[0], TransientError) and all(e is errors[0] for e in errors)


class SalesforceClient:
    """Facade over one org; thread-safe as far as requests sessions are."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._describes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_call: OnCall | None = None, pause_s: float | None = None
    ) -> SalesforceClient:
        """`pause_s`: how long the API budget refuses calls once exhausted (worker's
        `salesforce_pause_s`); None: the budget's default."""
        config, secrets = settings.salesforce, settings.secrets
        return cls(connect(config, secrets, on_call=on_call, pause_s=pause_s))

    def close(self) -> None:
        """Close pooled connections (the client is not usable afterwards)."""
        self.connection.close()

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ---------------------------------------------------------------------------

    def query_iter(
        self, query: str, *, include_deleted: bool = False, batch_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of the query, fetched one page (≤ 2,000 records) at a time."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        page = self.connection.call(
            "query",
            lambda sf: sf.query(query, include_deleted=include_deleted, headers=headers),
        )
        while True:
            yield from page.get("records", [])
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            page = self.connection.call(
                "query", partial(_query_more, url=str(page["nextRecordsUrl"]), headers=headers)
            )

    def get(self, sobject: str, record_id: str, fields: Sequence[str] = ()) -> dict[str, Any]:
        """One record by id (all fields, or only `fields`)."""
        path = f"sobjects/{soql.field_name(sobject)}/{soql.record_id(record_id)}"
        params = {"fields": ",".join(soql.field_name(f) for f in fields)} if fields else None
        result = self.connection.call("get", lambda sf: sf.restful(path, params=params))
        return dict(result or {})

    def prefetch(self, sobjects: Sequence[str]) -> None:
        """Describe these objects now (start-up), so writes fit the org's fields at no cost."""
        for name in sobjects:
            self.describe(name)

    def describe(self, sobject: str) -> dict[str, Any]:
        """The object's describe (fields, types, relationships), fetched once per client."""
        name = soql.field_name(sobject)
        with self._lock:
            cached = self._describes.get(name)
        if cached is not None:
            return cached
        result = self.connection.call(
            "describe", lambda sf: sf.restful(f"sobjects/{name}/describe")
        )
        described = dict(result or {})
        with self._lock:
            self._describes[name] = described
        return described

    def describe_global(self) -> dict[str, Any]:
        """`GET /sobjects`: the objects the running user can see, fetched once per client."""
        with self._lock:
            cached = self._describes.get("")
        if cached is not None:
            return cached
        result = self.connection.call("describe", lambda sf: sf.restful("sobjects"))
        described = dict(result or {})
        with self._lock:
            self._describes[""] = described
        return described

    # --- writes --------------------------------------------------------------------------

    def collection(
        self,
        op: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        external_id_field: str | None = None,
        all_or_none: bool = False,
    ) -> list[RecordResult]:
        """Create, update or upsert records, 200 per call; one result per record, in order."""
        prepared = self._prepare(CollectionRequest(op, sobject, records, external_id_field))
        if prepared.refused and all_or_none:
            return [
                prepared.refused.get(i) or RecordResult(None, False, [_ROLLED_BACK])
                for i in range(len(records))
            ]
        sent: list[RecordResult] = []
        for chunk in prepared.chunks:
            sent.extend(
                self._send_split(
                    prepared.operation, prepared.path, prepared.method, chunk, all_or_none
                )
            )
        return prepared.results(sent)

    def send_all(self, requests: Sequence[Request]) -> list[Outcome]:
        """Send collections and queries, in order, up to five to a `/composite` call.

        A Composite call counts as one API call, and up to 5 of its 25 subrequests may be sObject
        Collections or queries [D] (REST API Developer Guide, "Send Multiple Requests Using
        Composite"; REAL-ORG-FACTS.md §2.2). allOrNone is false, so each subrequest commits on its
        own. Per request, in order: the collection's `RecordResult`s, the query's records, or the
        error that kept it from being sent or answered. A whole-collection refusal (HTTP 400) is
        split as `collection` splits it; a refused or failed call gives its error to its requests
        and to every request after it, which are not sent.
        """
        outcomes: list[Outcome | None] = [None] * len(requests)
        parts: list[tuple[int, Request, _Prepared | None, list[dict[str, Any]] | None]] = []
        for index, request in enumerate(requests):
            if isinstance(request, QueryRequest):
                parts.append((index, request, None, None))
                continue
            prepared = self._prepare(request)
            if len(prepared.chunks) > 1:
                raise ValueError("a request of send_all holds at most 200 records")
            if not prepared.chunks:
                outcomes[index] = prepared.results([])
                continue
            parts.append((index, request, prepared, prepared.chunks[0]))
        failure: ChronoforceError | None = None
        for start in range(0, len(parts), COMPOSITE_COLLECTIONS):
            group = parts[start : start + COMPOSITE_COLLECTIONS]
            if failure is not None:
                for index, *_ in group:
                    outcomes[index] = failure
                continue
            for index, outcome in zip(
                [index for index, *_ in group], self._send_group(group), strict=True
            ):
                outcomes[index] = outcome
            errors = [o for o in (outcomes[i] for i, *_ in group) if isinstance(o, Exception)]
            limited = [e for e in errors if isinstance(e, RateLimitedError)]
            if limited:
                failure = limited[0]
            elif errors and len(errors) == len(group) and _whole_call(errors):
                failure = SalesforceUnavailableError(  # the call failed: the rest waits
                    f"not sent: an earlier call of the flush failed ({errors[0].code})",
                    operation="composite",
                )
        return [o if o is not None else [] for o in outcomes]

    def _send_group(
        self, group: Sequence[tuple[int, Request, _Prepared | None, list[dict[str, Any]] | None]]
    ) -> list[Outcome]:
        """One call for these requests (a Composite one for several); never raises: each
        request gets its answer or the error that kept it from one. A Composite call refused
        as a whole (a 4xx other than the budget's) is tried again request by request."""
        if len(group) == 1:
            _, one, fitted, chunk = group[0]
            try:
                return [self._send_one(one, fitted, chunk)]
            except ChronoforceError as exc:
                return [exc]
        try:
            answer = self._post_composite(group)
        except SalesforceValidationError as exc:
            log.warning("composite refused as a whole: one call per request", code=exc.code)
            return [o for part in group for o in self._send_group([part])]
        except ChronoforceError as exc:
            return [exc for _ in group]
        replies = {
            str(r.get("referenceId")): r
            for r in (answer or {}).get("compositeResponse", [])
            if isinstance(r, dict)
        }
        outcomes: list[Outcome] = []
        for k, (_, request, prepared, chunk) in enumerate(group):
            try:  # a split or a query's next pages may call again, and fail alone
                outcome = self._sub_outcome(replies.get(f"r{k}"), request, prepared, chunk)
            except ChronoforceError as exc:
                outcome = exc
            outcomes.append(outcome)
        return outcomes

    def _prepare(self, request: CollectionRequest) -> _Prepared:
        op, sobject = request.op, request.sobject
        if op not in ("create", "update", "upsert"):
            raise ValueError(f"unknown collection operation {op!r}")
        if op == "upsert" and not request.external_id_field:
            raise ValueError("upsert needs external_id_field")
        name = soql.field_name(sobject)
        path, method = "composite/sobjects", {"create": "POST"}.get(op, "PATCH")
        if op == "upsert":
            path += f"/{name}/{soql.field_name(request.external_id_field or '')}"
        fields = self.known_fields(name)
        records = request.records
        fitted = [fit_record(name, r, fields) for r in records]
        refused = {
            i: _unknown_fields(name, f, records[i]) for i, f in enumerate(fitted) if f.unknown
        }
        sendable = [i for i in range(len(records)) if i not in refused]
        chunks = [
            [_with_type(fitted[i].record, name) for i in sendable[start : start + COLLECTION_SIZE]]
            for start in range(0, len(sendable), COLLECTION_SIZE)
        ]
        return _Prepared(f"collection:{op}:{name}", path, method, fitted, refused, sendable, chunks)

    def _send_one(
        self, request: Request, prepared: _Prepared | None, chunk: list[dict[str, Any]] | None
    ) -> Outcome:
        if isinstance(request, QueryRequest):
            return list(self.query_iter(request.soql))
        assert prepared is not None and chunk is not None
        sent = self._send_split(prepared.operation, prepared.path, prepared.method, chunk, False)
        return prepared.results(sent)

    def _post_composite(
        self, group: Sequence[tuple[int, Request, _Prepared | None, list[dict[str, Any]] | None]]
    ) -> Any:
        base = f"/services/data/v{self.connection.sf.sf_version}/"
        subrequests: list[dict[str, Any]] = []
        for k, (_, request, prepared, chunk) in enumerate(group):
            if isinstance(request, QueryRequest):
                query = urlencode({"q": request.soql}, quote_via=quote)
                subrequests.append({"method": "GET", "url": f"{base}query?{query}"})
            else:
                assert prepared is not None
                body = {"allOrNone": False, "records": chunk}
                subrequests.append(
                    {"method": prepared.method, "url": base + prepared.path, "body": body}
                )
            subrequests[-1]["referenceId"] = f"r{k}"
        data = json.dumps({"allOrNone": False, "compositeRequest": subrequests}, default=str)
        return self.connection.call(
            "composite", lambda sf: sf.restful("composite", method="POST", data=data), write=True
        )

    def _sub_outcome(
        self,
        reply: Mapping[str, Any] | None,
        request: Request,
        prepared: _Prepared | None,
        chunk: list[dict[str, Any]] | None,
    ) -> Outcome:
        """One subrequest's answer as `send_all` gives it."""
        operation = prepared.operation if prepared else "query"
        if reply is None:
            return SalesforceUnavailableError("composite answered no reply", operation=operation)
        status, body = int(reply.get("httpStatusCode") or 0), reply.get("body")
        if isinstance(request, QueryRequest):
            if status != 200 or not isinstance(body, dict):
                return _sub_error(status, body, operation)
            records = list(body.get("records", []))
            if not body.get("done", True) and body.get("nextRecordsUrl"):
                page = self.connection.call(
                    "query", partial(_query_more, url=str(body["nextRecordsUrl"]), headers={})
                )
                records.extend(self._rest_of(page))
            return records
        assert prepared is not None and chunk is not None
        if status == 200 and isinstance(body, list) and len(body) == len(chunk):
            return prepared.results([_record_result(raw) for raw in body])
        error = _sub_error(status, body, operation)
        if isinstance(error, SalesforceValidationError):  # refused as a whole: split it
            halves = self._halves(prepared.operation, prepared.path, prepared.method, chunk, error)
            return prepared.results(halves)
        return error

    def _rest_of(self, page: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            yield from page.get("records", [])
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            page = self.connection.call(
                "query", partial(_query_more, url=str(page["nextRecordsUrl"]), headers={})
            )

    def delete(self, ids: Sequence[str]) -> list[RecordResult]:
        """Delete records by id, 200 per call (DELETE composite/sobjects?ids=…, allOrNone
        false); one result per id, in order."""
        results: list[RecordResult] = []
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = [soql.record_id(i) for i in ids[start : start + COLLECTION_SIZE]]
            params = {"ids": ",".join(chunk), "allOrNone": "false"}
            answer = self.connection.call(
                "collection:delete", partial(_delete, params=params), write=True
            )
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise SalesforceUnavailableError(
                    f"delete answered {type(answer).__name__} for {len(chunk)} ids",
                    operation="collection:delete",
                )
            results.extend(_record_result(raw) for raw in answer)
        return results

    def known_fields(self, sobject: str) -> dict[str, dict[str, Any]] | None:
        """Fields (lower-case name → describe) of an object whose describe was read already
        (`describe` or `prefetch`); None otherwise: this never costs an API call."""
        with self._lock:
            described = self._describes.get(soql.field_name(sobject))
        if described is None:
            return None
        return {str(f.get("name", "")).lower(): f for f in described.get("fields", [])}

    def _send_split(
        self,
        operation: str,
        path: str,
        method: str,
        records: list[dict[str, Any]],
        all_or_none: bool,
    ) -> list[RecordResult]:
        """Send; a whole-request 400 (an unknown field, or one FLS hides: they look the same)
        is split in halves until the records at fault are alone, so the others go on."""
        try:
            return self._send(operation, path, method, records, all_or_none)
        except SalesforceValidationError as exc:
            if all_or_none:
                raise
            return self._halves(operation, path, method, records, exc)

    def _halves(
        self,
        operation: str,
        path: str,
        method: str,
        records: list[dict[str, Any]],
        exc: ChronoforceError,
    ) -> list[RecordResult]:
        """A collection refused as a whole: its halves are sent until the records at fault
        are alone, so the others go on."""
        if len(records) == 1:
            error = RecordError(exc.code, exc.message, _fields_named(exc))
            return [RecordResult(_record_key(records[0]), False, [error])]
        log.warning(
            "collection refused as a whole: splitting it",
            operation=operation,
            records=len(records),
            code=exc.code,
        )
        half = len(records) // 2
        return self._send_split(operation, path, method, records[:half], False) + self._send_split(
            operation, path, method, records[half:], False
        )

    def _send(
        self,
        operation: str,
        path: str,
        method: str,
        records: list[dict[str, Any]],
        all_or_none: bool,
    ) -> list[RecordResult]:
        body = json.dumps({"allOrNone": all_or_none, "records": records}, default=str)
        answer = self.connection.call(
            operation, lambda sf: sf.restful(path, method=method, data=body), write=True
        )
        if not isinstance(answer, list) or len(answer) != len(records):
            raise SalesforceUnavailableError(
                f"collection answered {type(answer).__name__} for {len(records)} records",
                operation=operation,
            )
        return [_record_result(raw) for raw in answer]

    # --- files ---------------------------------------------------------------------------

    def upload_file(
        self, title: str, filename: str, data: bytes, first_publish_location_id: str
    ) -> tuple[str, str]:
        """A ContentVersion published on the record; returns (version id, document id)."""
        body = json.dumps(
            {
                "Title": title,
                "PathOnClient": filename,
                "VersionData": base64.b64encode(data).decode("ascii"),
                "FirstPublishLocationId": soql.record_id(first_publish_location_id),
            }
        )
        created = self.connection.call(
            "upload_file",
            lambda sf: sf.restful("sobjects/ContentVersion", method="POST", data=body),
            write=True,
        )
        version_id = str((created or {}).get("id", ""))
        version = self.get("ContentVersion", version_id, ["ContentDocumentId"])
        return version_id, str(version.get("ContentDocumentId", ""))

    def link_file(
        self,
        content_document_id: str,
        linked_entity_ids: Sequence[str],
        share_type: str = "V",
        visibility: str = "AllUsers",
    ) -> list[RecordResult]:
        """Share the document with more records (ContentDocumentLink), batched in collections."""
        links = [
            {
                "ContentDocumentId": soql.record_id(content_document_id),
                "LinkedEntityId": soql.record_id(entity),
                "ShareType": share_type,
                "Visibility": visibility,
            }
            for entity in linked_entity_ids
        ]
        return self.collection("create", "ContentDocumentLink", links)

    # --- budget --------------------------------------------------------------------------

    def calls(self) -> dict[str, int]:
        """HTTP calls made so far by kind (auth, query, collection, describe, file, record…)."""
        return self.connection.session.counts()

    def api_calls(self) -> int:
        """Calls that count against the org's API budget (token requests do not)."""
        return sum(n for kind, n in self.calls().items() if kind != "auth")

    @property
    def usage(self) -> ApiUsage | None:
        """The org's API usage from the last `Sforce-Limit-Info` header seen."""
        return self.connection.session.budget.usage


def _delete(sf: Salesforce, *, params: dict[str, str]) -> Any:
    return sf.restful("composite/sobjects", params=params, method="DELETE")


def _query_more(sf: Salesforce, *, url: str, headers: dict[str, str]) -> Any:
    return sf.query_more(url, identifier_is_url=True, headers=headers)


_ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "not sent: another record of the call was refused"
)
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")


def _unknown_fields(sobject: str, fitted: Fitted, record: Mapping[str, Any]) -> RecordResult:
    """A record naming fields the org's describe lacks: refused here, never sent."""
    errors = [
        RecordError(
            "INVALID_FIELD",
            f"No such column '{name}' on sobject of type {sobject}: not in this org's describe "
            "(the field is missing, or field-level security hides it from the integration user)",
            (name,),
        )
        for name in fitted.unknown
    ]
    return RecordResult(_record_key(record), False, errors)


def _record_key(record: Mapping[str, Any]) -> str | None:
    value = record.get("Id") or record.get("id")
    return str(value) if value else None


def _fields_named(exc: ChronoforceError) -> tuple[str, ...]:
    if exc.field:
        return tuple(f for f in exc.field.split(",") if f)
    found = _NO_SUCH_COLUMN.search(exc.message)
    return (found.group(1),) if found else ()


def _with_type(record: Mapping[str, Any], sobject: str) -> dict[str, Any]:
    out = dict(record)
    attributes = dict(out.get("attributes") or {})
    attributes.setdefault("type", sobject)
    out["attributes"] = attributes
    return out


def composite_calls(requests: int) -> int:
    """The API calls `send_all` makes for this many collections and queries (five to a
    Composite call, a lone one as a call of its own)."""
    return -(-requests // COMPOSITE_COLLECTIONS)


def send_all(port: Any, requests: Sequence[Request]) -> list[Outcome]:
    """`SalesforceClient.send_all` on a port that has it; on another (a test's in-memory
    org), one call per request, with the same outcomes."""
    own = getattr(port, "send_all", None)
    if own is not None:
        return list(own(requests))
    outcomes: list[Outcome] = []
    for request in requests:
        try:
            if isinstance(request, QueryRequest):
                outcomes.append(list(port.query_iter(request.soql)))
            else:
                outcomes.append(
                    list(
                        port.collection(
                            request.op,
                            request.sobject,
                            request.records,
                            external_id_field=request.external_id_field,
                        )
                    )
                )
        except ChronoforceError as exc:
            outcomes.append(exc)
    return outcomes
