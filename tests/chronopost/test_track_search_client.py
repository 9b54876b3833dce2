"""ChronopostClient.track_search against the sandbox over HTTP: typed parcels with their
significant event, dates sent as DD/MM/YYYY, refusals typed (issue 21)."""

from __future__ import annotations

import datetime as dt

import pytest

from chronoforce.chronopost import ChronopostClient
from chronoforce.chronopost.config import ChronopostCredentials
from chronoforce.chronopost.track_search import build_search, day
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import TrackingEvent
from chronoforce.sandbox.chronopost import ChronopostSandbox

from .conftest import make_request


def test_track_search_returns_each_parcel_with_its_significant_event(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    skybill = (
        client.create_shipment(make_request(order_number="SO-SEARCH-1")).labels[0].skybill_number
    )
    today = sandbox.now().date()
    sandbox.advance_clock(dt.timedelta(hours=23, minutes=30))
    found = {p.skybill_number: p for p in client.track_search(today, today + dt.timedelta(days=1))}
    parcel = found[skybill]
    assert isinstance(parcel.significant, TrackingEvent)
    assert parcel.significant.code == "D" and parcel.significant.time.tzinfo is not None
    assert parcel.deposited_at is not None and parcel.deposited_at.date() == today
    assert parcel.shipper_ref == "SO-SEARCH-1"
    assert not client.track_search(today, today, "NONDISTRIBUES")  # delivered: left out
    (record,) = [r for r in sandbox.requests("trackSearch")][-1:]
    assert f"<dateDeposit>{today:%d/%m/%Y}</dateDeposit>" in record.request


def test_a_refused_search_raises_a_typed_error(client: ChronopostClient) -> None:
    with pytest.raises(ChronoforceError) as caught:
        client.track_search(dt.date(2026, 1, 1), dt.date(2026, 6, 1))  # > the sandbox's 31 days
    assert "dateEndDeposit" in str(caught.value)


def test_request_dates_are_dd_mm_yyyy_and_state_is_checked() -> None:
    credentials = ChronopostCredentials("19869502", "255562", "7")
    body = build_search(credentials, dt.date(2026, 3, 4), dt.date(2026, 3, 5), "NONDISTRIBUES")
    assert b"<dateDeposit>04/03/2026</dateDeposit>" in body
    assert b"<serviceCode>7</serviceCode>" in body
    assert day(dt.date(2026, 12, 31)) == "31/12/2026"
    with pytest.raises(ValueError, match="parcelState"):
        build_search(credentials, dt.date(2026, 3, 4), dt.date(2026, 3, 5), "LOST")
