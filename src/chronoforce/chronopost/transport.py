"""HTTP for the Chronopost adapter: one pooled httpx.Client per client, timeouts, TLS trust.

`transport=` takes any `httpx.BaseTransport`: the seam where tests plug in. Every exchange is
returned as a CarrierCall with the password already masked; it must never log or keep a secret.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import httpx

from chronoforce.chronopost.config import ChronopostEndpoint
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


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content: bytes
    duration_s: float


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
    """POSTs SOAP envelopes to the services under one base URL; maps wire failures to errors."""

    def __init__(
        self, endpoint: ChronopostEndpoint, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.endpoint = endpoint
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
