"""chronoforce's Pub/Sub subscriber against the Salesforce sandbox's gRPC server over TLS:
decoded change events, resume from a stored replay id, gaps and auth as typed errors."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chronoforce.domain.errors import PermanentError, TransientError
from chronoforce.salesforce.pubsub import (
    ChangeEvent,
    PubSubAuthError,
    PubSubClient,
    PubSubCredentials,
    ReplayGapError,
    TopicNotFoundError,
    consume,
    decode_bitmap,
    to_change_event,
)
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.salesforce.pubsub import PubSubServer
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles, ensure_tls

ORDERS = "/data/OrderChangeEvent"
SHIP_REQUESTS = "/event/Chronopost_Ship_Request__e"
IDLE = 1.0  # seconds without an event that end a test's iteration


@dataclass
class Org:
    """The sandbox, a REST session on it, and a subscriber client on its gRPC port."""

    sandbox: SalesforceSandbox
    rest: httpx.Client
    pubsub: PubSubClient
    credentials: PubSubCredentials
    target: str
    tls: TlsFiles

    def create_order(self, status: str = "Draft") -> str:
        account = self.rest.post("sobjects/Account", json={"Name": "Martin & Fils"}).json()["id"]
        response = self.rest.post(
            "sobjects/Order",
            json={"AccountId": account, "Status": status, "EffectiveDate": "2024-06-03"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def events(self, topic: str = ORDERS, **options: Any) -> list[ChangeEvent]:
        with self.pubsub.subscribe(topic, idle_timeout=IDLE, **options) as subscription:
            return list(subscription)


@pytest.fixture(scope="module")
def pubsub_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SalesforceSandbox, str, str, TlsFiles]]:
    tls = ensure_tls(tmp_path_factory.mktemp("pubsub-client-tls"))
    # Tokens outlive the clock jumps of the retention test (expiry is tested elsewhere).
    sandbox = SalesforceSandbox(token_ttl=dt.timedelta(days=30))
    with (
        BackgroundServer(sandbox.app, tls=tls, options={"timeout_graceful_shutdown": 0.5}) as web,
        PubSubServer(sandbox, tls=tls, keepalive=0.2) as grpc_server,
    ):
        yield sandbox, web.url, grpc_server.target, tls


@pytest.fixture()
def sf(pubsub_env: tuple[SalesforceSandbox, str, str, TlsFiles]) -> Iterator[Org]:
    sandbox, base, target, tls = pubsub_env
    sandbox.reset()
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tls.ca_cert))) as rest:
        token = rest.post(
            f"{base}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        ).json()
        rest.base_url = httpx.URL(f"{base}/services/data/v61.0/")
        rest.headers["Authorization"] = f"Bearer {token['access_token']}"
        credentials = PubSubCredentials(
            token["access_token"], token["instance_url"], sandbox.org_id
        )
        with PubSubClient(target, credentials, ca_file=tls.ca_cert) as pubsub:
            yield Org(sandbox, rest, pubsub, credentials, target, tls)


# ---- decoded events --------------------------------------------------------------------------


def test_created_order_arrives_as_a_change_event_with_its_header(sf: Org) -> None:
    order_id = sf.create_order()
    (event,) = sf.events(start="EARLIEST")
    assert event.topic == ORDERS
    assert event.entity == "Order"
    assert event.record_ids == (order_id,)
    assert event.change_type == "CREATE"
    assert event.fields["Status"] == "Draft"
    assert event.fields["EffectiveDate"] == dt.date(2024, 6, 3)
    assert event.header["transactionKey"]
    assert abs(event.commit_timestamp - sf.sandbox.now()) < dt.timedelta(minutes=1)
    assert len(event.replay_id) == 8


def test_updated_order_names_its_changed_fields(sf: Org) -> None:
    order_id = sf.create_order()
    sf.rest.patch(f"sobjects/Order/{order_id}", json={"Status": "Activated"})
    created, updated = sf.events(start="EARLIEST")
    assert updated.change_type == "UPDATE"
    assert "Status" in updated.changed_fields
    assert not any(name.startswith("0x") for name in updated.changed_fields)
    assert updated.fields["Status"] == "Activated"
    assert created.replay_id < updated.replay_id


def test_platform_event_arrives_with_its_fields_and_created_date(sf: Org) -> None:
    posted = sf.rest.post(
        "sobjects/Chronopost_Ship_Request__e",
        json={"Record_Id__c": "801000000000007AAA", "Object__c": "Order", "Reason__c": "ship"},
    )
    assert posted.status_code == 201, posted.text
    (event,) = sf.events(SHIP_REQUESTS, start="EARLIEST")
    assert event.entity == "Chronopost_Ship_Request__e"
    assert event.change_type == "EVENT"
    assert event.fields["Record_Id__c"] == "801000000000007AAA"
    assert abs(event.commit_timestamp - sf.sandbox.now()) < dt.timedelta(minutes=1)


def test_topic_info_and_schema_come_from_the_org(sf: Org) -> None:
    info = sf.pubsub.get_topic(ORDERS)
    assert info.tenant_guid == sf.sandbox.org_id and info.can_subscribe
    schema = sf.pubsub.get_schema(info.schema_id)
    assert schema["fields"][0]["name"] == "ChangeEventHeader"
    assert sf.pubsub.get_schema(info.schema_id) is schema  # cached by id


# ---- replay ------------------------------------------------------------------------------------


def test_resume_from_a_stored_replay_id_delivers_exactly_the_events_after_it(sf: Org) -> None:
    orders = [sf.create_order() for _ in range(5)]
    first_two = sf.events(start="EARLIEST")[:2]
    stored = first_two[-1].replay_id
    resumed = sf.events(replay_id=stored)
    assert [e.record_ids[0] for e in resumed] == orders[2:]


def test_latest_skips_what_happened_before_the_subscription(sf: Org) -> None:
    sf.create_order()
    with sf.pubsub.subscribe(ORDERS, idle_timeout=IDLE) as subscription:
        assert subscription.wait_ready()
        later = sf.create_order()
        assert [e.record_ids for e in subscription] == [(later,)]
        assert subscription.latest_replay_id is not None


def test_replay_id_older_than_the_72_hour_retention_raises_replay_gap_error(sf: Org) -> None:
    sf.create_order()
    (old,) = sf.events(start="EARLIEST")
    sf.sandbox.advance_clock(dt.timedelta(hours=72, minutes=1))
    with pytest.raises(ReplayGapError) as gap:
        sf.events(replay_id=old.replay_id)
    assert gap.value.reason == "expired"
    assert gap.value.topic == ORDERS
    assert gap.value.resume_replay_id is None
    assert isinstance(gap.value, PermanentError)


def test_consume_saves_each_replay_id_only_after_its_event_was_handled(sf: Org) -> None:
    orders = [sf.create_order() for _ in range(4)]
    handled: list[str] = []
    saved: list[bytes] = []

    def handle(event: ChangeEvent) -> None:
        if len(handled) == 2:
            raise RuntimeError("worker crashed on the third event")
        handled.append(event.record_ids[0])

    subscription = sf.pubsub.subscribe(ORDERS, start="EARLIEST", idle_timeout=IDLE)
    with pytest.raises(RuntimeError):
        consume(subscription, handle, saved.append)
    assert handled == orders[:2] and len(saved) == 2
    # A restart from the saved id redoes the third event: nothing is skipped.
    assert [e.record_ids[0] for e in sf.events(replay_id=saved[-1])] == orders[2:]


def test_small_batches_still_deliver_every_event_in_order(sf: Org) -> None:
    orders = [sf.create_order() for _ in range(7)]
    with sf.pubsub.subscribe(
        ORDERS, start="EARLIEST", batch_size=2, idle_timeout=IDLE
    ) as subscription:
        assert [e.record_ids[0] for e in subscription] == orders
        assert subscription.delivered == 7


# ---- errors ------------------------------------------------------------------------------------


def test_wrong_token_raises_pubsub_auth_error_a_transient_session_error(sf: Org) -> None:
    wrong = PubSubCredentials("00D!not-a-token", sf.credentials.instance_url, sf.sandbox.org_id)
    with PubSubClient(sf.target, wrong, ca_file=sf.tls.ca_cert) as client:
        with pytest.raises(PubSubAuthError) as failure:
            client.get_topic(ORDERS)
        assert isinstance(failure.value, TransientError)
        assert failure.value.code == "INVALID_SESSION_ID"
        assert "not-a-token" not in str(failure.value)
        with pytest.raises(PubSubAuthError):
            list(client.subscribe(ORDERS, idle_timeout=IDLE))


def test_credentials_callable_is_asked_again_for_every_call(sf: Org) -> None:
    calls: list[int] = []

    def current() -> PubSubCredentials:
        calls.append(1)
        return sf.credentials

    with PubSubClient(sf.target, current, ca_file=sf.tls.ca_cert) as client:
        client.get_topic(ORDERS)
        client.get_topic(ORDERS)
    assert len(calls) == 2


def test_unknown_topic_raises_topic_not_found(sf: Org) -> None:
    with pytest.raises(TopicNotFoundError):
        sf.pubsub.get_topic("/data/NoSuchChangeEvent")
    with pytest.raises(TopicNotFoundError):
        sf.events("/event/No_Such__e")


def test_batch_size_outside_salesforce_limit_is_refused_before_any_call(sf: Org) -> None:
    with pytest.raises(ValueError, match=r"1\.\.100"):
        sf.pubsub.subscribe(ORDERS, batch_size=101)


# ---- decoding rules (pure) ---------------------------------------------------------------------

ADDRESS = {
    "type": "record",
    "name": "Address",
    "fields": [{"name": n, "type": ["null", "string"]} for n in ("Street", "City", "PostalCode")],
}
SCHEMA = {
    "type": "record",
    "name": "OrderChangeEvent",
    "fields": [
        {"name": "ChangeEventHeader", "type": "string"},
        {"name": "Status", "type": ["null", "string"]},
        {"name": "ShippingAddress", "type": ["null", ADDRESS]},
        {"name": "TotalAmount", "type": ["null", "double"]},
    ],
}


def test_bitmap_bits_name_schema_fields_least_significant_first() -> None:
    assert decode_bitmap(SCHEMA, ["0xA"]) == ["Status", "TotalAmount"]
    assert decode_bitmap(SCHEMA, []) == []


def test_nested_bitmap_names_compound_fields_as_parent_dot_child() -> None:
    names = decode_bitmap(SCHEMA, ["0x6", "2-0x5"])
    assert names == ["Status", "ShippingAddress.Street", "ShippingAddress.PostalCode"]


def test_plain_field_names_pass_through_the_bitmap_decoder() -> None:
    assert decode_bitmap(SCHEMA, ["Status"]) == ["Status"]


def test_gap_event_becomes_replay_gap_error_carrying_where_to_resume(sf: Org) -> None:
    header = {
        "entityName": "Order",
        "recordIds": ["801000000000009AAA"],
        "changeType": "GAP_UPDATE",
        "commitTimestamp": 1_717_400_000_000,
        "changedFields": [],
    }
    event = to_change_event(
        ORDERS, b"\0" * 7 + b"\x09", "e1", "s1", SCHEMA, {"ChangeEventHeader": header}
    )
    assert event.change_type == "GAP_UPDATE"
    subscription = sf.pubsub.subscribe(ORDERS, idle_timeout=IDLE)
    try:
        with pytest.raises(ReplayGapError) as gap:
            subscription._checked(event)
    finally:
        subscription.close()
    assert gap.value.reason == "gap_event"
    assert gap.value.record_ids == ("801000000000009AAA",)
    assert gap.value.resume_replay_id == event.replay_id
