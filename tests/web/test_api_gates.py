"""The API's carrier calls take the cluster's gates, as the workers' do (issue 16, item 1).

The web app is served on its own (`chronoforce web`: no runtime handed in), against the same
database as the workers; what Chronopost saw is counted at the sandbox: its request log and
its high-water mark of requests in flight.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chronoforce.pipeline.breaker import CircuitBreaker
from chronoforce.pipeline.runtime import Runtime, build_runtime
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.store.models import Shipment
from chronoforce.web.app import create_app
from tests.web.conftest import API_KEY, ApiWorld, api_world_at

HEADERS = {"X-API-Key": API_KEY}


@contextmanager
def own_app(world: ApiWorld) -> Iterator[httpx.Client]:
    """The web app as `chronoforce web` serves it: it builds its own runtime, with the cluster's gates."""
    app = create_app(world.runtime.settings, drain_inbox=False)
    web = BackgroundServer(app, options={"timeout_graceful_shutdown": 1}).start()
    try:
        with httpx.Client(base_url=web.url, timeout=60, headers=HEADERS) as http:
            yield http
    finally:
        web.stop()
        app.state.api.close()


def _label(world: ApiWorld, runtime: Runtime, order_id: str) -> int:
    read = world.service.read_order(order_id)
    [shipment_id] = runtime.record([read.record], None)
    assert runtime.labels.process(shipment_id) == "labeled"
    return shipment_id


def _pickup(world: ApiWorld) -> dict[str, str]:
    day = world.carrier.now().date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return {"date": day.isoformat(), "ready_time": "14:00", "closing_time": "18:00"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("gates")) as world:
        yield world


def test_return_cancel_and_pickup_answer_503_and_call_nobody_while_the_breaker_is_open(
    world: ApiWorld,
) -> None:
    labeled = world.take_order()
    shipment_id = _label(world, world.runtime, labeled)
    unlabeled = world.take_order()
    # Another worker saw Chronopost fail: the breaker is open for the whole cluster.
    other = CircuitBreaker(world.runtime.store, failures_to_open=1, open_s=60, refresh_s=0)
    with own_app(world) as http:
        http.get("/api/v1/relay-points?postal_code=75008").raise_for_status()  # wired, closed
        other.on_failure()
        assert other.state()[0] == "open"
        before = len(world.carrier.requests())
        try:
            answers = {
                "return": http.post(f"/api/v1/orders/{unlabeled}/return-label", json={}),
                "cancel": http.post(f"/api/v1/shipments/{shipment_id}/cancel"),
                "pickup of labeled parcels": http.post(
                    f"/api/v1/orders/{labeled}/pickup", json=_pickup(world)
                ),
                "pickup with its label": http.post(
                    f"/api/v1/orders/{unlabeled}/pickup", json=_pickup(world)
                ),
            }
            after = len(world.carrier.requests())
        finally:
            other.on_success()  # closed again for the other tests
    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.text)
        assert answer.json()["code"] == "CIRCUIT_OPEN", name
        assert 1 <= int(answer.headers["Retry-After"]) <= 60, name
    assert after == before  # not one call reached Chronopost
    # Nothing lost: the shipment is as it was, and the return waits for the workers.
    with world.runtime.store.session() as session:
        outbound = session.get_one(Shipment, shipment_id)
        assert outbound.state == "labeled" and all(p.live for p in outbound.parcels)
        back = session.scalars(
            select(Shipment).where(Shipment.sf_id == unlabeled, Shipment.intent == "return")
        ).one()
        assert back.state == "pending" and back.next_attempt_at is not None
        back_id = back.id
    # Once Chronopost is back, a worker makes the return label asked for (the API's answer
    # said 503; asking again now returns it).
    assert world.runtime.labels.process(back_id) == "labeled"
    again = world.http.post(
        f"/api/v1/orders/{unlabeled}/return-label", json={}, headers=world.headers()
    )
    assert again.status_code == 200 and again.json()["created"] is False


@pytest.fixture(scope="module")
def slow_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    """Chronopost answers in 0.15 s; the account allows 2 calls at once."""
    with api_world_at(tmp_path_factory.mktemp("slow"), latency=0.15, concurrency=2) as world:
        yield world


def _worker(world: ApiWorld) -> Runtime:
    settings = world.runtime.settings
    runtime = build_runtime(settings, cluster=True)
    return runtime


def test_api_and_two_workers_together_never_pass_the_account_concurrency(
    slow_world: ApiWorld,
) -> None:
    world = slow_world
    workers = [_worker(world), _worker(world)]
    orders = [world.take_order() for _ in range(8)]
    ids = [
        workers[0].record([world.service.read_order(order_id).record], None)[0]
        for order_id in orders
    ]
    returns = [world.take_order() for _ in range(2)]
    world.carrier.in_flight.reset()
    before = len(world.carrier.requests())
    failures: list[Any] = []

    def label(index: int) -> None:
        outcome = workers[index % 2].labels.process(ids[index])
        if outcome != "labeled":
            failures.append((ids[index], outcome))

    try:
        with own_app(world) as http, ThreadPoolExecutor(14) as pool:
            asks = [
                pool.submit(
                    http.post,
                    "/api/v1/rates",
                    json={
                        "to": {"country": "FR", "postal_code": postal},
                        "parcels": [{"weight_kg": 2}],
                    },
                )
                for postal in ("75008", "69002", "13001", "33000", "59000", "31000")
            ]
            asks += [
                pool.submit(http.post, f"/api/v1/orders/{o}/return-label", json={}) for o in returns
            ]
            asks.append(pool.submit(http.get, "/api/v1/relay-points?postal_code=44000"))
            labels = [pool.submit(label, i) for i in range(len(ids))]
            for done in labels:
                done.result()
            answers = [a.result() for a in asks]
    finally:
        for runtime in workers:
            runtime.close()
    assert not failures
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    made = len(world.carrier.requests()) - before
    assert made >= len(ids) + 6 + len(returns) + 1  # every one of them reached Chronopost
    high = world.carrier.in_flight.to_json()["high"]
    assert high <= world.runtime.settings.chronopost.concurrency, high
    assert high == 2  # the calls did overlap: the cap was reached, never passed
