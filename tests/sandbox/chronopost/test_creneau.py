"""The sandbox's Creneau service (Chrono Precise slots) through zeep over HTTP, issue 23.

Facts: SPEC-FACTS.md §6 ([D] §2.5, §3.5, §4.7), error_codes.csv service "slots". The sandbox's
own choices (grid, zones, quota, lifetime, codes) are in docs/sandbox-chronopost.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import zeep

from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.chronopost import creneau as sandbox_creneau

from .conftest import DEMO

PARIS = ZoneInfo("Europe/Paris")
HEADER = {"accountNumber": DEMO["account"], "password": DEMO["password"]}


@pytest.fixture()
def creneau(base_url: str) -> Any:
    return zeep.Client(f"{base_url}/rdv-cxf/services/CreneauServiceWS?wsdl").service


def _today(sandbox: ChronopostSandbox) -> date:
    return sandbox.now().astimezone(PARIS).date()


def _search(service: Any, header: dict[str, str] | None = HEADER, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "callerTool": "RDVWS",
        "productType": "RDV",
        "shipperZipCode": "83500",
        "shipperCountry": "FR",
        "recipientAdress1": "72 rue Reine Elisabeth",
        "recipientZipCode": "06500",
        "recipientCity": "Menton",
        "recipientCountry": "FR",
        "weight": 2,
        "dateBegin": datetime(2020, 1, 1, 9, 0),
        "isDeliveryDate": True,
        **overrides,
    }
    return service.searchDeliverySlot(**values, _soapheaders=header)


def _confirm(service: Any, found: Any, slot: Any, **overrides: Any) -> Any:
    values = {
        "callerTool": "RDVWS",
        "productType": "RDV",
        "codeSlot": slot.deliverySlotCode,
        "meshCode": found.meshCode,
        "transactionID": found.transactionID,
        "rank": str(slot.rank),
        "dateSelected": slot.deliveryDate[:10],
        **overrides,
    }
    return service.confirmDeliverySlotV2(**values, _soapheaders=HEADER)


def _open(found: Any) -> list[Any]:
    return [s for s in found.slotList if s.status == "O"]


@pytest.mark.parametrize("header", [None, {**HEADER, "password": "000000"}])
def test_search_refuses_missing_or_wrong_header_credentials(
    creneau: Any, header: dict[str, str] | None
) -> None:
    # Credentials in the SOAP Header ([S] Annexe 3); error 30 wrong login or password.
    assert _search(creneau, header).code == 30


def test_search_window_starts_tomorrow_and_stops_at_fourteen_days(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    # dateBegin <= today -> today + 1; dateEnd > today + 14 -> today + 14 ([D] §2.5.2.a).
    today = _today(sandbox)
    found = _search(
        creneau, dateEnd=datetime.combine(today + timedelta(days=40), datetime.min.time())
    )
    assert found.code == 0 and found.meshCode == "06500" and found.transactionID
    days = sorted({date.fromisoformat(s.deliveryDate[:10]) for s in found.slotList})
    assert days[0] == today + timedelta(days=1)
    assert days[-1] == today + timedelta(days=14)
    assert all(s.startHour >= 8 and s.endHour <= 22 for s in found.slotList)
    assert {s.tariffLevel for s in found.slotList} <= {"N1", "N2", "N3", "N4"}
    assert all(
        s.dayOfWeek == date.fromisoformat(s.deliveryDate[:10]).isoweekday() for s in found.slotList
    )
    # rank numbers the open slots in time order; rawRank every slot.
    assert [s.rank for s in _open(found)] == list(range(1, len(_open(found)) + 1))
    assert [s.rawRank for s in found.slotList] == list(range(1, len(found.slotList) + 1))
    sundays = [s for s in found.slotList if s.dayOfWeek == 7]
    assert sundays and all(s.status == "F" and s.codeStatus == "1" for s in sundays)


def test_hand_over_date_means_delivery_the_next_working_day(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    today = _today(sandbox)
    found = _search(creneau, isDeliveryDate=False)
    first = min(date.fromisoformat(s.deliveryDate[:10]) for s in found.slotList)
    assert first >= today + timedelta(days=2)


@pytest.mark.parametrize(("slot_type", "evening"), [("J", False), ("S", True)])
def test_slot_type_keeps_day_or_evening_slots(creneau: Any, slot_type: str, evening: bool) -> None:
    found = _search(creneau, slotType=slot_type)
    assert found.slotList and all((s.startHour >= 18) is evening for s in found.slotList)


def test_shipper_closed_days_and_public_holidays_are_closed_slots(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    today = _today(sandbox)
    french = holidays.country_holidays("FR", years=(today.year, today.year + 1))
    holiday = next(
        d for d in sorted(french) if d > today + timedelta(days=3) and d.isoweekday() < 7
    )
    sandbox.advance_clock(datetime.combine(holiday - timedelta(days=3), datetime.min.time(), PARIS)
                          .astimezone(ZoneInfo("UTC")) - sandbox.now() + timedelta(hours=12))  # fmt: skip
    closed_day = holiday + timedelta(days=1 if holiday.isoweekday() != 6 else 2)
    closed = f"{closed_day}T00:00:00/{closed_day}T23:59:00"
    found = _search(creneau, shipperDeliverySlotClosed=[closed, "not-a-span"])
    by_day = {}
    for s in found.slotList:
        by_day.setdefault(s.deliveryDate[:10], set()).add((s.status, s.codeStatus))
    assert by_day[holiday.isoformat()] == {("F", "4")}
    assert by_day[closed_day.isoformat()] == {("F", "2")}


@pytest.mark.parametrize(("zip_code", "code"), [("20000", 84), ("97100", 84), ("48000", 71)])
def test_out_of_zone_and_no_slot_are_refusals(creneau: Any, zip_code: str, code: int) -> None:
    # 84 route not covered, 71 no slot found (error_codes.csv); the zones are sandbox choices.
    found = _search(creneau, recipientZipCode=zip_code)
    assert found.code == code and not found.slotList


def test_search_without_product_type_or_start_date(creneau: Any) -> None:
    assert _search(creneau, productType=None).code == 61
    assert _search(creneau, productType="XXX").code == 62
    assert _search(creneau, dateBegin=None).code == 40


def test_confirm_returns_product_service_and_no_as_code_on_a_weekday(creneau: Any) -> None:
    found = _search(creneau)
    slot = next(s for s in _open(found) if s.dayOfWeek < 6)
    booked = _confirm(creneau, found, slot)
    assert booked.code == 0
    answer = booked.productServiceV2
    assert (answer.productCode, answer.serviceCode, answer.asCode) == ("2O", "976", None)


def test_fresh_precise_is_2e_961_and_paris_sunday_has_an_as_code(creneau: Any) -> None:
    # [D] §4.6: Fresh Precise = 2E / 961. asCode only for Precise Sunday among ours ([D] §2.5.3).
    found = _search(creneau, productType="FRESH")
    fresh = _confirm(creneau, found, _open(found)[0], productType="FRESH").productServiceV2
    assert (fresh.productCode, fresh.serviceCode) == ("2E", "961")
    paris = _search(creneau, recipientZipCode="75009", recipientCity="Paris")
    sunday = next(s for s in _open(paris) if s.dayOfWeek == 7)
    assert (
        _confirm(creneau, paris, sunday).productServiceV2.asCode == sandbox_creneau.SUNDAY_AS_CODE
    )


def test_confirm_refuses_a_full_slot_with_quota_reached(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    sandbox.context.slot_quota = 1
    try:
        first = _search(creneau)
        second = _search(creneau)
        slot = _open(first)[0]
        assert _confirm(creneau, first, slot).code == 0
        assert _confirm(creneau, second, slot).code == 10  # quota reached
        again = _search(creneau)
        shown = next(s for s in again.slotList if s.rawRank == slot.rawRank)
        assert (shown.status, shown.codeStatus) == ("F", "3")
    finally:
        sandbox.context.slot_quota = sandbox_creneau.DEFAULT_QUOTA


def test_confirm_errors_closed_slot_closed_day_past_date_expired(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    found = _search(creneau)
    sunday = next(s for s in found.slotList if s.dayOfWeek == 7)
    weekday = next(s for s in _open(found) if s.dayOfWeek < 6)
    assert _confirm(creneau, found, sunday, rank="1").code == 44  # closed day
    today = _today(sandbox).isoformat()
    assert _confirm(creneau, found, weekday, dateSelected=today).code == 43  # in the past
    assert _confirm(creneau, found, weekday, codeSlot="C0000").code == 12
    assert _confirm(creneau, found, weekday, transactionID="nope").code == 21
    sandbox.advance_clock(sandbox_creneau.TRANSACTION_LIFETIME + timedelta(minutes=1))
    assert _confirm(creneau, found, weekday).code == 21  # session expired: search again


def test_confirm_of_a_shipper_closed_slot_is_slot_closed(
    creneau: Any, sandbox: ChronopostSandbox
) -> None:
    today = _today(sandbox)
    day = next(today + timedelta(days=n) for n in range(2, 9) if (today + timedelta(days=n)).isoweekday() < 6
               and today + timedelta(days=n) not in holidays.country_holidays("FR", years=today.year))  # fmt: skip
    found = _search(creneau, shipperDeliverySlotClosed=[f"{day}T08:00:00/{day}T10:00:00"])
    slot = next(
        s for s in found.slotList if s.deliveryDate.startswith(day.isoformat()) and s.startHour == 8
    )
    assert slot.status == "F"
    assert _confirm(creneau, found, slot, rank="1").code == 11


def _appointment(slot: Any, level: str | None = None) -> dict[str, Any]:
    day = date.fromisoformat(slot.deliveryDate[:10])
    start = datetime.combine(day, datetime.min.time()).replace(hour=slot.startHour)
    return {
        "appointmentValue": {
            "timeSlotStartDate": start,
            "timeSlotEndDate": start.replace(hour=slot.endHour),
            "timeSlotTariffLevel": level or slot.tariffLevel,
        }
    }


def test_label_with_the_confirmed_codes_prints_the_slot(
    creneau: Any, ship: Callable[..., Any], sandbox: ChronopostSandbox
) -> None:
    found = _search(creneau)
    slot = next(s for s in _open(found) if s.dayOfWeek < 6)
    codes = _confirm(creneau, found, slot).productServiceV2
    skybill = {"productCode": codes.productCode, "service": codes.serviceCode}
    result = ship(skybill=skybill, scheduledValue=_appointment(slot))
    assert result.errorCode == 0
    pdf = result.resultMultiParcelValue[0].pdfEtiquette
    assert (
        f"PRECISE {slot.deliveryDate[:10]} {slot.startHour:02d}:00-{slot.endHour:02d}:00".encode()
        in pdf
    )
    # a wrong tariff level, a wrong service, or no confirmed slot at all: refused (33)
    wrong_level = "N4" if slot.tariffLevel != "N4" else "N1"
    assert ship(skybill=skybill, scheduledValue=_appointment(slot, wrong_level)).errorCode == 33
    assert (
        ship(skybill={**skybill, "service": "977"}, scheduledValue=_appointment(slot)).errorCode
        == 33
    )
    assert ship(skybill=skybill).errorCode == 33  # Precise without appointmentValue
    other = next(s for s in _open(found) if s.deliverySlotCode != slot.deliverySlotCode)
    assert ship(skybill=skybill, scheduledValue=_appointment(other)).errorCode == 33
