"""The sandbox's admin HTTP API under `/_sandbox/`: faults, clock, request log, requests in
flight (`/_sandbox/in-flight`: now and the high-water mark; DELETE resets it), parcels, reset.

JSON in and out, for tests and benchmarks in another process. It must never expose account
passwords (the request log is already redacted; accounts are listed by number only).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from chronoforce.sandbox.chronopost.clock import ClockError
from chronoforce.sandbox.chronopost.faults import FaultConfigError, Faults
from chronoforce.sandbox.chronopost.labels import label_kind

if TYPE_CHECKING:
    from chronoforce.sandbox.chronopost.app import ChronopostSandbox

Answer = tuple[int, bytes, str]
JSON = "application/json"


def _json(data: Any, status: int = 200) -> Answer:
    return status, json.dumps(data, default=str).encode(), JSON


def _error(status: int, message: str) -> Answer:
    return _json({"error": message}, status)


def _state(sb: ChronopostSandbox) -> dict[str, Any]:
    return {
        "now": sb.now().isoformat(),
        "clock_offset_seconds": sb.clock.offset.total_seconds(),
        "live_labels": sb.live_labels(),
        "parcels": len(sb.parcels()),
        "requests": len(sb.requests()),
        "in_flight": sb.in_flight.to_json(),
        "faults": sb.injector.faults.to_json(),
        "accounts": sorted(sb.accounts),
    }


def _clock(sb: ChronopostSandbox, method: str, payload: dict[str, Any]) -> Answer:
    if method == "POST":
        delta = timedelta(
            days=float(payload.get("days", 0)),
            hours=float(payload.get("hours", 0)),
            seconds=float(payload.get("seconds", 0)),
        )
        try:
            sb.advance_clock(delta)
        except ClockError as exc:
            return _error(400, str(exc))
    return _json({"now": sb.now().isoformat(), "offset_seconds": sb.clock.offset.total_seconds()})


def _faults(sb: ChronopostSandbox, method: str, payload: dict[str, Any]) -> Answer:
    if method in ("PUT", "POST"):
        try:
            sb.set_faults(Faults.from_json({"seed": sb.seed, **payload}))
        except FaultConfigError as exc:
            return _error(400, str(exc))
    elif method == "DELETE":
        sb.clear_faults()
    return _json(sb.injector.faults.to_json())


def _requests(sb: ChronopostSandbox, method: str, query: dict[str, list[str]]) -> Answer:
    if method == "DELETE":
        sb.log.clear()
        return _json({"cleared": True})
    records = sb.requests(query.get("operation", [None])[0])
    limit = int(query.get("limit", ["0"])[0] or 0)
    return _json([r.to_json() for r in (records[-limit:] if limit else records)])


def _parcel(sb: ChronopostSandbox, skybill: str, label: bool) -> Answer:
    parcel = sb.parcel(skybill)
    if parcel is None:
        return _error(404, f"no parcel {skybill}")
    if label:
        kind = label_kind(parcel.mode)
        return 200, parcel.label, "application/pdf" if kind == "pdf" else "text/plain"
    events = sb.store.events(skybill, sb.clock.timestamp())
    visible = [{"code": e.code, "at": sb.context.local(e.at).isoformat()} for e in events]
    return _json({**parcel.summary(), "visible_events": visible})


def handle(
    sb: ChronopostSandbox, method: str, path: str, scope: dict[str, Any], body: bytes
) -> Answer:
    """Route one admin request; answers (status, body, content type)."""
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        payload = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError:
        return _error(400, "the body must be JSON")
    parts = path.split("/")[2:]  # "/_sandbox/parcels/X" -> ["parcels", "X"]
    match parts:
        case [] | ["health"]:
            return _json({"ok": True, **_state(sb)})
        case ["clock"]:
            return _clock(sb, method, payload)
        case ["faults"]:
            return _faults(sb, method, payload)
        case ["requests"]:
            return _requests(sb, method, query)
        case ["in-flight"]:
            if method == "DELETE":
                sb.in_flight.reset()
            return _json(sb.in_flight.to_json())
        case ["parcels"]:
            return _json([p.summary() for p in sb.parcels()])
        case ["parcels", skybill]:
            return _parcel(sb, skybill, label=False)
        case ["parcels", skybill, "label"]:
            return _parcel(sb, skybill, label=True)
        case ["reset"] if method == "POST":
            sb.reset()
            return _json({"reset": True})
    return _error(404, f"unknown admin endpoint {path}")
