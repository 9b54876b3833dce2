"""The tracking webhook: signed pushes are stored before 202 and ingested exactly once."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from chronoforce.config import Secrets, Settings
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.store.db import Store
from chronoforce.store.models import Event, Parcel, Shipment, WebhookInbox
from chronoforce.web.app import create_app
from chronoforce.web.webhooks import PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

SECRET = "whsec-test-6f1c2a"
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


def settings(secret: str | None = SECRET, **tracking: Any) -> Settings:
    return Settings(
        secrets=Secrets(webhook_secret=SecretStr(secret) if secret else None), tracking=tracking
    )


@pytest.fixture()
def serve(store: Store) -> Iterator[Callable[..., httpx.Client]]:
    servers: list[BackgroundServer] = []
    clients: list[httpx.Client] = []

    def start(config: Settings | None = None) -> httpx.Client:
        app = create_app(config or settings(), SimpleNamespace(store=store))
        server = BackgroundServer(app).start()
        servers.append(server)
        client = httpx.Client(base_url=server.url, timeout=30)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def labeled(store: Store, n: int) -> None:
    with store.session() as session:
        for i in range(n):
            shipment = Shipment(
                sf_object="Order",
                sf_id=f"801{i:015d}",
                state="labeled",
                status="label_created",
                source={"shipment_id": f"0OB{i:015d}"},
            )
            session.add(shipment)
            session.flush()
            session.add(
                Parcel(shipment_id=shipment.id, skybill_number=f"XY{i:07d}FR", weight_kg=Decimal(1))
            )


def pushed(
    event_id: str, skybill: str = "XY0000000FR", code: str = "TA", hours: float = 0
) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "skybillNumber": skybill,
        "code": code,
        "eventDate": (T0 + dt.timedelta(hours=hours)).isoformat(),
        "eventLabel": "Envoi en cours de livraison",
        "officeLabel": "PARIS 15",
        "zipCode": "75015",
        "highPriority": False,
    }


def post(
    client: httpx.Client,
    body: Any,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, ts, data),
    }
    return client.post(PATH, content=data, headers=headers)


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


def count(store: Store, model: Any, *where: Any) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def status_of(store: Store, sf_id: str) -> str:
    with store.session() as session:
        return str(session.scalar(select(Shipment.status).where(Shipment.sf_id == sf_id)))


# --- the app ----------------------------------------------------------------------------------


def test_health_answers_200_without_authentication(serve: Callable[..., httpx.Client]) -> None:
    response = serve().get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


# --- accepted ---------------------------------------------------------------------------------


def test_signed_batch_is_accepted_then_ingested(
    store: Store, serve: Callable[..., httpx.Client]
) -> None:
    labeled(store, 1)
    client = serve()
    response = post(client, {"events": [pushed("e1", code="SC"), pushed("e2", code="TA", hours=5)]})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == ["e1", "e2"]
    wait_for(lambda: status_of(store, "801000000000000000") == "out_for_delivery")
    assert count(store, WebhookInbox, WebhookInbox.state == "done") == 2


def test_a_single_event_object_is_accepted(
    store: Store, serve: Callable[..., httpx.Client]
) -> None:
    labeled(store, 1)
    assert post(serve(), pushed("only", code="D")).status_code == 202
    wait_for(lambda: status_of(store, "801000000000000000") == "delivered")


def test_a_rotated_secret_may_be_offered_beside_the_old_one(
    serve: Callable[..., httpx.Client],
) -> None:
    client = serve()
    data = json.dumps(pushed("rot")).encode()
    ts = str(int(time.time()))
    both = f"{sign('old-secret', ts, data)}, {sign(SECRET, ts, data)}"
    response = client.post(
        PATH, content=data, headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: both}
    )
    assert response.status_code == 202


# --- refused ----------------------------------------------------------------------------------


def test_wrong_signature_answers_401_and_stores_nothing(
    store: Store, serve: Callable[..., httpx.Client]
) -> None:
    response = post(serve(), pushed("bad"), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["detail"] == "signature does not match"
    assert count(store, WebhookInbox) == 0


def test_body_changed_after_signing_answers_401(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    ts = str(int(time.time()))
    signature = sign(SECRET, ts, json.dumps(pushed("x", code="TA")).encode())
    tampered = json.dumps(pushed("x", code="D")).encode()
    response = client.post(
        PATH, content=tampered, headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}
    )
    assert response.status_code == 401


def test_missing_headers_answer_401(serve: Callable[..., httpx.Client]) -> None:
    response = serve().post(PATH, json=pushed("x"))
    assert response.status_code == 401 and "missing" in response.json()["detail"]


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_five_minutes_answers_401(
    store: Store, serve: Callable[..., httpx.Client], skew: int
) -> None:
    response = post(serve(), pushed("late"), timestamp=int(time.time()) + skew)
    assert response.status_code == 401
    assert "window" in response.json()["detail"]
    assert count(store, WebhookInbox) == 0


def test_replayed_request_answers_409_and_is_not_ingested_twice(
    store: Store, serve: Callable[..., httpx.Client]
) -> None:
    labeled(store, 1)
    client = serve()
    assert post(client, pushed("once")).status_code == 202
    replay = post(client, pushed("once"))
    assert replay.status_code == 409 and replay.json()["duplicates"] == ["once"]
    mixed = post(client, {"events": [pushed("once"), pushed("twice", code="D", hours=1)]})
    assert mixed.status_code == 202
    assert mixed.json() | {"received_at": None} == {
        "accepted": ["twice"],
        "duplicates": ["once"],
        "received_at": None,
    }
    assert count(store, WebhookInbox) == 2


def test_malformed_json_answers_422_with_a_clear_body(serve: Callable[..., httpx.Client]) -> None:
    response = post(serve(), None, raw=b'{"events": [')
    assert response.status_code == 422
    assert response.json()["detail"].startswith("invalid body:")


def test_invalid_events_answer_422_naming_each_field(serve: Callable[..., httpx.Client]) -> None:
    naive = pushed("n") | {"eventDate": "2026-03-02T08:00:00"}
    unknown = pushed("u") | {"color": "red"}
    missing = {k: v for k, v in pushed("m").items() if k != "code"}
    response = post(serve(), {"events": [naive, unknown, missing]})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "invalid tracking events"
    locs = {e["loc"] for e in body["errors"]}
    assert locs == {"events.0.eventDate", "events.1.color", "events.2.code"}


def test_oversized_body_answers_413(store: Store, serve: Callable[..., httpx.Client]) -> None:
    client = serve(settings(webhook_max_bytes=4096))
    events = {"events": [pushed(f"big{i}") for i in range(40)]}
    response = post(client, events)
    assert response.status_code == 413
    assert count(store, WebhookInbox) == 0


def test_too_many_events_in_one_request_answer_422(serve: Callable[..., httpx.Client]) -> None:
    client = serve(settings(webhook_max_events=3))
    response = post(client, {"events": [pushed(f"e{i}") for i in range(4)]})
    assert response.status_code == 422 and "at most 3 events" in response.json()["detail"]


def test_without_a_configured_secret_the_webhook_answers_503(
    serve: Callable[..., httpx.Client],
) -> None:
    response = post(serve(settings(secret=None)), pushed("x"))
    assert response.status_code == 503


# --- a burst --------------------------------------------------------------------------------


def test_burst_of_1000_events_in_parallel_requests_is_processed_exactly_once(
    store: Store, serve: Callable[..., httpx.Client]
) -> None:
    labeled(store, 250)
    client = serve()
    codes = ["DB", "SC", "TA", "D"]
    events = [
        pushed(f"burst-{i}-{code}", f"XY{i:07d}FR", code, hours=n)
        for i in range(250)
        for n, code in enumerate(codes)
    ]
    batches = [events[k : k + 10] for k in range(0, len(events), 10)]
    batches += batches[:20]  # senders retry: 200 events arrive twice
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda b: post(client, {"events": b}).status_code, batches))
    assert answers.count(202) == 100 and answers.count(409) == 20
    wait_for(lambda: count(store, WebhookInbox, WebhookInbox.state == "done") == 1000, 60)
    assert count(store, WebhookInbox) == 1000
    assert count(store, Event) == 1000
    assert count(store, Shipment, Shipment.status == "delivered") == 250


def test_accepted_events_wait_in_the_inbox_until_processed(store: Store) -> None:
    from chronoforce.pipeline.tracking import Tracking, process_inbox

    labeled(store, 1)
    app = create_app(settings(), SimpleNamespace(store=store), drain_inbox=False)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        assert post(client, pushed("kept", code="D")).status_code == 202
    # The server is gone; the event is in the database, and a later drain ingests it once.
    assert status_of(store, "801000000000000000") == "label_created"
    tracking = Tracking(store)
    assert (process_inbox(tracking), process_inbox(tracking)) == (1, 0)
    assert status_of(store, "801000000000000000") == "delivered"
