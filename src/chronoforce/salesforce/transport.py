"""The HTTP session every Salesforce call goes through: TLS trust, timeouts, call counts, capture.

It reads `Sforce-Limit-Info` after every response and hands each call, with redacted bodies, to
an optional `on_call` hook. It never interprets errors (connection.py does), and it must never
hand out a token or secret: bodies and URLs are redacted before capture.

The one retry it makes is below HTTP: a pooled keep-alive connection the server closed while it
sat idle fails the next request on it with "Remote end closed connection without response"
before any answer. urllib3 then opens a new connection and sends once more, for a request that
could not have been acted on twice (a connect failure, or a GET/HEAD); a write or a read
timeout is never sent again here (the pipeline retries those, knowing what a write did).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from chronoforce import metrics
from chronoforce.redaction import redact_text
from chronoforce.salesforce.limits import ApiBudget

CAPTURE_CHARS = 32_000  # enough for an error record's payload field, never a whole label file
DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read (seconds)


@dataclass(frozen=True)
class CallInfo:
    """One HTTP exchange with Salesforce as `on_call` receives it (bodies already redacted)."""

    method: str
    url: str
    kind: str
    status: int  # 0 when no response came back
    request_body: str
    response_body: str
    duration_s: float


OnCall = Callable[[CallInfo], None]


def call_kind(method: str, url: str) -> str:
    """auth, query, collection, composite, describe, file, limits or record — for budgets."""
    path = urlsplit(url).path
    if "/services/oauth2/" in path:
        return "auth"
    if "/composite/sobjects" in path:
        return "collection"
    if "/composite" in path:
        return "composite"
    if "/query" in path:
        return "query"
    if path.endswith("/describe") or path.rstrip("/").endswith("/sobjects"):
        return "describe"
    if "/sobjects/ContentVersion" in path and method.upper() == "POST":
        return "file"
    if path.rstrip("/").endswith("/limits"):
        return "limits"
    return "record"


class _StaleConnectionRetry(Retry):
    """One new connection for a request the server never answered; never after a read timeout."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        retry = self.new(read=False) if isinstance(error, ReadTimeoutError) else self
        # With read=False a timed-out request is re-raised: the server may be working on it.
        return Retry.increment(retry, method, url, response, error, _pool, _stacktrace)


def stale_connection_retry() -> Retry:
    return _StaleConnectionRetry(
        total=1,
        connect=1,
        read=1,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=0,
        raise_on_redirect=False,
        raise_on_status=False,
    )


def _capture(body: Any) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = redact_text(text[: 2 * CAPTURE_CHARS])
    return text if len(text) <= CAPTURE_CHARS else text[:CAPTURE_CHARS] + "…[truncated]"


class SalesforceSession(requests.Session):
    """A requests session that counts, times and (optionally) captures every call."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        budget: ApiBudget | None = None,
        on_call: OnCall | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.ca_file = ca_file
        if ca_file is not None:
            self.verify = str(ca_file)  # trust this CA only; verification stays on
        self.budget = budget or ApiBudget()
        self.on_call = on_call
        self.timeout = timeout
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        adapter = HTTPAdapter(max_retries=stale_connection_retry())
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(  # same call as requests, with a default timeout
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        method_s = method.decode() if isinstance(method, bytes) else method
        url_s = url.decode() if isinstance(url, bytes) else url
        kind = call_kind(method_s, url_s)
        kwargs.setdefault("timeout", self.timeout)
        if self.ca_file is not None:
            # Per call: requests lets REQUESTS_CA_BUNDLE override `session.verify` otherwise.
            kwargs.setdefault("verify", str(self.ca_file))
        started = time.perf_counter()
        with self._lock:
            self.calls[kind] += 1
        try:
            response = super().request(method_s, url_s, *args, **kwargs)
        except requests.RequestException as exc:
            self._report(method_s, url_s, kind, 0, exc.request, None, started)
            raise
        self.budget.observe(response.headers.get("Sforce-Limit-Info"))
        self._report(
            method_s, url_s, kind, response.status_code, response.request, response, started
        )
        return response

    def _report(
        self,
        method: str,
        url: str,
        kind: str,
        status: int,
        prepared: Any,
        response: requests.Response | None,
        started: float,
    ) -> None:
        metrics.observe_salesforce_call(kind, status, self.budget.usage)
        if self.on_call is None:
            return
        self.on_call(
            CallInfo(
                method=method.upper(),
                url=redact_text(getattr(prepared, "url", None) or url),
                kind=kind,
                status=status,
                request_body=_capture(getattr(prepared, "body", None)),
                response_body=_capture(response.content if response is not None else None),
                duration_s=time.perf_counter() - started,
            )
        )

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)
