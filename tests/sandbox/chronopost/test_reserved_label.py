"""Reserved labels (issue 21 item 5): stored only with withReservation 1 or 2, fetched again by
reservation or parcel number, the same label, no new parcel ([D] §2.3.2.b8, §2.3.3, §3.1;
[S] §2.7.6, §3.13)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import pypdf
import pytest

from chronoforce.sandbox.chronopost import ChronopostSandbox


def _fetch(official: Callable[[str], Any], number: str, mode: str | None = None) -> Any:
    client = official("shipping")
    result = client.service.getReservedSkybillWithTypeAndMode(reservationNumber=number, mode=mode)
    client.assert_valid_response()
    return result


def _pdf_text(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text() for page in reader.pages]


@pytest.mark.parametrize("with_reservation", [1, 2])
def test_a_reserved_label_comes_back_inline_and_again_the_same_without_a_new_parcel(
    official: Callable[[str], Any],
    ship: Callable[..., Any],
    sandbox: ChronopostSandbox,
    with_reservation: int,
) -> None:
    created = ship(with_reservation=with_reservation)
    [parcel] = created.resultMultiParcelValue
    assert created.reservationNumber  # present with 1 or 2 ([D] §2.3.2.c)
    assert parcel.skybillNumber in _pdf_text(parcel.pdfEtiquette)[0]  # the label, inline
    before = [p.skybill for p in sandbox.parcels()]
    again = _fetch(official, created.reservationNumber, "PDF")
    assert again.errorCode == 0 and again.type == "PDF"
    assert base64.b64decode(again.skybill) == parcel.pdfEtiquette  # xs:string vs base64Binary
    assert [p.skybill for p in sandbox.parcels()] == before == [parcel.skybillNumber]


def test_without_reservation_no_label_is_stored_and_no_reservation_number_is_given(
    official: Callable[[str], Any], ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    created = ship(with_reservation=0)
    [parcel] = created.resultMultiParcelValue
    assert created.errorCode == 0 and not created.reservationNumber
    assert parcel.pdfEtiquette  # withReservation 0: the label only inline
    [stored] = sandbox.parcels()
    for number in (stored.reservation, parcel.skybillNumber):
        refused = _fetch(official, number, "PDF")
        assert refused.errorCode == 29 and not refused.skybill  # [D] §2.3.3.b


def test_a_parcel_number_fetches_that_parcels_label(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    created = ship(parcels=2)
    first, second = created.resultMultiParcelValue
    again = _fetch(official, second.skybillNumber, "PDF")  # [S] §2.7.6: parcel number too
    assert again.errorCode == 0
    [text] = _pdf_text(base64.b64decode(again.skybill))
    assert second.skybillNumber in text and first.skybillNumber not in text


def test_a_reservation_fetches_every_parcel_of_a_multi_parcel_call_as_one_pdf(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    created = ship(parcels=3)
    pages = _pdf_text(base64.b64decode(_fetch(official, created.reservationNumber, "PDF").skybill))
    numbers = [p.skybillNumber for p in created.resultMultiParcelValue]
    assert [n in page for n, page in zip(numbers, pages, strict=True)] == [True] * 3  # [S] §2.7.6


def test_an_empty_mode_answers_the_stored_format(
    official: Callable[[str], Any], ship: Callable[..., Any]
) -> None:
    created = ship(mode="Z2D")
    again = _fetch(official, created.reservationNumber)  # mode optional ([S] §3.13.4)
    assert again.errorCode == 0 and again.type == "Z2D"
    [parcel] = created.resultMultiParcelValue
    assert base64.b64decode(again.skybill) == parcel.pdfEtiquette  # xs:string vs base64Binary


def test_a_bad_with_reservation_value_is_refused_and_makes_no_parcel(
    ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    refused = ship(with_reservation=3)
    assert refused.errorCode == 33 and "withReservation" in refused.errorMessage
    assert sandbox.parcels() == []
