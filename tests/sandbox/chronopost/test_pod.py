"""Proof of delivery through the official-schema client over HTTP: the documented status codes
(1, 2, 3, 5), the D+1 working-day delay on the sandbox clock, PDF or PNG, the errors, and at
most ten PODs by reference ([D] §2.6.2; [S] §2.10, §3.18-3.19; SPEC-FACTS §8)."""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Callable
from typing import Any

import pypdf
import pytest
from PIL import Image

from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.chronopost.context import PARIS
from chronoforce.sandbox.chronopost.pod import available_from
from chronoforce.sandbox.chronopost.tables import DELIVERED_CODES

DEMO = {"accountNumber": "19869502", "password": "255562"}


def _skybill(ship: Callable[..., Any], **overrides: Any) -> str:
    result = ship(**overrides)
    assert result.errorCode == 0, result.errorMessage
    return str(result.resultMultiParcelValue[0].skybillNumber)


def _pod(official: Callable[[str], Any], skybill: str, pdf: bool = True) -> Any:
    client = official("tracking")
    result = client.service.searchPOD(**DEMO, language="en_GB", skybillNumber=skybill, pdf=pdf)
    client.assert_valid_response()
    return result


def _delivered_at(sandbox: ChronopostSandbox, skybill: str) -> float:
    events = sandbox.store.events(skybill, math.inf)
    return next(e.at for e in events if e.code in DELIVERED_CODES)


def _advance_to(sandbox: ChronopostSandbox, moment: float) -> None:
    sandbox.advance_clock(dt.timedelta(seconds=max(0.0, moment - sandbox.clock.timestamp())))


def _scenario(name: str) -> dict[str, Any]:
    return {"recipient": {"recipientName2": f"[scenario:{name}]"}}


@pytest.mark.parametrize(
    ("delivered", "available"),
    [
        ("2026-12-03 15:00", "2026-12-04"),  # Thursday -> Friday
        ("2026-12-04 15:00", "2026-12-07"),  # Friday -> Monday
        ("2026-12-05 10:00", "2026-12-07"),  # Saturday -> Monday
        ("2026-12-24 11:00", "2026-12-28"),  # Christmas Day (Friday) is a French holiday
        ("2027-07-13 23:30", "2027-07-15"),  # 14 July
    ],
)
def test_pod_is_due_midnight_of_the_next_french_working_day(delivered: str, available: str) -> None:
    at = dt.datetime.fromisoformat(delivered).replace(tzinfo=PARIS).timestamp()
    assert available_from(at) == dt.datetime.fromisoformat(available).replace(tzinfo=PARIS)


def test_pod_not_ready_until_the_next_working_day_then_pdf(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    before = _pod(official, skybill)
    # Not delivered yet: "not ready" (sandbox choice, docs/sandbox-chronopost.md).
    assert (before.errorCode, before.statusCode, before.podPresente, before.pod) == (
        0, 3, False, None,
    )  # fmt: skip
    delivered = _delivered_at(sandbox, skybill)
    opens = available_from(delivered).timestamp()
    _advance_to(sandbox, delivered + 60)
    assert _pod(official, skybill).statusCode == 3  # delivered, image not ready (D+1)
    _advance_to(sandbox, opens - 1)
    assert _pod(official, skybill).statusCode == 3
    _advance_to(sandbox, opens)
    after = _pod(official, skybill)
    assert (after.errorCode, after.statusCode, after.podPresente, after.formatPOD) == (
        0, 5, True, "PDF",
    )  # fmt: skip
    assert skybill in pypdf.PdfReader(io.BytesIO(after.pod)).pages[0].extract_text()


def test_pod_as_png_when_pdf_is_false(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    _advance_to(sandbox, available_from(_delivered_at(sandbox, skybill)).timestamp())
    result = _pod(official, skybill, pdf=False)
    assert (result.statusCode, result.podPresente, result.formatPOD) == (5, True, "PNG")
    assert result.pod.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(result.pod)).size == (600, 220)


@pytest.mark.parametrize(
    ("scenario", "status"),
    [
        ("letterbox", 1),  # D1: nobody signs
        ("relay", 1),  # a relay-point product
        ("unsigned", 2),  # VC: delivered without the recipient's signature
        ("refused", 2),  # returned to the shipper: never delivered
    ],
)
def test_deliveries_without_a_signature(
    official: Callable[[str], Any],
    ship: Callable[..., Any],
    sandbox: ChronopostSandbox,
    scenario: str,
    status: int,
) -> None:
    overrides = (
        {"skybill": {"productCode": "86"}, "ref": {"idRelais": "0601R"}}
        if scenario == "relay"
        else _scenario(scenario)
    )
    skybill = _skybill(ship, **overrides)
    sandbox.advance_clock(dt.timedelta(days=15))
    result = _pod(official, skybill)
    assert (result.errorCode, result.statusCode, result.podPresente, result.pod) == (
        0, status, False, None,
    )  # fmt: skip


def test_cancelled_parcel_has_no_pod_online(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    skybill = _skybill(ship)
    sandbox.advance_clock(dt.timedelta(minutes=10))
    cancel = official("tracking").service.cancelSkybill(
        **DEMO, language="en_GB", skybillNumber=skybill
    )
    assert cancel.errorCode == 0
    sandbox.advance_clock(dt.timedelta(days=10))
    assert _pod(official, skybill).statusCode == 2


def test_pod_errors_not_this_contract_and_system_error(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    unknown = _pod(official, "XP000000000FR")
    assert (unknown.errorCode, unknown.podPresente) == (2, False)  # [S] §3.18.5
    skybill = _skybill(ship)
    sandbox.set_faults(kind="system_error", operations=("searchPOD",))
    failed = _pod(official, skybill)
    assert (failed.errorCode, failed.errorMessage, failed.podPresente) == (1, "System Error", False)


def test_pod_by_reference_returns_at_most_ten(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    made = [_skybill(ship, ref={"shipperRef": "SO-TEN"}) for _ in range(11)]
    sandbox.advance_clock(dt.timedelta(days=6))  # a week on: every POD is ready
    client = official("tracking")
    result = client.service.searchPODWithSenderRef(
        **DEMO, language="en_GB", sendersRef="SO-TEN", pdf=False
    )
    client.assert_valid_response()
    entries = list(result.listParcelPOD)
    assert [e.skybillNumber for e in entries] == made[:10]
    assert {(e.statusCode, e.podPresente, e.formatPOD) for e in entries} == {(5, True, "PNG")}
    assert all(e.pod.startswith(b"\x89PNG") for e in entries)
