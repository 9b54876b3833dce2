"""The sandbox's Pub/Sub API, driven with the raw generated gRPC stubs the way any client would:
records written over HTTPS REST come out as Avro change events, with Salesforce's statuses."""

from __future__ import annotations

import datetime as dt
import io
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import Any

import fastavro
import grpc
import httpx
import pytest

from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.salesforce.pubsub import PubSubServer
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles, ensure_tls
from chronoforce.schemas.pubsub import pubsub_api_pb2 as pb
from chronoforce.schemas.pubsub import pubsub_api_pb2_grpc as pb_grpc

ORDERS = "/data/OrderChangeEvent"
SHIP_REQUESTS = "/event/Chronopost_Ship_Request__e"
FAST_STOP = {"timeout_graceful_shutdown": 0.5}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("pubsub-tls"))


@pytest.fixture(scope="module")
def running(tls_files: TlsFiles) -> Iterator[tuple[SalesforceSandbox, str, str]]:
    # Tokens outlive the clock jumps of the retention tests (expiry is tested elsewhere).
    sandbox = SalesforceSandbox(token_ttl=dt.timedelta(days=30))
    with (
        BackgroundServer(sandbox.app, tls=tls_files, options=FAST_STOP) as rest,
        PubSubServer(sandbox, tls=tls_files, keepalive=0.2) as grpc_server,
    ):
        yield sandbox, rest.url, grpc_server.target


@pytest.fixture()
def sandbox(running: tuple[SalesforceSandbox, str, str]) -> SalesforceSandbox:
    running[0].reset()
    return running[0]


@pytest.fixture()
def rest(
    running: tuple[SalesforceSandbox, str, str], sandbox: SalesforceSandbox, tls_files: TlsFiles
) -> Iterator[httpx.Client]:
    base = running[1]
    trust = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    with httpx.Client(verify=trust, timeout=10) as http:
        token = http.post(
            f"{base}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        ).json()
        http.base_url = httpx.URL(f"{base}/services/data/v61.0/")
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        http.headers["X-Token"] = token["access_token"]  # read back by `auth` below
        http.headers["X-Instance"] = token["instance_url"]
        yield http


@pytest.fixture()
def stub(running: tuple[SalesforceSandbox, str, str], tls_files: TlsFiles) -> Iterator[Any]:
    credentials = grpc.ssl_channel_credentials(tls_files.ca_cert.read_bytes())
    with grpc.secure_channel(running[2], credentials) as channel:
        yield pb_grpc.PubSubStub(channel)


@pytest.fixture()
def auth(rest: httpx.Client, sandbox: SalesforceSandbox) -> list[tuple[str, str]]:
    return [
        ("accesstoken", rest.headers["X-Token"]),
        ("instanceurl", rest.headers["X-Instance"]),
        ("tenantid", sandbox.org_id),
    ]


def create_order(rest: httpx.Client, status: str = "Draft") -> str:
    account = rest.post("sobjects/Account", json={"Name": "Dupont SARL"}).json()["id"]
    response = rest.post(
        "sobjects/Order",
        json={"AccountId": account, "Status": status, "EffectiveDate": "2024-05-02"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


class Stream:
    """A Subscribe call whose requests the test sends one by one."""

    def __init__(self, stub: Any, auth: list[tuple[str, str]], first: Any) -> None:
        self.requests: Queue[Any] = Queue()
        self.requests.put(first)
        self.call = stub.Subscribe(iter(self.requests.get, None), metadata=auth)

    def next(self) -> Any:
        return next(self.call)

    def events_until(self, count: int) -> list[Any]:
        events: list[Any] = []
        while len(events) < count:
            events.extend(self.next().events)
        return events

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


@pytest.fixture()
def open_stream(stub: Any, auth: list[tuple[str, str]]) -> Iterator[Any]:
    streams: list[Stream] = []

    def opener(topic: str = ORDERS, **fields: Any) -> Stream:
        fields.setdefault("num_requested", 100)
        stream = Stream(stub, auth, pb.FetchRequest(topic_name=topic, **fields))
        streams.append(stream)
        return stream

    yield opener
    for stream in streams:
        stream.close()


def decode(stub: Any, auth: Any, consumer_event: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    info = stub.GetSchema(pb.SchemaRequest(schema_id=consumer_event.event.schema_id), metadata=auth)
    schema = json.loads(info.schema_json)
    record = fastavro.schemaless_reader(
        io.BytesIO(consumer_event.event.payload), fastavro.parse_schema(schema)
    )
    assert isinstance(record, dict)
    return schema, record


def bitmap_names(schema: dict[str, Any], bitmaps: list[str]) -> set[str]:
    bits = int(bitmaps[0], 16) if bitmaps else 0
    return {f["name"] for i, f in enumerate(schema["fields"]) if bits >> i & 1}


# ---- the contract ------------------------------------------------------------------------


def test_our_proto_has_salesforce_messages_field_numbers_and_methods(
    reference_dir: Path, tmp_path: Path
) -> None:
    reference = reference_dir / "salesforce" / "pubsub_api.proto"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{reference.parent}",
            f"--descriptor_set_out={tmp_path / 'ref.pb'}",
            reference.name,
        ],
        check=True,
    )
    from google.protobuf import descriptor_pb2

    theirs = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "ref.pb").read_bytes()).file[0]
    ours = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(ours)

    def shape(file: Any) -> dict[str, Any]:
        return {
            "package": file.package,
            "messages": {
                m.name: {(f.name, f.number, f.type, f.label, f.type_name) for f in m.field}
                for m in file.message_type
            },
            "enums": {e.name: {(v.name, v.number) for v in e.value} for e in file.enum_type},
            "methods": {
                (m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for s in file.service
                for m in s.method
            },
        }

    assert shape(ours) == shape(theirs)


# ---- change data capture -----------------------------------------------------------------


def test_order_created_over_rest_arrives_as_create_event_with_header(
    rest: httpx.Client, stub: Any, auth: Any, open_stream: Any
) -> None:
    order_id = create_order(rest)
    (event,) = open_stream(replay_preset=pb.ReplayPreset.EARLIEST).events_until(1)
    schema, record = decode(stub, auth, event)
    header = record["ChangeEventHeader"]
    assert schema["name"] == "OrderChangeEvent"
    assert schema["fields"][0]["name"] == "ChangeEventHeader"
    assert header["entityName"] == "Order"
    assert header["recordIds"] == [order_id]
    assert header["changeType"] == "CREATE"
    assert header["transactionKey"]
    assert record["Status"] == "Draft"
    assert record["EffectiveDate"] == dt.date(2024, 5, 2)
    assert len(event.replay_id) == 8


def test_update_names_changed_fields_in_a_salesforce_bitmap(
    rest: httpx.Client, stub: Any, auth: Any, open_stream: Any
) -> None:
    order_id = create_order(rest)
    assert rest.patch(f"sobjects/Order/{order_id}", json={"Status": "Activated"}).status_code == 204
    events = open_stream(replay_preset=pb.ReplayPreset.EARLIEST).events_until(2)
    schema, record = decode(stub, auth, events[1])
    header = record["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert all(b.startswith("0x") for b in header["changedFields"])
    assert "Status" in bitmap_names(schema, header["changedFields"])
    assert record["Status"] == "Activated"


def test_get_topic_names_the_org_and_a_schema_id_stable_across_calls(
    sandbox: SalesforceSandbox, stub: Any, auth: Any
) -> None:
    first = stub.GetTopic(pb.TopicRequest(topic_name=ORDERS), metadata=auth)
    second = stub.GetTopic(pb.TopicRequest(topic_name=ORDERS), metadata=auth)
    assert first.tenant_guid == sandbox.org_id
    assert first.can_subscribe and not first.can_publish
    assert first.schema_id == second.schema_id and len(first.schema_id) == 22
    info = stub.GetSchema(pb.SchemaRequest(schema_id=first.schema_id), metadata=auth)
    assert json.loads(info.schema_json)["name"] == "OrderChangeEvent"


# ---- replay --------------------------------------------------------------------------------


def test_latest_delivers_only_events_after_the_subscription(
    rest: httpx.Client, stub: Any, auth: Any, open_stream: Any
) -> None:
    create_order(rest)
    stream = open_stream(replay_preset=pb.ReplayPreset.LATEST)
    assert stream.next().events == []  # the subscription is in place
    new_order = create_order(rest)
    (event,) = stream.events_until(1)
    assert decode(stub, auth, event)[1]["ChangeEventHeader"]["recordIds"] == [new_order]


def test_custom_replay_delivers_exactly_the_events_after_the_given_id(
    rest: httpx.Client, open_stream: Any
) -> None:
    for _ in range(4):
        create_order(rest)
    everything = open_stream(replay_preset=pb.ReplayPreset.EARLIEST).events_until(4)
    resumed = open_stream(replay_preset=pb.ReplayPreset.CUSTOM, replay_id=everything[1].replay_id)
    after = resumed.events_until(2)
    assert [e.replay_id for e in after] == [e.replay_id for e in everything[2:]]
    for _ in range(2):  # nothing more: the stream only keeps alive
        assert resumed.next().events == []


def test_replay_id_older_than_72_hours_is_invalid_argument_replayid_corrupted(
    sandbox: SalesforceSandbox, rest: httpx.Client, open_stream: Any
) -> None:
    create_order(rest)
    (old,) = open_stream(replay_preset=pb.ReplayPreset.EARLIEST).events_until(1)
    sandbox.advance_clock(dt.timedelta(hours=73))
    stream = open_stream(replay_preset=pb.ReplayPreset.CUSTOM, replay_id=old.replay_id)
    with pytest.raises(grpc.RpcError) as failure:
        stream.next()
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailers = dict(failure.value.trailing_metadata())
    assert trailers["error-code"] == (
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    )
    assert "rpcId:" in failure.value.details()


def test_custom_preset_without_replay_id_is_invalid_argument(open_stream: Any) -> None:
    stream = open_stream(replay_preset=pb.ReplayPreset.CUSTOM)
    with pytest.raises(grpc.RpcError) as failure:
        stream.next()
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(failure.value.trailing_metadata())["error-code"].endswith("validation.failed")


# ---- flow control ----------------------------------------------------------------------------


def test_server_sends_no_more_events_than_requested_until_asked_again(
    rest: httpx.Client, open_stream: Any
) -> None:
    for _ in range(5):
        create_order(rest)
    stream = open_stream(replay_preset=pb.ReplayPreset.EARLIEST, num_requested=2)
    assert len(stream.events_until(2)) == 2
    for _ in range(3):  # a few keepalives (0.2 s apart) pass without any event
        response = stream.next()
        assert response.events == [] and response.pending_num_requested == 0
    stream.requests.put(pb.FetchRequest(num_requested=3))
    assert len(stream.events_until(3)) == 3


def test_requested_count_of_zero_is_invalid_argument(open_stream: Any) -> None:
    stream = open_stream(replay_preset=pb.ReplayPreset.EARLIEST, num_requested=0)
    with pytest.raises(grpc.RpcError) as failure:
        stream.next()
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_changing_topic_mid_stream_is_invalid_argument(open_stream: Any) -> None:
    stream = open_stream(replay_preset=pb.ReplayPreset.LATEST)
    stream.next()
    stream.requests.put(pb.FetchRequest(topic_name="/data/AccountChangeEvent", num_requested=1))
    with pytest.raises(grpc.RpcError) as failure:
        while True:
            stream.next()
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- authentication and unknown topics ---------------------------------------------------------


@pytest.mark.parametrize("header", ["accesstoken", "tenantid"])
def test_wrong_token_or_org_answers_unauthenticated(
    stub: Any, auth: list[tuple[str, str]], header: str
) -> None:
    metadata = [(k, "00D000000000000" if k == header else v) for k, v in auth]
    with pytest.raises(grpc.RpcError) as failure:
        stub.GetTopic(pb.TopicRequest(topic_name=ORDERS), metadata=metadata)
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(failure.value.trailing_metadata())["error-code"] == (
        "sfdc.platform.eventbus.grpc.service.auth.error"
    )


def test_subscribe_without_token_answers_unauthenticated(stub: Any) -> None:
    call = stub.Subscribe(iter([pb.FetchRequest(topic_name=ORDERS, num_requested=1)]))
    with pytest.raises(grpc.RpcError) as failure:
        next(call)
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_unknown_topic_answers_not_found(stub: Any, auth: Any, open_stream: Any) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        stub.GetTopic(pb.TopicRequest(topic_name="/data/NoSuchChangeEvent"), metadata=auth)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as failure:
        open_stream("/event/No_Such__e").next()
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_schema_id_answers_not_found(stub: Any, auth: Any) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        stub.GetSchema(pb.SchemaRequest(schema_id="nope"), metadata=auth)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


# ---- platform events -------------------------------------------------------------------------


def test_platform_event_posted_over_rest_arrives_on_its_event_topic(
    rest: httpx.Client, stub: Any, auth: Any, open_stream: Any
) -> None:
    posted = rest.post(
        "sobjects/Chronopost_Ship_Request__e",
        json={"Record_Id__c": "801000000000001AAA", "Object__c": "Order", "Reason__c": "new"},
    )
    assert posted.status_code == 201, posted.text
    (event,) = open_stream(SHIP_REQUESTS, replay_preset=pb.ReplayPreset.EARLIEST).events_until(1)
    schema, record = decode(stub, auth, event)
    assert schema["name"] == "Chronopost_Ship_Request__e"
    assert record["Record_Id__c"] == "801000000000001AAA"
    assert record["Object__c"] == "Order"
    assert isinstance(record["CreatedDate"], dt.datetime)
    assert record["CreatedById"].startswith("005")


def test_platform_event_published_over_grpc_reaches_subscribers(
    stub: Any, auth: Any, open_stream: Any
) -> None:
    topic = stub.GetTopic(pb.TopicRequest(topic_name=SHIP_REQUESTS), metadata=auth)
    info = stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id), metadata=auth)
    parsed = fastavro.parse_schema(json.loads(info.schema_json))
    payload = io.BytesIO()
    fastavro.schemaless_writer(
        payload,
        parsed,
        {
            "CreatedDate": dt.datetime.now(dt.UTC),
            "CreatedById": "",
            "Record_Id__c": "801000000000002AAA",
            "Object__c": "Order",
            "Reason__c": None,
        },
    )
    event = pb.ProducerEvent(id="ours-1", schema_id=topic.schema_id, payload=payload.getvalue())
    published = stub.Publish(
        pb.PublishRequest(topic_name=SHIP_REQUESTS, events=[event]), metadata=auth
    )
    (result,) = published.results
    assert not result.HasField("error") and result.correlation_key == "ours-1"
    (delivered,) = open_stream(SHIP_REQUESTS, replay_preset=pb.ReplayPreset.EARLIEST).events_until(
        1
    )
    assert delivered.replay_id == result.replay_id
    assert decode(stub, auth, delivered)[1]["Record_Id__c"] == "801000000000002AAA"


def test_publishing_on_a_change_event_topic_is_refused(stub: Any, auth: Any) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        stub.Publish(pb.PublishRequest(topic_name=ORDERS), metadata=auth)
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_server_refuses_clients_that_do_not_trust_its_ca(
    running: tuple[SalesforceSandbox, str, str], auth: Any
) -> None:
    system_roots_only = grpc.ssl_channel_credentials()
    with (
        grpc.secure_channel(running[2], system_roots_only) as channel,
        pytest.raises(grpc.RpcError) as failure,
    ):
        pb_grpc.PubSubStub(channel).GetTopic(
            pb.TopicRequest(topic_name=ORDERS), metadata=auth, timeout=5
        )
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


# ---- command line ------------------------------------------------------------------------------


def test_cli_grpc_port_serves_the_pub_sub_api_beside_rest(tmp_path: Path) -> None:
    from chronoforce.sandbox.server import free_port

    rest_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable,
        "-c",
        "from chronoforce.cli import app; app()",
        "sandbox",
        "salesforce",
        "--port",
        str(rest_port),
        "--grpc-port",
        str(grpc_port),
        "--tls-dir",
        str(tmp_path),
    ]
    ca = ensure_tls(tmp_path).ca_cert  # the command reuses this CA, so the test can trust it
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        channel = grpc.secure_channel(
            f"localhost:{grpc_port}", grpc.ssl_channel_credentials(ca.read_bytes())
        )
        grpc.channel_ready_future(channel).result(timeout=30)
        with channel, pytest.raises(grpc.RpcError) as failure:
            pb_grpc.PubSubStub(channel).GetTopic(pb.TopicRequest(topic_name=ORDERS), timeout=5)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED  # served, and guarded
    finally:
        process.terminate()
        process.wait(timeout=10)
