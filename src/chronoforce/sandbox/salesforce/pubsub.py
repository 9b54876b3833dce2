"""The sandbox's Pub/Sub API: a gRPC `eventbus.v1.PubSub` server over the sandbox's change log.

Subscribe (flow-controlled, LATEST/EARLIEST/CUSTOM replay, 72-hour retention), GetTopic,
GetSchema and Publish, authenticated by the `accesstoken`/`instanceurl`/`tenantid` metadata and
failing with Salesforce's status codes and `error-code` trailers. It must never write records
or keep events of its own: the sandbox's change log is the only store.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any, NoReturn, Protocol

import grpc

from chronoforce.sandbox.salesforce.pubsub_avro import (
    PayloadError,
    TopicSchema,
    cdc_record,
    cdc_schema,
    decode,
    encode,
    event_record,
    event_schema,
)
from chronoforce.sandbox.tls import TlsFiles
from chronoforce.schemas.pubsub import pubsub_api_pb2 as pb
from chronoforce.schemas.pubsub import pubsub_api_pb2_grpc as pb_grpc

__all__ = ["ChangeLog", "PubSubServer", "PubSubServicer", "decode_replay_id", "encode_replay_id"]

MAX_BATCH = 100  # events per FetchRequest Salesforce accepts (Pub/Sub API guide, "Subscribe")
# Salesforce's error codes, sent in the `error-code` trailer (Pub/Sub API guide, "Handle Errors").
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
REPLAY_VALIDATION = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
REQUESTED_INVALID = "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid"
# Not in the table we could read: our own names, in the same style.
TOPIC_NOT_FOUND = "sfdc.platform.eventbus.grpc.topic.notfound"
TOPIC_MISMATCH = "sfdc.platform.eventbus.grpc.subscription.topic.mismatch"
SCHEMA_NOT_FOUND = "sfdc.platform.eventbus.grpc.schema.notfound"
PUBLISH_NOT_ALLOWED = "sfdc.platform.eventbus.grpc.publish.not.allowed"


# An empty FetchResponse carrying latest_replay_id comes within 270 s of the last response
# (pubsub_api.proto, FetchResponse). None is documented at subscribe time: the sandbox sends the
# first one after FIRST_KEEPALIVE_S (our choice: "tens of seconds", REAL-ORG-FACTS.md R19).
KEEPALIVE_S = 270.0
FIRST_KEEPALIVE_S = 20.0
# With nothing pending and no new FetchRequest, the server closes the stream after about 70 s
# (official Java sample's comment, not the docs: REAL-ORG-FACTS.md R20, "should").
IDLE_CLOSE_S = 70.0


class ChangeLog(Protocol):
    """What the server needs from the Salesforce sandbox (`SalesforceSandbox` provides it)."""

    org_id: str

    def read_changes(
        self, topic: str, after_replay_id: int | None, limit: int
    ) -> list[tuple[int, float, dict[str, Any]]]: ...

    def latest_replay_id(self, topic: str) -> int | None: ...

    def describe(self, sobject: str) -> dict[str, Any]: ...

    def topics(self) -> list[str]: ...

    def validate_token(self, token: str) -> bool: ...


def encode_replay_id(replay_id: int) -> bytes:
    """Replay ids travel as 8 big-endian bytes; clients treat them as opaque."""
    return replay_id.to_bytes(8, "big")


def decode_replay_id(raw: bytes) -> int | None:
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


def _sobject_of(topic: str) -> str:
    """/data/OrderChangeEvent -> Order, /data/Foo__ChangeEvent -> Foo__c, /event/X__e -> X__e."""
    if topic.startswith("/event/"):
        return topic.removeprefix("/event/")
    base = topic.removeprefix("/data/").removesuffix("ChangeEvent")
    return base + "c" if base.endswith("__") else base


def _abort(context: Any, status: grpc.StatusCode, code: str, message: str) -> NoReturn:
    rpc_id = str(uuid.uuid4())
    context.set_trailing_metadata((("error-code", code), ("rpc-id", rpc_id)))
    context.abort(status, f"{message} rpcId: {rpc_id}")
    raise AssertionError("context.abort returns only by raising")  # pragma: no cover


class _Credits:
    """Events the client asked for and has not received yet (num_requested adds up)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.pending = 0
        self.error: tuple[grpc.StatusCode, str, str] | None = None
        self.closed = False

    def add(self, n: int) -> None:
        with self._cond:
            self.pending += n
            self._cond.notify_all()

    def fail(self, status: grpc.StatusCode, code: str, message: str) -> None:
        with self._cond:
            self.error = (status, code, message)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)


class PubSubServicer(pb_grpc.PubSubServicer):
    """The `eventbus.v1.PubSub` methods over a `ChangeLog`."""

    def __init__(
        self,
        log: ChangeLog,
        *,
        keepalive: float = KEEPALIVE_S,
        first_keepalive: float = FIRST_KEEPALIVE_S,
        idle_close: float | None = IDLE_CLOSE_S,
        poll_interval: float = 0.05,
    ):
        self._log = log
        self._keepalive = keepalive
        self._first_keepalive = min(first_keepalive, keepalive)
        self._idle_close = idle_close
        self._poll = poll_interval
        self._schemas: dict[str, TopicSchema] = {}
        self._lock = threading.Lock()
        # What tests observe: Subscribe streams opened, and stored ids refused as corrupted.
        self.subscribe_calls = 0
        self.replay_refusals = 0

    # ---- shared checks ----------------------------------------------------------------------

    def _authenticate(self, context: Any) -> None:
        headers = {k: v for k, v in context.invocation_metadata()}
        token = str(headers.get("accesstoken", ""))
        if not token or not headers.get("instanceurl") or not self._log.validate_token(token):
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "Invalid session.")
        # Org ids compare on their 15 case-sensitive characters; the 18-character form adds a
        # checksum only.
        if str(headers.get("tenantid", ""))[:15] != self._log.org_id[:15]:
            _abort(
                context,
                grpc.StatusCode.UNAUTHENTICATED,
                AUTH_ERROR,
                "The tenantid header does not match the session's org.",
            )

    def _topic_schema(self, topic: str, context: Any) -> TopicSchema:
        if topic not in self._log.topics():
            _abort(context, grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, f"Topic {topic} not found.")
        describe = self._log.describe(_sobject_of(topic))
        schema = event_schema(describe) if topic.startswith("/event/") else cdc_schema(describe)
        with self._lock:
            self._schemas[schema.schema_id] = schema
        return schema

    # ---- unary methods ----------------------------------------------------------------------

    def GetTopic(self, request: Any, context: Any) -> Any:
        self._authenticate(context)
        schema = self._topic_schema(request.topic_name, context)
        return pb.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=self._log.org_id,
            can_publish=request.topic_name.startswith("/event/"),
            can_subscribe=True,
            schema_id=schema.schema_id,
            rpc_id=str(uuid.uuid4()),
        )

    def GetSchema(self, request: Any, context: Any) -> Any:
        self._authenticate(context)
        with self._lock:
            schema = self._schemas.get(request.schema_id)
        if schema is None:  # not derived yet in this process: derive every topic's schema once
            for topic in self._log.topics():
                self._topic_schema(topic, context)
            with self._lock:
                schema = self._schemas.get(request.schema_id)
        if schema is None:
            _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                SCHEMA_NOT_FOUND,
                f"Schema {request.schema_id} not found.",
            )
        return pb.SchemaInfo(
            schema_json=schema.schema_json, schema_id=schema.schema_id, rpc_id=str(uuid.uuid4())
        )

    def Publish(self, request: Any, context: Any) -> Any:
        self._authenticate(context)
        topic = request.topic_name
        schema = self._topic_schema(topic, context)
        if not topic.startswith("/event/"):
            _abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                PUBLISH_NOT_ALLOWED,
                f"Publishing to {topic} is not allowed: change events are Salesforce's own.",
            )
        results = [self._publish_one(topic, schema, event) for event in request.events]
        return pb.PublishResponse(
            results=results, schema_id=schema.schema_id, rpc_id=str(uuid.uuid4())
        )

    def _publish_one(self, topic: str, schema: TopicSchema, event: Any) -> Any:
        def failed(message: str) -> Any:
            error = pb.Error(code=pb.ErrorCode.PUBLISH, msg=message)
            return pb.PublishResult(error=error, correlation_key=event.id)

        if event.schema_id != schema.schema_id:
            return failed(f"schema id {event.schema_id} is not the current schema of {topic}")
        try:
            record = decode(schema, event.payload)
        except (PayloadError, ValueError, EOFError) as exc:
            return failed(f"payload does not match the schema: {exc}")
        fields = {
            name: value.isoformat() if isinstance(value, dt.date) else value
            for name, value in record.items()
            if name not in ("CreatedDate", "CreatedById")  # set by the platform
        }
        try:
            replay_id = self._publish_to_log(_sobject_of(topic), topic, fields)
        except Exception as exc:  # the sandbox refused the values (too long, bad type…)
            return failed(str(exc))
        return pb.PublishResult(replay_id=encode_replay_id(replay_id), correlation_key=event.id)

    def _publish_to_log(self, sobject: str, topic: str, fields: dict[str, Any]) -> int:
        publish_event = getattr(self._log, "publish_event", None)
        if publish_event is not None:
            return int(publish_event(sobject, fields))
        # SalesforceSandbox publishes through its org, as REST's POST /sobjects/X__e does; the
        # store lock (the one REST requests hold) keeps other events out until we read the id.
        sandbox: Any = self._log
        with sandbox.store.lock:
            sandbox.org.publish(sandbox.schema[sobject], fields)
            latest = self._log.latest_replay_id(topic)
        return int(latest or 0)

    # ---- Subscribe --------------------------------------------------------------------------

    def Subscribe(self, request_iterator: Iterator[Any], context: Any) -> Iterator[Any]:
        self._authenticate(context)
        with self._lock:
            self.subscribe_calls += 1
        first = next(request_iterator, None)
        if first is None:
            return
        topic = first.topic_name
        schema = self._topic_schema(topic, context)
        cursor = self._start(first, topic, context)
        credits = _Credits()
        credits.add(self._requested(first.num_requested, context))
        threading.Thread(
            target=self._read_requests,
            args=(request_iterator, topic, credits),
            daemon=True,
            name=f"pubsub requests {topic}",
        ).start()
        yield from self._deliver(topic, schema, cursor, credits, context)

    @staticmethod
    def _requested(num_requested: int, context: Any) -> int:
        if num_requested <= 0:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                REQUESTED_INVALID,
                "The requested number of events must be greater than zero.",
            )
        return min(num_requested, MAX_BATCH)

    def _start(self, first: Any, topic: str, context: Any) -> int | None:
        """The replay id delivery starts after (None: from the oldest retained event)."""
        if first.replay_preset == pb.ReplayPreset.LATEST:
            return self._log.latest_replay_id(topic)
        if first.replay_preset == pb.ReplayPreset.EARLIEST:
            return None
        replay_id = decode_replay_id(first.replay_id)
        if not first.replay_id:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                REPLAY_VALIDATION,
                "The replay_preset field in FetchRequest is set to ReplayPreset.CUSTOM, "
                "but no Replay ID value is set.",
            )
        # Valid only while the event it names is retained: an older id may hide purged events.
        found = self._log.read_changes(topic, replay_id - 1, 1) if replay_id else []
        if not found or found[0][0] != replay_id:
            with self._lock:
                self.replay_refusals += 1
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                REPLAY_CORRUPTED,
                "The Replay ID validation failed: it is invalid or outside the retention window.",
            )
        return replay_id

    def _read_requests(self, requests: Iterator[Any], topic: str, credits: _Credits) -> None:
        try:
            for request in requests:
                if request.topic_name and request.topic_name != topic:
                    message = f"Topic {request.topic_name} differs from {topic} of this stream."
                    credits.fail(grpc.StatusCode.INVALID_ARGUMENT, TOPIC_MISMATCH, message)
                    return
                if request.num_requested <= 0:
                    message = "The requested number of events must be greater than zero."
                    credits.fail(grpc.StatusCode.INVALID_ARGUMENT, REQUESTED_INVALID, message)
                    return
                credits.add(min(request.num_requested, MAX_BATCH))
        except Exception:  # the client cancelled: the delivery loop sees the closed context
            return
        finally:
            credits.close()

    def _deliver(
        self, topic: str, schema: TopicSchema, cursor: int | None, credits: _Credits, context: Any
    ) -> Iterator[Any]:
        started = last_sent = time.monotonic()
        keepalive = self._first_keepalive  # none at subscribe time; then ≤ 270 s apart
        owed_since = started  # since when nothing is owed to the client (pending == 0)
        while context.is_active():
            if credits.error is not None:
                _abort(context, *credits.error)
            if credits.pending > 0:
                rows = self._log.read_changes(topic, cursor, min(credits.pending, MAX_BATCH))
                if rows:
                    cursor = rows[-1][0]
                    credits.add(-len(rows))
                    yield self._response(topic, schema, rows, cursor, credits.pending)
                    last_sent = owed_since = time.monotonic()
                    continue
                owed_since = time.monotonic()
            elif credits.closed:
                return
            elif self._idle_close is not None and time.monotonic() - owed_since >= self._idle_close:
                return  # nothing asked for in a long while: the server ends the stream
            if time.monotonic() - last_sent >= keepalive:
                # The stream's own position, never beyond it: a client may store it as is.
                yield self._response(topic, schema, [], cursor, credits.pending)
                last_sent = time.monotonic()
                keepalive = self._keepalive
            credits.wait(self._poll)

    def _response(
        self,
        topic: str,
        schema: TopicSchema,
        rows: Sequence[tuple[int, float, dict[str, Any]]],
        cursor: int | None,
        pending: int,
    ) -> Any:
        events = []
        for replay_id, _, payload in rows:
            try:
                record = (
                    event_record(schema, payload)
                    if topic.startswith("/event/")
                    else cdc_record(schema, payload)
                )
            except PayloadError as exc:  # a sandbox bug, not the client's
                raise RuntimeError(f"event {replay_id} of {topic}: {exc}") from exc
            event_id = str(
                payload.get("EventUuid") or uuid.uuid5(uuid.NAMESPACE_URL, f"{topic}#{replay_id}")
            )
            events.append(
                pb.ConsumerEvent(
                    event=pb.ProducerEvent(
                        id=event_id, schema_id=schema.schema_id, payload=encode(schema, record)
                    ),
                    replay_id=encode_replay_id(replay_id),
                )
            )
        return pb.FetchResponse(
            events=events,
            latest_replay_id=encode_replay_id(cursor) if cursor is not None else b"",
            rpc_id=str(uuid.uuid4()),
            pending_num_requested=pending,
        )


class PubSubServer:
    """The gRPC server on a port of its own, TLS with the sandbox CA unless `tls` is None.

    `PubSubServer(sandbox, port=0, tls=ensure_tls(dir)).start()` binds a free port (`.port`);
    clients connect to `localhost:{port}` trusting `tls.ca_cert`.
    """

    def __init__(
        self,
        log: ChangeLog,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
        *,
        keepalive: float = KEEPALIVE_S,
        first_keepalive: float = FIRST_KEEPALIVE_S,
        idle_close: float | None = IDLE_CLOSE_S,
        poll_interval: float = 0.05,
        max_workers: int = 16,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.servicer = PubSubServicer(
            log,
            keepalive=keepalive,
            first_keepalive=first_keepalive,
            idle_close=idle_close,
            poll_interval=poll_interval,
        )
        # Each open Subscribe stream holds one worker thread.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
        pb_grpc.add_PubSubServicer_to_server(self.servicer, self._server)  # type: ignore[no-untyped-call]

    @property
    def target(self) -> str:
        """host:port for clients (`localhost`, the name the sandbox certificate carries)."""
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host  # noqa: S104
        return f"{host}:{self.port}"

    def start(self) -> PubSubServer:
        address = f"{self.host}:{self.port}"
        if self.tls is None:
            bound = self._server.add_insecure_port(address)
        else:
            pair = (self.tls.key.read_bytes(), self.tls.cert.read_bytes())
            bound = self._server.add_secure_port(address, grpc.ssl_server_credentials([pair]))
        if not bound:
            raise RuntimeError(f"cannot bind the Pub/Sub server to {address}")
        self.port = int(bound)
        self._server.start()
        return self

    def wait(self) -> None:
        """Block until stopped (the CLI's foreground mode)."""
        self._server.wait_for_termination()

    def stop(self, grace: float = 0.5) -> None:
        self._server.stop(grace).wait(timeout=5)

    def __enter__(self) -> PubSubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
