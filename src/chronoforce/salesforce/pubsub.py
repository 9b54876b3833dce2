"""Subscriber for Salesforce's Pub/Sub API (gRPC): change and platform events as `ChangeEvent`.

It authenticates with metadata headers, decodes Avro payloads with the schema from `GetSchema`
and resumes from a replay id the caller stored after processing. It must never import the
sandbox, store replay ids itself, or turn TLS verification off.

    for event in client.subscribe("/data/OrderChangeEvent", replay_id=stored):
        handle(event)
        store(event.replay_id)      # only after handling: a crash replays, never skips

A long-lived consumer keeps one subscription and calls `drain(wait)` each round: flow control
asks for more only once the previous batch was handed over, and keepalives (≤ 270 s apart)
keep `latest_replay_id` moving; `healthy` turns false once the stream ended or stayed silent
past the keepalive schedule. A replay id the org no longer retains, or a CDC gap event, raises
`ReplayGapError`: the caller falls back to the SOQL delta poll, then subscribes again — from
LATEST after an expired id (never resending it), from `err.resume_replay_id` after a gap event.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import fastavro
import grpc
from prometheus_client import Counter

from chronoforce import metrics
from chronoforce.domain.errors import (
    ChronoforceError,
    PermanentError,
    SalesforceUnavailableError,
    SessionExpiredError,
)
from chronoforce.logs import get_logger
from chronoforce.schemas.pubsub import pubsub_api_pb2 as pb
from chronoforce.schemas.pubsub import pubsub_api_pb2_grpc as pb_grpc

__all__ = [
    "ChangeEvent",
    "EventFeed",
    "PubSubAuthError",
    "PubSubClient",
    "PubSubCredentials",
    "PubSubError",
    "PubSubRequestError",
    "ReplayGapError",
    "Subscription",
    "TopicInfo",
    "TopicNotFoundError",
]

# Salesforce serves at most 100 events per FetchRequest (Pub/Sub API guide, "Subscribe RPC").
MAX_BATCH = 100
# With nothing to deliver the server sends an empty keepalive within 270 s (pubsub_api.proto,
# FetchResponse); a stream silent for longer than this is taken for dead and opened again.
KEEPALIVE_TOLERANCE_S = 270.0 + 30.0

REPLAY_RESETS = Counter(
    "chronoforce_pubsub_replay_resets",
    "Pub/Sub recoveries: a stored replay id the org no longer knew (expired) or a gap event; "
    "each falls back to the SOQL delta and subscribes again",
    ["topic", "reason"],
    registry=metrics.REGISTRY,
)
PLATFORM_EVENT = "EVENT"  # change_type given to platform events, which have no ChangeEventHeader
_GAP_TYPES = ("GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW")
_BITMAP_FIELDS = ("changedFields", "nulledFields", "diffFields")


log = get_logger(component="pubsub")

# ---- errors --------------------------------------------------------------------------------


class PubSubError(SalesforceUnavailableError):
    """The Pub/Sub service failed or was unreachable (UNAVAILABLE, INTERNAL…): retry later."""

    default_code = "PUBSUB_UNAVAILABLE"


class PubSubAuthError(SessionExpiredError):
    """UNAUTHENTICATED: the access token is expired or invalid; renew it and subscribe again."""


class PubSubRequestError(PermanentError):
    """INVALID_ARGUMENT and kin: the request itself is wrong (bad batch size, topic mismatch)."""

    default_code = "PUBSUB_INVALID_REQUEST"


class TopicNotFoundError(PermanentError):
    """The topic does not exist in the org, or the user may not read it."""

    default_code = "PUBSUB_TOPIC_NOT_FOUND"


class ReplayGapError(PermanentError):
    """Events may have been missed: fall back to the SOQL delta poll.

    `reason` is `expired` (the stored replay id is outside the 72-hour retention or unknown) or
    `gap_event` (Salesforce sent a GAP_* change event for `record_ids`). `resume_replay_id` is
    where to subscribe again after the poll: the gap event's own id, or None (start LATEST).
    """

    default_code = "PUBSUB_REPLAY_GAP"

    def __init__(
        self,
        message: str,
        *,
        reason: Literal["expired", "gap_event"],
        topic: str,
        resume_replay_id: bytes | None = None,
        record_ids: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason
        self.topic = topic
        self.resume_replay_id = resume_replay_id
        self.record_ids = record_ids


# ---- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PubSubCredentials:
    """What every call sends as metadata; `repr` never shows the token."""

    access_token: str = field(repr=False)
    instance_url: str
    tenant_id: str  # the org id (00D…)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            ("accesstoken", self.access_token),
            ("instanceurl", self.instance_url),
            ("tenantid", self.tenant_id),
        )


@dataclass(frozen=True)
class TopicInfo:
    topic_name: str
    tenant_guid: str
    can_publish: bool
    can_subscribe: bool
    schema_id: str


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded event. `fields` holds the payload without its ChangeEventHeader.

    For a platform event, `entity` is the event's API name, `change_type` is "EVENT",
    `record_ids` is empty and `commit_timestamp` is its CreatedDate.
    """

    replay_id: bytes
    topic: str
    entity: str
    record_ids: tuple[str, ...]
    change_type: str
    changed_fields: tuple[str, ...]
    fields: dict[str, Any]
    commit_timestamp: dt.datetime
    header: dict[str, Any] = field(default_factory=dict)
    event_id: str = ""
    schema_id: str = ""


# ---- payload decoding (pure) -----------------------------------------------------------------


def _record_fields(avro_type: Any, named: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Fields of a record type, looking through ["null", record] unions and named references."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            found = _record_fields(branch, named)
            if found:
                return found
        return []
    if isinstance(avro_type, str):
        return _record_fields(named[avro_type], named) if avro_type in named else []
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return list(avro_type.get("fields", []))
    return []


def _named_types(schema: Any, into: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, list):
        for branch in schema:
            _named_types(branch, into)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed") and "name" in schema:
            into[schema["name"]] = schema
            if "namespace" in schema:
                into[f"{schema['namespace']}.{schema['name']}"] = schema
        for sub in schema.get("fields", []):
            _named_types(sub.get("type"), into)
        if "items" in schema:
            _named_types(schema["items"], into)
    return into


def decode_bitmap(schema: Mapping[str, Any], entries: Sequence[str]) -> list[str]:
    """Field names from Salesforce's field bitmaps ("0x…" top level, "N-0x…" inside field N).

    Bit i (least significant first) stands for the i-th field of the schema; a compound field
    (an address) with a nested bitmap is reported as "Parent.Child" names instead of "Parent".
    Entries that are not bitmaps are already field names and pass through.
    (Salesforce Pub/Sub API guide, "Event Deserialization Considerations".)
    """
    top = list(schema.get("fields", []))
    named = _named_types(dict(schema), {})
    names: list[str] = []
    nested_parents: set[str] = set()
    for entry in entries:
        head, dash, tail = entry.partition("-")
        if entry.startswith("0x"):
            names.extend(_set_bits(top, int(entry, 16)))
        elif dash and head.isdigit() and tail.startswith("0x") and int(head) < len(top):
            parent = top[int(head)]
            nested_parents.add(parent["name"])
            children = _record_fields(parent["type"], named)
            names.extend(f"{parent['name']}.{c}" for c in _set_bits(children, int(tail, 16)))
        else:
            names.append(entry)
    return [n for n in names if n not in nested_parents]


def _set_bits(fields: Sequence[Mapping[str, Any]], bits: int) -> list[str]:
    return [f["name"] for i, f in enumerate(fields) if bits >> i & 1]


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)  # Salesforce sends epoch ms
    return dt.datetime.fromtimestamp(0, dt.UTC)


def to_change_event(
    topic: str,
    replay_id: bytes,
    event_id: str,
    schema_id: str,
    schema: dict[str, Any],
    data: dict[str, Any],
) -> ChangeEvent:
    """A decoded Avro record as a `ChangeEvent` (bitmaps turned into field names)."""
    header = data.pop("ChangeEventHeader", None)
    if header is None:
        return ChangeEvent(
            replay_id=replay_id,
            topic=topic,
            entity=topic.rsplit("/", 1)[-1],
            record_ids=(),
            change_type=PLATFORM_EVENT,
            changed_fields=(),
            fields=data,
            commit_timestamp=_timestamp(data.get("CreatedDate")),
            event_id=event_id,
            schema_id=schema_id,
        )
    header = dict(header)
    for name in _BITMAP_FIELDS:
        header[name] = decode_bitmap(schema, header.get(name) or [])
    return ChangeEvent(
        replay_id=replay_id,
        topic=topic,
        entity=str(header.get("entityName", "")),
        record_ids=tuple(header.get("recordIds") or ()),
        change_type=str(header.get("changeType", "")),
        changed_fields=tuple(header["changedFields"]),
        fields=data,
        commit_timestamp=_timestamp(header.get("commitTimestamp")),
        header=header,
        event_id=event_id,
        schema_id=schema_id,
    )


# ---- gRPC errors -------------------------------------------------------------------------------


def _error_code(err: Any) -> str:
    """Salesforce's own error code travels in the `error-code` trailer (guide, "Handle Errors")."""
    try:
        trailers = err.trailing_metadata() or ()
    except Exception:  # a locally raised RpcError may have no trailers at all
        trailers = ()
    return next((str(v) for k, v in trailers if k == "error-code"), "")


def map_rpc_error(err: grpc.RpcError, *, topic: str = "") -> ChronoforceError:
    """The typed chronoforce error for a failed Pub/Sub call."""
    status = err.code() if hasattr(err, "code") else None
    details = str(err.details()) if hasattr(err, "details") else str(err)
    code = _error_code(err)
    message = f"{status.name if status else 'ERROR'}: {details}" + (f" [{code}]" if code else "")
    if status == grpc.StatusCode.UNAUTHENTICATED or code.endswith("auth.error"):
        return PubSubAuthError(message, operation="pubsub")
    if "replayid" in code:
        return ReplayGapError(message, reason="expired", topic=topic, operation="pubsub")
    if status in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED) or "topic" in code:
        return TopicNotFoundError(message, operation="pubsub", field=topic)
    if status in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        return PubSubRequestError(message, operation="pubsub")
    return PubSubError(message, operation="pubsub")


# ---- client ------------------------------------------------------------------------------------

CredentialSource = PubSubCredentials | Callable[[], PubSubCredentials]


class PubSubClient:
    """A TLS gRPC channel to the Pub/Sub API, with schemas cached by id.

    `target` is host:port (Salesforce: api.pubsub.salesforce.com:7443). `ca_file` is the CA bundle
    to trust; None means the system's roots. `credentials` may be a callable, asked again for
    every call, so a renewed token is picked up without rebuilding the client.
    """

    def __init__(
        self,
        target: str,
        credentials: CredentialSource,
        *,
        ca_file: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        roots = ca_file.read_bytes() if ca_file is not None else None
        self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots))
        # Generated stubs carry no annotations.
        self._stub = pb_grpc.PubSubStub(self._channel)  # type: ignore[no-untyped-call]
        self._credentials = credentials
        self._timeout = timeout
        self._schemas: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, Any] = {}
        self._lock = threading.Lock()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        source = self._credentials
        return (source if isinstance(source, PubSubCredentials) else source()).metadata()

    def get_topic(self, topic: str) -> TopicInfo:
        try:
            info = self._stub.GetTopic(
                pb.TopicRequest(topic_name=topic), metadata=self.metadata(), timeout=self._timeout
            )
        except grpc.RpcError as err:
            raise map_rpc_error(err, topic=topic) from None
        return TopicInfo(
            info.topic_name, info.tenant_guid, info.can_publish, info.can_subscribe, info.schema_id
        )

    def get_schema(self, schema_id: str) -> dict[str, Any]:
        """The Avro schema (as JSON data) for `schema_id`; fetched once, then cached."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            info = self._stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id),
                metadata=self.metadata(),
                timeout=self._timeout,
            )
        except grpc.RpcError as err:
            raise map_rpc_error(err) from None
        schema: dict[str, Any] = json.loads(info.schema_json)
        with self._lock:
            self._schemas[schema_id] = schema
            self._parsed[schema_id] = fastavro.parse_schema(schema)
        return schema

    def decode(self, topic: str, consumer_event: Any) -> ChangeEvent:
        """A `ConsumerEvent` message as a `ChangeEvent`."""
        event = consumer_event.event
        schema = self.get_schema(event.schema_id)
        data = fastavro.schemaless_reader(io.BytesIO(event.payload), self._parsed[event.schema_id])
        if not isinstance(data, dict):
            raise PubSubRequestError(f"event {event.id} is not an Avro record", operation="pubsub")
        return to_change_event(
            topic, bytes(consumer_event.replay_id), event.id, event.schema_id, schema, dict(data)
        )

    def subscribe(
        self,
        topic: str,
        *,
        replay_id: bytes | None = None,
        start: Literal["LATEST", "EARLIEST"] = "LATEST",
        batch_size: int = MAX_BATCH,
        idle_timeout: float | None = None,
        raise_on_gap: bool = True,
    ) -> Subscription:
        """Open a Subscribe stream; iterate the result for events (see `Subscription`).

        With `replay_id`, delivery starts right after that event (ReplayPreset.CUSTOM);
        otherwise at `start`. The iteration ends after `idle_timeout` seconds without an event
        (None: never), or when the caller breaks out of it.
        """
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}")
        return Subscription(self, topic, replay_id, start, batch_size, idle_timeout, raise_on_gap)

    def open_stream(self, requests: Iterator[Any]) -> Any:
        return self._stub.Subscribe(requests, metadata=self.metadata())

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> PubSubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """One Subscribe stream. Iterating it yields `ChangeEvent`s, asking the server for
    `batch_size` more only once the previous batch has been handed to the caller (flow control).

    `latest_replay_id` follows the server's keepalives: when no event is pending, it is safe to
    store as the resume point. `close()` (or leaving a `with` block) ends the stream.
    """

    def __init__(
        self,
        client: PubSubClient,
        topic: str,
        replay_id: bytes | None,
        start: str,
        batch_size: int,
        idle_timeout: float | None,
        raise_on_gap: bool,
    ) -> None:
        self.topic = topic
        self.latest_replay_id: bytes | None = None
        self.delivered = 0
        self._client = client
        self._replay_id = replay_id
        self._batch_size = batch_size
        self._idle_timeout = idle_timeout
        self._raise_on_gap = raise_on_gap
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses: queue.Queue[Any] = queue.Queue()
        self._ready = threading.Event()
        self._outstanding = batch_size  # events asked for and not received yet
        self.ended = False  # the server closed the stream or it failed: subscribe again
        self.last_message_at = time.monotonic()
        preset = "CUSTOM" if replay_id is not None else start
        self._requests.put(
            pb.FetchRequest(
                topic_name=topic,
                replay_preset=preset,
                replay_id=replay_id or b"",
                num_requested=batch_size,
            )
        )
        self._call = client.open_stream(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"pubsub {topic}")
        self._reader.start()

    def _read(self) -> None:
        # gRPC delivers responses on this thread so the caller can wait with a timeout.
        try:
            for response in self._call:
                self._ready.set()
                self._responses.put(response)
            self._responses.put(StopIteration())
        except grpc.RpcError as err:
            self._responses.put(err)

    @property
    def healthy(self) -> bool:
        """Open, and heard from within the keepalive schedule (≤ 270 s between messages)."""
        return not self.ended and time.monotonic() - self.last_message_at < KEEPALIVE_TOLERANCE_S

    def drain(self, wait: float) -> list[ChangeEvent]:
        """The events that come until `wait` seconds pass without one, or until the batch asked
        for is complete; the stream stays open for the next call.

        Flow control as the official client does it: `batch_size` more are asked for only once
        everything asked before was delivered and handed over (the previous `drain` returned).
        Keepalives move `latest_replay_id` but do not extend the wait. Errors end the stream."""
        if self._outstanding <= 0 and not self.ended:
            self._requests.put(pb.FetchRequest(num_requested=self._batch_size))
            self._outstanding = self._batch_size
        events: list[ChangeEvent] = []
        idle_since = time.monotonic()
        while not self.ended and self._outstanding > 0:
            timeout = idle_since + wait - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = self._responses.get(timeout=timeout)
            except queue.Empty:
                break
            if isinstance(item, StopIteration):
                self.ended = True
                break
            if isinstance(item, grpc.RpcError):
                self.ended = True
                raise map_rpc_error(item, topic=self.topic) from None
            self.last_message_at = time.monotonic()
            self._outstanding = item.pending_num_requested
            if item.latest_replay_id:
                self.latest_replay_id = bytes(item.latest_replay_id)
            for consumer_event in item.events:
                events.append(self._checked(self._client.decode(self.topic, consumer_event)))
                self.delivered += 1
                idle_since = time.monotonic()
        return events

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once the server answered: from then on, LATEST includes every new event."""
        return self._ready.wait(timeout)

    def __iter__(self) -> Iterator[ChangeEvent]:
        outstanding = self._batch_size
        idle_since = time.monotonic()  # keepalives do not count as activity, events do
        try:
            while True:
                if outstanding <= 0:
                    self._requests.put(pb.FetchRequest(num_requested=self._batch_size))
                    outstanding = self._batch_size
                item = self._next_response(idle_since)
                if item is None:
                    return
                outstanding = item.pending_num_requested
                if item.latest_replay_id:
                    self.latest_replay_id = bytes(item.latest_replay_id)
                for consumer_event in item.events:
                    yield self._checked(self._client.decode(self.topic, consumer_event))
                    self.delivered += 1
                    idle_since = time.monotonic()
        finally:
            self.close()

    def _checked(self, event: ChangeEvent) -> ChangeEvent:
        if self._raise_on_gap and event.change_type in _GAP_TYPES:
            raise ReplayGapError(
                f"{event.change_type} for {event.entity} {list(event.record_ids)}",
                reason="gap_event",
                topic=self.topic,
                resume_replay_id=event.replay_id,
                record_ids=event.record_ids,
                operation="pubsub",
            )
        return event

    def _next_response(self, idle_since: float) -> Any:
        """The next server message, or None once `idle_timeout` passed without an event."""
        while True:
            timeout = None
            if self._idle_timeout is not None:
                timeout = idle_since + self._idle_timeout - time.monotonic()
                if timeout <= 0:
                    return None
            try:
                item = self._responses.get(timeout=timeout)
            except queue.Empty:
                return None
            if isinstance(item, StopIteration):
                return None
            if isinstance(item, grpc.RpcError):
                raise map_rpc_error(item, topic=self.topic) from None
            return item

    def close(self) -> None:
        self._requests.put(None)
        self._call.cancel()
        self._reader.join(timeout=5)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def consume(
    subscription: Subscription,
    handle: Callable[[ChangeEvent], None],
    save_replay_id: Callable[[bytes], None],
) -> int:
    """Callback form: `handle` each event, then `save_replay_id` — in that order, always.

    Returns the number of events handled. Exceptions (handler errors, `ReplayGapError`) end the
    subscription and propagate; the last saved replay id is where a restart resumes.
    """
    handled = 0
    with subscription:
        for event in subscription:
            handle(event)
            save_replay_id(event.replay_id)
            handled += 1
    return handled


class EventFeed:
    """One long-lived subscription across detection rounds, as the official client keeps one.

    The caller stores replay ids itself, after handling each batch (`position` is what to
    store); `replay()` loads the stored one and `forget()` deletes it. A stored id the org
    refuses (expired or corrupted) is sent once: `recover` forgets it, logs and counts it, and
    opens the next subscription at LATEST — the caller runs the SOQL delta meanwhile.
    """

    def __init__(
        self,
        client: PubSubClient,
        topic: str,
        replay: Callable[[], bytes | None],
        forget: Callable[[], None],
    ) -> None:
        self.client = client
        self.topic = topic
        self._replay = replay
        self._forget = forget
        self._subscription: Subscription | None = None
        self._latest_once = False

    @property
    def subscription(self) -> Subscription | None:
        return self._subscription

    def poll(self, wait: float = 0.3) -> list[ChangeEvent]:
        """What arrived since the last call (see `Subscription.drain`); errors end the stream."""
        subscription = self._open()
        try:
            return subscription.drain(wait)
        except BaseException:
            self.close()
            raise

    @property
    def position(self) -> bytes | None:
        """The stream's replay id once every event polled is handled (keepalives included)."""
        return self._subscription.latest_replay_id if self._subscription else None

    def recover(self, gap: ReplayGapError) -> bytes | None:
        """After a `ReplayGapError`: the replay id to store now (a gap event's), or None."""
        self.close()
        REPLAY_RESETS.labels(topic=self.topic, reason=gap.reason).inc()
        if gap.reason != "expired":
            log.warning("pubsub gap event: falling back to the SOQL delta", topic=self.topic)
            return gap.resume_replay_id
        log.warning(
            "pubsub replay id refused: SOQL delta from the watermark, then LATEST",
            topic=self.topic,
            error=gap.message,
        )
        self._forget()
        self._latest_once = True
        self._open()  # in place before the caller's delta reads, so nothing falls between
        return None

    def _open(self) -> Subscription:
        if self._subscription is not None and self._subscription.healthy:
            return self._subscription
        self.close()
        replay = None if self._latest_once else self._replay()
        start: Literal["LATEST", "EARLIEST"] = "LATEST" if self._latest_once else "EARLIEST"
        self._latest_once = False  # LATEST once, after an expired id; stored ids afterwards
        self._subscription = self.client.subscribe(self.topic, replay_id=replay, start=start)
        return self._subscription

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
