"""HTTP for the Chronopost adapter: one pooled httpx.Client per client, timeouts, TLS trust,
and the choice of host: the main one, or the documented backup while the main one is down.

`transport=` takes any `httpx.BaseTransport`: the seam where tests plug in. Every exchange is
returned as a CarrierCall with the password already masked; it must never log or keep a secret,
and never send a call twice to two hosts (a label call may have been acted on).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from chronoforce.chronopost.config import BACKUP, MAIN, ChronopostEndpoint, Service
from chronoforce.chronopost.soap import escape
from chronoforce.domain.errors import (
    CarrierTimeoutError,
    CarrierUnavailableError,
    ChronoforceError,
)
from chronoforce.redaction import MASK, SECRET_KEY_PARTS, redact_text

# Operations that only read (operation names of the official WSDLs): safe to send twice.
READ_ONLY_OPERATIONS = frozenset(
    {
        "quickCost",
        "calculateProducts",
        "recherchePointChronopost",
        "getReservedSkybillWithTypeAndMode",
        "trackSkybillV2",
        "trackWithSenderRef",
    }
)
_HEADERS = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}
_MASKED_ELEMENT = f"<password>{MASK}</password>"


@dataclass(frozen=True, slots=True)
class CarrierCall:
    """One SOAP exchange as the pipeline stores it and exports metrics from (password masked).

    `http_status` is 0 when no answer came (timeout, connection error); `error_code` is the
    code of the error the call raised, "" on success.
    """

    operation: str
    request_xml: str
    response_xml: str
    http_status: int
    duration_s: float
    error_code: str = ""
    host: str = MAIN  # "main" or "backup" (ChronopostEndpoint.backup_url)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content: bytes
    duration_s: float


@dataclass
class HostBreaker:
    """Is the main host down? After `failures_to_open` failed calls in a row (no answer, or an
    HTTP error page), yes for `open_s` seconds, doubling up to `max_open_s` while it stays down;
    then one call tries the main host again (success closes, failure re-opens at once).

    Per process, on purpose: it only chooses a host and never refuses a call, so workers need
    not agree; each finds the main host down within a few calls. The pipeline's cluster-wide
    breaker (pipeline/breaker.py) then sees the backup's answers, and opens only when both fail.
    """

    failures_to_open: int = 3
    open_s: float = 30.0
    max_open_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _opens: int = 0
    _open_until: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_open(self) -> bool:
        with self._lock:
            return self._open_until is not None and self.clock() < self._open_until

    def record(self, ok: bool) -> None:
        """The outcome of one call to the main host."""
        with self._lock:
            if ok:
                self._failures, self._opens, self._open_until = 0, 0, None
                return
            self._failures += 1
            probing = self._open_until is not None  # the open time ran out: this was the probe
            if probing or self._failures >= self.failures_to_open:
                self._opens += 1
                wait = min(self.max_open_s, self.open_s * 2 ** (self._opens - 1))
                self._open_until, self._failures = self.clock() + wait, 0


class Redactor:
    """Masks the password in payloads: `<password>` elements, `password=` pairs, the raw value.

    Our own `<password>` element and the raw value are replaced directly (a label answer is
    hundreds of kB; the general rules of chronoforce.redaction cost ~25 ms there). Those rules
    still run whenever anything else in the text looks like a secret.
    """

    def __init__(self, password: str) -> None:
        self._element = f"<password>{escape(password)}</password>"
        # A very short value would mask innocent digits everywhere; elements are masked anyway.
        self._value = password if len(password) >= 4 else ""

    def __call__(self, payload: bytes | str) -> str:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        text = text.replace(self._element, _MASKED_ELEMENT)
        if self._value and self._value in text:
            text = text.replace(self._value, MASK)
        rest = _without_labels(text).replace(_MASKED_ELEMENT, "").lower()
        if any(part in rest for part in SECRET_KEY_PARTS):
            text = redact_text(text)
        return text


# Elements carrying base64 documents (labels, proofs of delivery): no secret can hide in them,
# and scanning their hundreds of kB for secret-looking words is most of the redaction cost.
_DOCUMENT_TAGS = ("pdfEtiquette", "skybill", "pod")


def _without_labels(text: str) -> str:
    for tag in _DOCUMENT_TAGS:
        opening, closing = f"<{tag}>", f"</{tag}>"
        if opening not in text:
            continue
        parts, position = [], 0
        while (start := text.find(opening, position)) != -1:
            end = text.find(closing, start)
            if end == -1:
                break
            parts.append(text[position:start])
            position = end + len(closing)
        parts.append(text[position:])
        text = "".join(parts)
    return text


def _verify(verify: bool | str) -> bool | ssl.SSLContext:
    # httpx 0.28 deprecates a CA path string: a context trusting that CA is the supported way.
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class SoapTransport:
    """POSTs SOAP envelopes to the services of the main host (or the backup while the main one
    is down); maps wire failures to errors."""

    def __init__(
        self,
        endpoint: ChronopostEndpoint,
        transport: httpx.BaseTransport | None = None,
        breaker: HostBreaker | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.breaker = breaker or HostBreaker(endpoint.failover_after, endpoint.failover_s)
        self._http = httpx.Client(
            timeout=httpx.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout),
            verify=_verify(endpoint.verify),
            transport=transport,
            headers=_HEADERS,
            limits=httpx.Limits(
                max_connections=endpoint.max_connections,
                max_keepalive_connections=endpoint.max_connections,
            ),
        )

    def choose(self, host: str | None = None) -> str:
        """The host of the next call: `host` when given, else main unless it is down."""
        if host is not None:
            return host
        return BACKUP if self.endpoint.backup_url and self.breaker.is_open() else MAIN

    def send(self, service: Service, body: bytes, operation: str, host: str) -> Reply:
        """POST to `service` on `host`; the main host's outcomes feed the host breaker."""
        try:
            reply = self.post(self.endpoint.url(service, host), body, operation)
        except CarrierUnavailableError:
            if host == MAIN:
                self.breaker.record(False)
            raise
        if host == MAIN:
            self.breaker.record(True)  # it answered (a SOAP fault too): the host is up
        return reply

    def post(self, url: str, body: bytes, operation: str) -> Reply:
        """The answer of a 2xx or of a SOAP fault; typed errors for anything else."""
        started = time.perf_counter()
        try:
            try:
                response = self._http.post(url, content=body)
            except httpx.RemoteProtocolError:
                # A pooled keep-alive connection the server closed as it sat idle: no answer
                # came. A read is sent once more (on a new connection); a label, pickup or
                # cancel is not, since it may have been acted on (the pipeline looks it up).
                if operation not in READ_ONLY_OPERATIONS:
                    raise
                response = self._http.post(url, content=body)
        except httpx.TimeoutException as exc:
            raise CarrierTimeoutError(
                f"{operation}: no answer within the timeout ({type(exc).__name__})",
                operation=operation,
            ) from exc
        except httpx.HTTPError as exc:
            raise CarrierUnavailableError(
                f"{operation}: {type(exc).__name__}: {exc}", operation=operation
            ) from exc
        reply = Reply(response.status_code, response.content, time.perf_counter() - started)
        if response.is_success or _is_soap_fault(response):
            return reply  # a fault is read, like any answer, by soap.parse_envelope
        raise HttpStatusError(reply, operation)

    def close(self) -> None:
        self._http.close()


class HttpStatusError(CarrierUnavailableError):
    """HTTP 4xx/5xx without a SOAP fault: Chronopost (or a proxy) is not answering properly."""

    def __init__(self, reply: Reply, operation: str) -> None:
        super().__init__(
            f"{operation}: HTTP {reply.status}", code=f"CARRIER_HTTP_{reply.status}",
            operation=operation,
        )  # fmt: skip
        self.reply = reply


def _is_soap_fault(response: httpx.Response) -> bool:
    # CXF answers faults with HTTP 500 and an XML envelope; an HTML error page is not one.
    return response.status_code == 500 and b"Fault" in response.content[:2048]


def attach(error: ChronoforceError, call: CarrierCall) -> ChronoforceError:
    """Give an error the (redacted) payloads of the call that raised it."""
    error.request_payload = error.request_payload or call.request_xml
    error.response_payload = error.response_payload or call.response_xml
    error.operation = error.operation or call.operation
    return error
