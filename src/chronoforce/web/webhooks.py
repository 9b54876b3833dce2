"""`POST /webhooks/chronopost/tracking`: pushed tracking events, HMAC-signed, stored then ingested.

The request is answered 202 only after its events are committed to the inbox table; ingestion
happens afterwards (`tracking.process_inbox`). It never parses an unauthenticated body, never
compares signatures in variable time, and never accepts an event id twice. Format: docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects import postgresql, sqlite

from chronoforce.logs import get_logger
from chronoforce.pipeline.tracking import TrackingConfig
from chronoforce.store.db import Store
from chronoforce.store.models import WebhookInbox
from chronoforce.web.clock import clock_of

log = get_logger(component="webhooks")

PATH = "/webhooks/chronopost/tracking"
SIGNATURE_HEADER = "X-Chronoforce-Signature"
TIMESTAMP_HEADER = "X-Chronoforce-Timestamp"
SCHEME = "v1"

router = APIRouter(tags=["webhooks"])


class SignatureError(Exception):
    """The request is not provably from the holder of the shared secret (answered 401)."""


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` with the shared secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    window_seconds: int,
) -> None:
    """Raise SignatureError unless one of the header's signatures matches, in the time window."""
    if not timestamp or not signature:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    if abs(now - int(timestamp)) > window_seconds:
        raise SignatureError(f"timestamp outside the {window_seconds // 60}-minute window")
    expected = sign(secret, timestamp, body)
    # Several comma-separated signatures are allowed, so a sender can rotate secrets.
    offered = [part.strip() for part in signature.split(",")]
    if not any(hmac.compare_digest(expected.encode(), o.encode()) for o in offered):
        raise SignatureError("signature does not match")


class InfoComp(BaseModel):
    name: str = Field(max_length=100)
    value: str = Field(max_length=255)


class PushedEvent(BaseModel):
    """One event, with Chronopost's `trackSkybillV2` field names plus the sender's event id."""

    model_config = ConfigDict(extra="forbid")

    eventId: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[!-~]+$")]
    skybillNumber: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{6,20}$")]
    code: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,10}$")]
    eventDate: AwareDatetime
    eventLabel: str = Field("", max_length=255)
    officeLabel: str = Field("", max_length=100)
    zipCode: str = Field("", max_length=10)
    NPC: str = Field("", max_length=10)
    highPriority: bool = False
    infoCompList: list[InfoComp] = Field(default_factory=list, max_length=20)


class PushedBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[PushedEvent] = Field(min_length=1)


def parse(body: bytes, max_events: int) -> list[PushedEvent]:
    """A batch `{"events": [...]}` or one event object; ValueError / ValidationError if not."""
    data = json.loads(body)
    if isinstance(data, dict) and "events" not in data:
        data = {"events": [data]}
    batch = PushedBatch.model_validate(data)
    if len(batch.events) > max_events:
        raise ValueError(f"at most {max_events} events per request, got {len(batch.events)}")
    return batch.events


def store_events(store: Store, events: list[PushedEvent]) -> tuple[list[str], list[str]]:
    """Commit the new events to the inbox; returns (accepted ids, ids already received)."""
    unique: dict[str, dict[str, Any]] = {}
    for event in events:
        unique.setdefault(
            event.eventId,
            {
                "event_id": event.eventId,
                "skybill_number": event.skybillNumber,
                "payload": event.model_dump(mode="json"),
                "state": "pending",
            },
        )
    rows = [unique[key] for key in sorted(unique)]
    with store.session() as session:
        insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        statement = (
            insert(WebhookInbox)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(WebhookInbox.event_id)
        )
        accepted = set(session.scalars(statement))
    ids = [event.eventId for event in events]
    duplicates = [i for n, i in enumerate(ids) if i not in accepted or i in ids[:n]]
    return [i for i in unique if i in accepted], duplicates


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` bytes (never buffered beyond that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


@router.post(PATH, status_code=202)
async def receive_tracking(request: Request) -> JSONResponse:
    """Accept pushed events: 202 stored, 401 bad signature, 409 all replays, 413, 422."""
    state = request.app.state
    config: TrackingConfig = state.tracking.config
    secret = state.settings.secrets.webhook_secret
    if secret is None:
        return _problem(503, "webhook disabled: CHRONOFORCE_WEBHOOK_SECRET is not set")
    body = await _read_limited(request, config.webhook_max_bytes)
    if body is None:
        return _problem(413, f"body larger than {config.webhook_max_bytes} bytes")
    try:
        verify(
            secret.get_secret_value(),
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=clock_of(request).now().timestamp(),
            window_seconds=config.webhook_window_seconds,
        )
    except SignatureError as exc:
        log.warning("webhook refused", reason=str(exc))
        return _problem(401, str(exc))
    try:
        events = parse(body, config.webhook_max_events)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(422, "invalid tracking events", errors=errors)
    except ValueError as exc:  # bad JSON (JSONDecodeError is a ValueError) or too many events
        return _problem(422, f"invalid body: {exc}")
    accepted, duplicates = await run_in_threadpool(store_events, state.store, events)
    if state.drainer is not None and accepted:
        state.drainer.wake()
    if not accepted:
        return _problem(
            409, "every event in this request was already received", duplicates=duplicates
        )
    received_at = clock_of(request).now().isoformat()
    return JSONResponse(
        {"accepted": accepted, "duplicates": duplicates, "received_at": received_at},
        status_code=202,
    )
