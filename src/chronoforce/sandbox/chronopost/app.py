"""The Chronopost sandbox as an ASGI app: the real services' paths, `?wsdl`, and `/_sandbox/` admin.

`ChronopostSandbox` is the in-process API for tests and benchmarks. Handlers run on the event
loop and never block it for long: injected latency and timeouts are asynchronous sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree

from chronoforce.sandbox.chronopost import (
    admin,
    creneau,
    pickups,
    pod,
    rates,
    relay,
    shipping,
    tracking,
)
from chronoforce.sandbox.chronopost import track_search as search
from chronoforce.sandbox.chronopost.clock import SandboxClock
from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.faults import FaultInjector, Faults
from chronoforce.sandbox.chronopost.requestlog import InFlight, RequestLog, RequestRecord
from chronoforce.sandbox.chronopost.soap import (
    CONTENT_TYPE,
    SoapFault,
    add,
    add_all,
    fault,
    read_operation,
    redacted,
    response,
    serialize,
    service_schema,
)
from chronoforce.sandbox.chronopost.store import Parcel, Store
from chronoforce.sandbox.chronopost.tables import (
    CANCEL_OPENS_AFTER,
    DEMO_ACCOUNT,
    DEMO_PASSWORD,
    RELAY_SYSTEM_ERROR,
    SYSTEM_ERROR,
)
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles
from chronoforce.schemas import chronopost_wsdl

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Operation = Callable[[Context, etree._Element, etree._Element], None]

SERVICE_PATHS = {
    "/shipping-cxf/ShippingServiceWS": "shipping",
    "/tracking-cxf/TrackingServiceWS": "tracking",
    "/quickcost-cxf/QuickcostServiceWS": "quickcost",
    "/recherchebt-ws-cxf/PointRelaisServiceWS": "relay",
    "/rdv-cxf/services/CreneauServiceWS": "creneau",  # Chrono Precise (issue 23)
}
PRODUCTION_BASE = "https://ws.chronopost.fr"
OPERATIONS: dict[str, Operation] = {
    "shippingMultiParcelV5": shipping.shipping_multi_parcel,
    "shippingMultiParcelV4": shipping.shipping_multi_parcel,
    "getReservedSkybill": shipping.get_reserved_skybill,
    "getReservedSkybillWithTypeAndMode": shipping.get_reserved_skybill_with_type_and_mode,
    "trackSkybillV2": tracking.track_skybill_v2,
    "trackWithSenderRef": tracking.track_with_sender_ref,
    "cancelSkybill": tracking.cancel_skybill,
    "searchPOD": pod.search_pod,  # proof of delivery: pod.py (issue 21)
    "searchPODWithSenderRef": pod.search_pod_with_sender_ref,
    "quickCost": rates.quick_cost,
    "calculateProducts": rates.calculate_products,
    "recherchePointChronopost": relay.recherche_point_chronopost,
    "recherchePointChronopostInter": relay.recherche_point_chronopost,
    pickups.OPERATION: pickups.creer_enlevement_national,
    pickups.CANCEL_OPERATION: pickups.annuler_enlevements,
    "trackSearch": search.track_search,  # issue 21
    creneau.SEARCH: creneau.search_delivery_slot,
    creneau.CONFIRM: creneau.confirm_delivery_slot_v2,
}
MAX_BODY = 5 * 1024 * 1024


def write_error(operation: str, result: etree._Element, code: int, message: str) -> None:
    """errorCode/errorMessage plus the fields the schema requires around them."""
    if operation == pickups.OPERATION:  # its result says codeErreur / libelleErreur
        add_all(result, [("codeErreur", code), ("libelleErreur", message)])
        return
    if operation == pickups.CANCEL_OPERATION:  # codeErreur / errorMessage, statut required
        add_all(result, [("codeErreur", code), ("errorMessage", message)])
        add(result, "statut")
        return
    if operation in creneau.OPERATIONS:  # the Creneau service says code / message
        add_all(result, [("code", code), ("message", message)])
        return
    if operation == "quickCost":  # amounts come first and are required
        add_all(result, [("amount", 0.0), ("amountTTC", 0.0), ("amountTVA", 0.0)])
    add_all(result, [("errorCode", code), ("errorMessage", message)])
    if operation in ("searchPOD",):
        add(result, "podPresente", False)
    if operation in ("cancelSkybill", "searchPOD"):
        add(result, "statusCode", 0)


@dataclass
class Outcome:
    status: int
    body: bytes
    operation: str | None = None
    account: str | None = None
    request: str = ""
    error_code: int | None = None
    fault: str | None = None
    injected: str | None = None


async def read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY or not message.get("more_body"):
            break
    return b"".join(chunks)


async def send_bytes(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ChronopostSandbox:
    """A Chronopost SOAP server: `sb.app` is the ASGI app; helpers drive it from tests."""

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        seed: int = 0,
        latency: float | tuple[float, float] | None = None,
        accounts: Mapping[str, str] | None = None,
        faults: Faults | None = None,
        cancel_window: timedelta = CANCEL_OPENS_AFTER,
    ) -> None:
        self.store = Store(db_path)
        self.clock = SandboxClock(self.store)
        self.accounts = {DEMO_ACCOUNT: DEMO_PASSWORD, **(accounts or {})}
        # `cancel_window`: the documented ~10 minutes by default; a test that is not about the
        # window may pass timedelta(0) rather than advance the clock.
        self.context = Context(self.store, self.clock, self.accounts, seed, cancel_window)
        self.seed = seed
        self.log = RequestLog()
        self.in_flight = InFlight()
        self.injector = FaultInjector()
        self._base_faults = faults or _latency_faults(latency, seed)
        self.injector.configure(self._base_faults)
        self.context.withhold_reserved_label = lambda: self.injector.faults.withhold_reserved_label
        self._wsdl_cache: dict[tuple[str, str], bytes] = {}

        # A plain coroutine function (not a bound method) so servers detect ASGI 3.
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await self._asgi(scope, receive, send)

        self.app = app

    # --- in-process API ---------------------------------------------------------------------

    def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: TlsFiles | None = None
    ) -> BackgroundServer:
        """Serve on a thread (a free port by default); `.url` is the base URL, `.stop()` ends it."""
        return BackgroundServer(self.app, host=host, port=port, tls=tls).start()

    def now(self) -> datetime:
        return self.clock.now()

    def advance_clock(self, delta: timedelta) -> datetime:
        return self.clock.advance(delta)

    def set_faults(self, faults: Faults | None = None, **settings: Any) -> Faults:
        """Replace the fault settings (a Faults, or its fields as keywords)."""
        self.injector.configure(faults or Faults.from_json({"seed": self.seed, **settings}))
        return self.injector.faults

    def clear_faults(self) -> None:
        self.injector.configure(self._base_faults)

    def requests(self, operation: str | None = None) -> list[RequestRecord]:
        return self.log.records(operation)

    def parcels(self) -> list[Parcel]:
        return self.store.all_parcels()

    def parcel(self, skybill: str) -> Parcel | None:
        return self.store.parcel(skybill)

    def live_labels(self) -> int:
        """Parcels created and not cancelled: what a double-label bug would inflate."""
        return self.store.live_labels()

    def reset(self) -> None:
        self.store.reset()
        self.clock.reset()
        self.log.clear()
        self.in_flight.reset()
        self.clear_faults()

    def close(self) -> None:
        self.store.close()

    # --- ASGI --------------------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        if path.startswith("/_sandbox"):
            status, body, ctype = admin.handle(
                self, scope["method"], path, scope, await read_body(receive)
            )
            await send_bytes(send, status, body, ctype)
        elif path in SERVICE_PATHS and scope["method"] == "GET":
            await self._wsdl(scope, send, SERVICE_PATHS[path])
        elif path in SERVICE_PATHS and scope["method"] == "POST":
            await self._soap(SERVICE_PATHS[path], receive, send)
        else:
            await send_bytes(send, 404, b"No service was found.", "text/plain")

    async def _wsdl(self, scope: Scope, send: Send, service: str) -> None:
        if scope.get("query_string", b"").lower() not in (b"wsdl", b"wsdl="):
            await send_bytes(send, 405, b"Use POST for SOAP, GET ?wsdl for the WSDL.", "text/plain")
            return
        base = _base_url(scope)
        key = (service, base)
        if key not in self._wsdl_cache:
            text = chronopost_wsdl(service).read_text(encoding="utf-8")
            self._wsdl_cache[key] = text.replace(PRODUCTION_BASE, base).encode("utf-8")
        await send_bytes(send, 200, self._wsdl_cache[key], CONTENT_TYPE)

    async def _soap(self, service: str, receive: Receive, send: Send) -> None:
        with self.in_flight:  # counted from the request read to the answer sent
            await self._soap_counted(service, receive, send)

    async def _soap_counted(self, service: str, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        body = await read_body(receive)
        outcome = self._answer(service, body)
        decision = self.injector.decide(outcome.operation or "")
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.kind is not None:
            outcome = await self._inject(decision.kind, outcome, receive)
        # Logged before answering, so a client that got its answer also finds it in the log.
        self._record(service, outcome, started)
        if outcome.status:  # 0 means the client gave up before an answer (timeout)
            await send_bytes(send, outcome.status, outcome.body, CONTENT_TYPE)

    def _answer(self, service: str, body: bytes) -> Outcome:
        try:
            op = read_operation(body)
            name = service_schema(service).validate(op)
        except SoapFault as exc:
            return Outcome(500, fault(exc.code, exc.message), fault=exc.message)
        account = (
            op.findtext("accountNumber")
            or op.findtext("headerValue/accountNumber")
            or creneau.header_account(op)
        )
        outcome = Outcome(200, b"", name, account, redacted(op))
        envelope, result = response(service_schema(service).namespace, name)
        try:
            OPERATIONS[name](self.context, op, result)
        except BusinessError as exc:
            envelope, result = response(service_schema(service).namespace, name)
            write_error(name, result, exc.code, exc.message)
        code = (
            result.findtext("errorCode") or result.findtext("codeErreur") or result.findtext("code")
        )
        outcome.error_code = int(code) if code is not None else None
        outcome.body = serialize(envelope)
        return outcome

    async def _inject(self, kind: str, outcome: Outcome, receive: Receive) -> Outcome:
        outcome.injected = kind
        if kind != "extra_element":  # the real answer, its errorCode kept
            outcome.error_code = None
        if kind == "timeout":
            gone = await _wait_for_disconnect(receive, self.injector.faults.hang_seconds)
            # A client still waiting after hang_seconds gets a gateway timeout, like a proxy.
            outcome.status, outcome.body = (0, b"") if gone else (504, b"Gateway Timeout")
        elif kind in ("http_500", "http_503"):
            outcome.status = int(kind[-3:])
            outcome.body = b"<html><body><h1>Service Unavailable</h1></body></html>"
        elif kind == "soap_fault":
            outcome.status, outcome.fault = 500, "Fault injected by the chronoforce sandbox"
            outcome.body = fault("soap:Server", outcome.fault)
        elif kind == "malformed":
            outcome.body = (outcome.body or fault("soap:Server", "x"))[
                : max(len(outcome.body) // 2, 20)
            ]
        elif kind == "extra_element" and outcome.status == 200:
            outcome.body = _with_extra_element(outcome.body)
        elif kind in ("system_error", "business_error") and outcome.operation:
            chosen = self.injector.faults
            code, message = (
                _system_error(outcome.operation)
                if kind == "system_error"
                else (chosen.error_code, chosen.error_message)
            )
            envelope, result = response(_namespace_of(outcome.operation), outcome.operation)
            write_error(outcome.operation, result, code, message)
            outcome.status, outcome.body, outcome.error_code = 200, serialize(envelope), code
        return outcome

    def _record(self, service: str, outcome: Outcome, started: float) -> None:
        self.log.append(
            RequestRecord(
                id=self.log.next_id(),
                at=self.clock.now().isoformat(),
                service=service,
                operation=outcome.operation,
                account=outcome.account,
                request=outcome.request,
                http_status=outcome.status,
                error_code=outcome.error_code,
                fault=outcome.fault,
                injected=outcome.injected,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        )


def _latency_faults(latency: float | tuple[float, float] | None, seed: int) -> Faults:
    if latency is None:
        return Faults(seed=seed)
    low, high = latency if isinstance(latency, tuple) else (latency, latency)
    return Faults(latency_ms=low * 1000, jitter_ms=(high - low) * 1000, seed=seed)


def _system_error(operation: str) -> tuple[int, str]:
    """Each service's own "system error" ([D] §4.3: 700 for the relay search, 1 elsewhere)."""
    if operation in creneau.OPERATIONS:  # -1 "internal server error" (error_codes.csv, slots)
        return (-1, "internal server error")
    return RELAY_SYSTEM_ERROR if operation.startswith("recherchePoint") else SYSTEM_ERROR


EXTRA_ELEMENT = b"<sandboxNewField>not in any WSDL</sandboxNewField>"


def _with_extra_element(body: bytes) -> bytes:
    """The answer with an element no schema knows, first in `<return>` (or the result)."""
    root = etree.fromstring(body)
    result = next(root.iter("return", "{*}return"), None)
    if result is None:
        return body
    result.insert(0, etree.fromstring(EXTRA_ELEMENT))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _namespace_of(operation: str) -> str:
    for service in SERVICE_PATHS.values():
        schema = service_schema(service)
        if operation in schema.operations:
            return schema.namespace
    raise KeyError(operation)


def _base_url(scope: Scope) -> str:
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def _wait_for_disconnect(receive: Receive, limit: float) -> bool:
    """Hold the request open until the client gives up (True) or `limit` seconds pass."""

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(wait(), timeout=limit)
    except TimeoutError:
        return False
    return True


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
