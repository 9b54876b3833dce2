"""ChronopostClient.search_pod against the sandbox over HTTP: the documented statusCodes become
a typed PodResult, the file arrives as PDF or PNG, and the errors are typed ([S] §3.18.5)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from chronoforce.chronopost import ChronopostClient
from chronoforce.chronopost.pod import PodStatus
from chronoforce.domain.errors import CarrierAccountError, CarrierUnavailableError
from chronoforce.sandbox.chronopost import DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.chronopost.tables import DELIVERED_CODES

from .conftest import make_request


def _deliver_and_wait(sandbox: ChronopostSandbox, skybill: str) -> None:
    delivered = next(
        e.at for e in sandbox.store.events(skybill, math.inf) if e.code in DELIVERED_CODES
    )
    sandbox.advance_clock(dt.timedelta(seconds=delivered - sandbox.clock.timestamp() + 60))


def test_not_ready_then_available_as_pdf_or_png(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    (skybill,) = client.create_shipment(make_request("01")).skybill_numbers
    first = client.search_pod(skybill)
    assert (first.status, first.available, first.data) == (PodStatus.NOT_READY, False, b"")
    _deliver_and_wait(sandbox, skybill)
    assert client.search_pod(skybill).status is PodStatus.NOT_READY  # D+1 not reached
    sandbox.advance_clock(dt.timedelta(days=4))  # the next working day has come, whatever today
    pdf = client.search_pod(skybill)
    assert (pdf.status, pdf.format, pdf.suffix) == (PodStatus.AVAILABLE, "PDF", "pdf")
    assert pdf.data.startswith(b"%PDF")
    png = client.search_pod(skybill, pdf=False)
    assert (png.format, png.suffix) == ("PNG", "png") and png.data.startswith(b"\x89PNG")
    assert DEMO_PASSWORD not in (client.last_call.request_xml if client.last_call else "")


def test_unknown_parcel_is_an_account_error_and_system_error_is_transient(
    client: ChronopostClient, sandbox: ChronopostSandbox
) -> None:
    with pytest.raises(CarrierAccountError) as refused:
        client.search_pod("XP000000000FR")
    assert refused.value.code == "CHRONOPOST_2"
    sandbox.set_faults(kind="system_error", operations=("searchPOD",))
    with pytest.raises(CarrierUnavailableError):
        client.search_pod("XP000000000FR")
