"""Watermarks through the store (`store/ops.py`): a delta's only moves forward, a replay id is
overwritten, a dropped one is gone; all in the caller's transaction."""

from __future__ import annotations

import pytest

from chronoforce.store.db import Store
from chronoforce.store.ops import (
    advance_watermark,
    drop_watermark,
    read_watermark,
    set_watermark,
)


@pytest.fixture()
def store(db_url: str):
    s = Store(db_url)
    yield s
    s.dispose()


def test_a_delta_watermark_never_moves_back(store: Store) -> None:
    with store.session() as session:
        assert read_watermark(session, "delta:Order") is None
        advance_watermark(session, "delta:Order", "2026-03-02T10:00:00.000Z")
    with store.session() as session:
        advance_watermark(session, "delta:Order", "2026-03-01T10:00:00.000Z")  # a page read again
    with store.session() as session:
        assert read_watermark(session, "delta:Order") == "2026-03-02T10:00:00.000Z"


def test_a_replay_id_is_overwritten_and_can_be_dropped(store: Store) -> None:
    with store.session() as session:
        set_watermark(session, "pubsub:/event/X", "ff01")
    with store.session() as session:
        set_watermark(session, "pubsub:/event/X", "0a")  # opaque: no ordering
    with store.session() as session:
        assert read_watermark(session, "pubsub:/event/X") == "0a"
        drop_watermark(session, "pubsub:/event/X")
        drop_watermark(session, "pubsub:/event/none")  # dropping nothing is harmless
    with store.session() as session:
        assert read_watermark(session, "pubsub:/event/X") is None


def test_a_watermark_rolls_back_with_the_work(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        advance_watermark(session, "delta:Shipment", "2026-03-02T10:00:00.000Z")
        raise RuntimeError("the page's intents failed")
    with store.session() as session:
        assert read_watermark(session, "delta:Shipment") is None
