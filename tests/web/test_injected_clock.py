"""The web app reads the time from the clock it was built with (web/clock.py, issue 16).

An app on a clock set in the past accepts a push signed at that past instant and stamps its
answer with it; the same push is refused by an app on the system clock (outside the window)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest

from chronoforce.domain.clock import SYSTEM_CLOCK, Clock, FixedClock
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.store.db import Store
from chronoforce.web.app import create_app
from tests.web.test_webhooks import T0, labeled, post, pushed, settings


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


def _served(store: Store, clock: Clock) -> Iterator[httpx.Client]:
    app = create_app(settings(), SimpleNamespace(store=store), drain_inbox=False, clock=clock)
    server = BackgroundServer(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.stop()


def test_the_webhook_window_and_answer_follow_the_injected_clock(store: Store) -> None:
    labeled(store, 1)
    signed_at = int(T0.timestamp())  # years before the real time
    for client in _served(store, FixedClock(T0)):
        answer = post(client, pushed("evt-clock-1"), timestamp=signed_at)
        assert answer.status_code == 202, answer.text
        assert answer.json()["received_at"] == T0.isoformat()
    for client in _served(store, SYSTEM_CLOCK):  # the real time: the same signature is too old
        refused = post(client, pushed("evt-clock-2"), timestamp=signed_at)
        assert refused.status_code == 401, refused.text
