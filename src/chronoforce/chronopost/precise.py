"""Chrono Precise delivery slots: searchDeliverySlot and confirmDeliverySlotV2 (Creneau service).

Issue 23. Facts: SPEC-FACTS.md §6 ([D] §2.5, §3.5; [S] §3.7-3.8). The credentials go in the
SOAP Header ([S] Annexe 3): zeep writes them from our WSDL's header parts (`_soapheaders`).
No I/O here: the client sends the bytes. Refusals become typed slot errors (domain/errors.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, Decimal
from typing import Any

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.errors import (
    CarrierAccountError,
    CarrierAnswerError,
    NoSlotError,
    OutOfZoneError,
    PermanentError,
    SlotError,
    SlotExpiredError,
    SlotTakenError,
)
from chronoforce.domain.models import Address, ConfirmedSlot, DeliverySlot

SEARCH_OPERATION = "searchDeliverySlot"
CONFIRM_OPERATION = "confirmDeliverySlotV2"
CALLER_TOOL = "RDVWS"  # [D] §2.5.2.a
# productType ([D] §2.5.2.a): RDV normal Precise, FRESH chilled, FREEZE frozen, AMBIENT.
PRODUCT_TYPES = ("RDV", "FRESH", "FREEZE", "AMBIENT")
# The Precise product of each productType (products.csv: 2O, 2E, 2F); AMBIENT has no code of its
# own in the documents: the confirm's productCode decides in every case ([D] §3.5).
PRODUCT_TYPE_OF = {"2O": "RDV", "2E": "FRESH", "2F": "FREEZE"}
PRECISE_PRODUCTS = frozenset(PRODUCT_TYPE_OF)
CURRENCY = "EUR"
# error_codes.csv, service "slots" ([D] §4.3.4-4.3.5): which typed error each code is.
_ERRORS: dict[int, type[PermanentError]] = {
    30: CarrierAccountError,
    71: NoSlotError,
    84: OutOfZoneError,
    51: OutOfZoneError,
    10: SlotTakenError,
    11: SlotTakenError,
    44: SlotTakenError,
    21: SlotExpiredError,
    43: SlotExpiredError,
}


def _headers(credentials: ChronopostCredentials) -> dict[str, str]:
    return {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
    }


def build_search(
    credentials: ChronopostCredentials,
    shipper: Address,
    recipient: Address,
    *,
    product_type: str = "RDV",
    weight_kg: Decimal = Decimal(1),
    begin: dt.datetime,
    end: dt.datetime | None = None,
    is_delivery_date: bool = False,
    slot_type: str = "",
    closed: tuple[tuple[dt.datetime, dt.datetime], ...] = (),
    rates: dict[str, str] | None = None,
    hidden_levels: tuple[str, ...] = (),
) -> bytes:
    """The slot search for a recipient's address ([D] §2.5.2.a; weight in whole kg)."""
    kilos = int(weight_kg.to_integral_value(rounding=ROUND_CEILING))
    values: dict[str, Any] = {
        "callerTool": CALLER_TOOL,
        "productType": product_type,
        "shipperAdress1": shipper.line1[:38] or None,
        "shipperAdress2": shipper.line2[:38] or None,
        "shipperZipCode": shipper.postal_code,
        "shipperCity": shipper.city or None,
        "shipperCountry": shipper.country or "FR",
        "recipientAdress1": recipient.line1[:38] or None,
        "recipientAdress2": recipient.line2[:38] or None,
        "recipientZipCode": recipient.postal_code,
        "recipientCity": recipient.city or None,
        "recipientCountry": recipient.country or "FR",
        "weight": max(kilos, 1),
        "dateBegin": begin,
        "dateEnd": end,
        # start/end pairs of closed days or slots; bad formats are ignored ([D] §2.5.2.a)
        "shipperDeliverySlotClosed": [
            f"{a.isoformat(timespec='seconds')}/{b.isoformat(timespec='seconds')}"
            for a, b in closed
        ]
        or None,
        "currency": CURRENCY,
        **{f"rate{level}": price for level, price in (rates or {}).items()},
        "rateLevelsNotShow": ",".join(hidden_levels) or None,
        "isDeliveryDate": is_delivery_date,
        "slotType": slot_type or None,
    }
    values = {k: v for k, v in values.items() if v is not None}
    values["_soapheaders"] = _headers(credentials)
    return zeep_request(Service.CRENEAU, SEARCH_OPERATION, values)


def build_confirm(
    credentials: ChronopostCredentials, slot: DeliverySlot, product_type: str = "RDV"
) -> bytes:
    """The booking of a slot the search offered ([D] §2.5.3; dateSelected YYYY-MM-DD)."""
    if slot.rank is None or not slot.open:
        raise SlotTakenError(
            f"slot {slot.code} on {slot.date} is closed: choose an open slot",
            field="slot",
            operation=CONFIRM_OPERATION,
        )
    values: dict[str, Any] = {
        "callerTool": CALLER_TOOL,
        "productType": product_type,
        "codeSlot": slot.code,
        "meshCode": slot.mesh_code,
        "transactionID": slot.transaction_id,
        "rank": str(slot.rank),
        "position": str(slot.rank),
        "dateSelected": slot.date.isoformat(),
        "_soapheaders": _headers(credentials),
    }
    return zeep_request(Service.CRENEAU, CONFIRM_OPERATION, values)


def _check(value: Any, operation: str) -> None:
    code = int(value.code) if value.code is not None else -1
    if code == 0:
        return
    message = (value.message or "").strip() or "refused"
    error = _ERRORS.get(code, SlotError)
    raise error(
        f"Chronopost {operation} answered {code}: {message}",
        operation=operation,
    )


def _result(content: bytes, operation: str) -> Any:
    root = parse_envelope(content, operation)
    value = zeep_result(Service.CRENEAU, operation, root)
    if value is None:
        raise CarrierAnswerError(f"answer to {operation} has no return", operation=operation)
    return value


def _slot(raw: Any, mesh: str, transaction: str) -> DeliverySlot:
    day = dt.date.fromisoformat(str(raw.deliveryDate or "")[:10].replace("/", "-"))
    return DeliverySlot(
        code=str(raw.deliverySlotCode or ""),
        date=day,
        start=dt.time(int(raw.startHour), int(raw.startMinutes or 0)),
        end=dt.time(int(raw.endHour), int(raw.endMinutes or 0)),
        tariff_level=str(raw.tariffLevel or ""),
        open=(raw.status or "").strip().upper() == "O",
        rank=int(raw.rank) if raw.rank is not None else None,
        raw_rank=int(raw.rawRank or 0),
        closed_reason=str(raw.codeStatus or ""),
        mesh_code=mesh,
        transaction_id=transaction,
    )


def parse_search(content: bytes) -> tuple[DeliverySlot, ...]:
    """Every slot of the answer in time order (rawRank), open and closed; refusals raise."""
    value = _result(content, SEARCH_OPERATION)
    _check(value, SEARCH_OPERATION)
    mesh, transaction = str(value.meshCode or ""), str(value.transactionID or "")
    slots = [_slot(raw, mesh, transaction) for raw in value.slotList or () if raw is not None]
    return tuple(sorted(slots, key=lambda s: (s.raw_rank, s.starts_at)))


def parse_confirm(content: bytes, slot: DeliverySlot) -> ConfirmedSlot:
    value = _result(content, CONFIRM_OPERATION)
    _check(value, CONFIRM_OPERATION)
    codes = value.productServiceV2
    if codes is None or not (codes.productCode and codes.serviceCode):
        raise CarrierAnswerError(
            "confirmDeliverySlotV2 answered no productCode/serviceCode",
            operation=CONFIRM_OPERATION,
        )
    return ConfirmedSlot(
        slot=slot,
        product_code=str(codes.productCode).strip(),
        service_code=str(codes.serviceCode).strip(),
        as_code=str(codes.asCode or "").strip(),
    )
