"""Shipping service of the sandbox: shippingMultiParcelV5/V4 and label retrieval by reservation.

Validates like Chronopost (credentials, required fields, lengths, products, postal codes,
weights) and answers errors in the body. It must never create a parcel for a refused request.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from chronoforce.sandbox.chronopost import creneau, labels, returns, rules, scenarios
from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.relay import RELAY_POINTS
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.store import Parcel
from chronoforce.sandbox.chronopost.tables import (
    CIVILITIES,
    EU_COUNTRIES,
    INCORRECT_LENGTH,
    INVALID_DATA,
    INVALID_DEPARTMENTS,
    MAX_LENGTHS,
    OBJECT_TYPES,
    POSTAL_CODES,
    PRODUCTS,
    RECIPIENT_PREALERTS,
    REF_MAX_LENGTHS,
    RESERVATION_NOT_FOUND,
    RESERVED_MODE_ORDER,
    SERVICES,
    SHIPPER_PREALERTS,
    SHIPPING_BAD_ACCOUNT,
    WITH_RESERVATION,
    Product,
)

_PARTY_FIELDS = ("Name", "Name2", "Adress1", "Adress2", "ZipCode", "City", "Country")
_PARTY_KEYS = ("name", "name2", "address1", "address2", "zip", "city", "country")
_CONTACT_FIELDS = ("ContactName", "Email", "Phone", "MobilePhone")
_FR_ZIP = re.compile(r"^\d{5}$")


_text, _empty, _invalid = rules.text, rules.empty, rules.invalid


def _party(element: etree._Element | None, prefix: str, required: bool) -> dict[str, Any]:
    """A shipper/customer/recipient block, checked for presence and length."""
    party: dict[str, Any] = {}
    for suffix, key in zip(_PARTY_FIELDS, _PARTY_KEYS, strict=True):
        party[key] = _text(element, f"{prefix}{suffix}")
    for suffix in (*_PARTY_FIELDS, *_CONTACT_FIELDS):
        value = _text(element, f"{prefix}{suffix}")
        if value is not None and len(value) > MAX_LENGTHS[suffix]:
            raise BusinessError(
                INCORRECT_LENGTH,
                f"Incorrect data length: {prefix}{suffix} (max {MAX_LENGTHS[suffix]})",
            )
    if required:
        for suffix, key in (("Name", "name"), ("Adress1", "address1"), ("ZipCode", "zip"),
                            ("City", "city"), ("Country", "country")):  # fmt: skip
            if not party[key]:
                raise _empty(f"{prefix}{suffix}")
        _check_place(prefix, party)
    return party


def _normalize_city(city: str) -> str:
    ascii_city = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode()
    words = re.sub(r"[^A-Z0-9]+", " ", ascii_city.upper()).split()
    return " ".join({"ST": "SAINT", "STE": "SAINTE"}.get(w, w) for w in words)


def _check_place(prefix: str, party: dict[str, Any]) -> None:
    country = party["country"].upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise _invalid(f"{prefix}Country", "ISO 3166 alpha-2 code expected")
    party["country"] = country
    if country != "FR":
        return
    zip_code = party["zip"]
    if not _FR_ZIP.match(zip_code) or zip_code[:2] in INVALID_DEPARTMENTS:
        raise _invalid(f"{prefix}ZipCode", f"{zip_code} is not a French postal code")
    known = POSTAL_CODES.get(zip_code)
    if known is not None and _normalize_city(party["city"]) not in known:
        raise _invalid(f"{prefix}City", f"{party['city']} does not match postal code {zip_code}")


def _zone(party: dict[str, Any]) -> str:
    country = party["country"]
    if country == "MC":  # Monaco is inside the French postal network (980xx): domestic products
        return "FR"
    if country == "FR":
        return "CORSE" if party["zip"].startswith("20") else "FR"
    return "EU" if country in EU_COUNTRIES else "WORLD"


@dataclass(frozen=True)
class ParcelRequest:
    recipient: dict[str, Any]
    shipper_ref: str | None
    recipient_ref: str | None
    id_relais: str | None
    product: Product
    weight: float
    scenario: str
    money: dict[str, Any]  # insured / COD / customs cents, contents, service


def _parcel_request(
    op: etree._Element, index: int, skybill: etree._Element, shipper: dict[str, Any]
) -> ParcelRequest:
    recipients = op.findall("recipientValue")
    refs = op.findall("refValue")
    recipient_el = recipients[min(index, len(recipients) - 1)] if recipients else None
    if recipient_el is None:
        raise _empty("recipientValue")
    recipient = _party(recipient_el, "recipient", required=True)
    if int(_text(recipient_el, "recipientPreAlert") or 0) not in RECIPIENT_PREALERTS:
        raise _invalid("recipientPreAlert", "0 or 22")
    ref_el = refs[min(index, len(refs) - 1)] if refs else None
    for name, limit in REF_MAX_LENGTHS.items():
        value = _text(ref_el, name)
        if value is not None and len(value) > limit:
            raise BusinessError(INCORRECT_LENGTH, f"Incorrect data length: {name} (max {limit})")
    product = _product(skybill, recipient)
    weight = _weight(skybill, product)
    id_relais = _text(ref_el, "idRelais")
    recipient_ref = _text(ref_el, "recipientRef")
    if product.relay:
        parcels = len(op.findall("skybillValue"))
        rules.check_relay(recipient_el, recipient, id_relais, recipient_ref, parcels)
    elif id_relais and id_relais not in RELAY_POINTS:
        raise _invalid("idRelais", f"unknown relay point {id_relais}")
    money = rules.check_parcel(op, skybill, recipient, product, first=index == 0)
    try:
        scenario = scenarios.choose(recipient, recipient_ref, relay=bool(id_relais))
    except scenarios.UnknownScenario as exc:
        raise _invalid("recipientName2", f"unknown sandbox scenario {exc}") from exc
    return ParcelRequest(
        recipient, _text(ref_el, "shipperRef"), recipient_ref, id_relais, product, weight,
        scenario, money,
    )  # fmt: skip


def _product(skybill: etree._Element, recipient: dict[str, Any]) -> Product:
    code = _text(skybill, "productCode")
    if not code:
        raise _empty("productCode")
    if len(code) != 2:  # [D] §4.3.2, error 33
        raise BusinessError(
            INVALID_DATA, "Validation error - Field length SkybillValue.ProductCode must be equal 2"
        )
    product = PRODUCTS.get(code)
    if product is None:
        raise _invalid("productCode", f"unknown product {code}")
    if _zone(recipient) not in product.zones:
        raise _invalid("productCode", f"{product.name} does not deliver to {recipient['country']}")
    service = _text(skybill, "service") or "0"
    if service not in SERVICES:
        raise _invalid("service", "0, 1 or 6")
    object_type = _text(skybill, "objectType")
    if object_type is not None and object_type not in OBJECT_TYPES:
        raise _invalid("objectType", "DOC or MAR")
    return product


def _weight(skybill: etree._Element, product: Product) -> float:
    raw = _text(skybill, "weight")
    if raw is None:
        raise _empty("weight")
    weight = float(raw)
    unit = _text(skybill, "weightUnit") or "KGM"
    if unit != "KGM":
        raise _invalid("weightUnit", "KGM")
    if not 0 < weight <= product.max_weight_kg:
        raise _invalid("weight", f"0 < weight <= {product.max_weight_kg:g} kg for {product.name}")
    return weight


def _check_header(ctx: Context, op: etree._Element) -> str:
    header = op.find("headerValue")
    account = ctx.authenticate(_text(header, "accountNumber"), _text(op, "password"))
    if account is None:
        raise BusinessError.of(SHIPPING_BAD_ACCOUNT)
    return account


def _check_shipper(op: etree._Element) -> dict[str, Any]:
    shipper_el = op.find("shipperValue")
    shipper = _party(shipper_el, "shipper", required=True)
    if _text(shipper_el, "shipperCivility") not in CIVILITIES:
        raise _invalid("shipperCivility", "E, L or M")
    if int(_text(shipper_el, "shipperPreAlert") or 0) not in SHIPPER_PREALERTS:
        raise _invalid("shipperPreAlert", "0 or 11")
    return shipper


def _check_esd(op: etree._Element) -> tuple[datetime, datetime] | None:
    esd = op.find("esdValue")
    retrieval, closing = _text(esd, "retrievalDateTime"), _text(esd, "closingDateTime")
    if esd is None or retrieval is None:
        return None
    start = datetime.fromisoformat(retrieval)
    end = datetime.fromisoformat(closing) if closing else start
    if end < start:
        raise _invalid("esdValue", "closingDateTime before retrievalDateTime")
    return start, end


def _label_mode(op: etree._Element) -> str:
    mode = (_text(op.find("skybillParamsValue"), "mode") or "PDF").upper()
    try:
        labels.label_kind(mode)
    except labels.UnsupportedLabelMode as exc:
        raise _invalid("mode", f"label mode {mode} is not available in the sandbox") from exc
    return mode


def _with_reservation(op: etree._Element) -> bool:
    """Whether the label is stored for retrieval: withReservation 1 or 2 ([D] §2.3.2.b8)."""
    value = _text(op.find("skybillParamsValue"), "withReservation") or "0"
    if value not in WITH_RESERVATION:
        raise _invalid("withReservation", "0, 1 or 2")
    return value != "0"


def _parcel_requests(op: etree._Element, shipper: dict[str, Any]) -> list[ParcelRequest]:
    skybills = op.findall("skybillValue")
    if not skybills:
        raise _empty("skybillValue")
    rules.check_parcel_count(op, len(skybills))
    return [_parcel_request(op, i, skybill, shipper) for i, skybill in enumerate(skybills)]


def _label_data(
    request: ParcelRequest, shipper: dict[str, Any], skybill: str, is_return: bool
) -> dict[str, Any]:
    # A return product's request names the consumer as shipper already (returns.py); only the
    # older "merchant → customer with modeRetour" form is drawn the other way round.
    swap = is_return and not request.product.is_return
    sender, recipient = (request.recipient, shipper) if swap else (shipper, request.recipient)
    return {
        "skybill": skybill,
        "product": request.product.code,
        "product_name": request.product.name,
        "signaletique": request.product.signaletique,
        "weight": request.weight,
        "shipper": sender,
        "recipient": recipient,
        "shipper_ref": request.shipper_ref,
        "recipient_ref": request.recipient_ref,
        "id_relais": request.id_relais,
        "is_return": is_return,
        **request.money,
    }


def shipping_multi_parcel(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """shippingMultiParcelV5 / V4: one skybill number and label per parcel, or an error."""
    account = _check_header(ctx, op)
    returns.check_return(op)  # the rules of a return product (sandbox/chronopost/returns.py)
    mode = _label_mode(op)
    reserved = _with_reservation(op)
    shipper = _check_shipper(op)
    mode_retour = rules.check_mode_retour(op, shipper)
    requests = _parcel_requests(op, shipper)
    slots = [  # Chrono Precise: the confirmed slot each parcel's appointment names (issue 23)
        creneau.check_appointment(ctx, account, op, element, str(r.recipient.get("zip") or ""))
        for element, r in zip(op.findall("skybillValue"), requests, strict=False)
    ]
    esd = _check_esd(op)
    reservation = ctx.reservation_number()
    created_at = ctx.clock.timestamp()
    parcels, events = [], {}
    for rank, request in enumerate(requests):
        # A return is a return product ([D] §3.6); modeRetour only says how the label travels.
        is_return = request.product.is_return
        (skybill,) = ctx.skybill_numbers(request.product.skybill_prefix, 1)
        data = _label_data(request, shipper, skybill, is_return)
        data.update(mode_retour=mode_retour, account=account, rank=rank + 1, total=len(requests))
        # The sub-account the label was made under: trackSearch's serviceCode filters on it.
        data["sub_account"] = _text(op.find("headerValue"), "subAccount") or "0"
        data.update(slots[rank] or {})
        parcels.append(
            Parcel(
                skybill, reservation, account, request.shipper_ref, request.recipient_ref,
                request.product.code, request.weight, request.scenario, created_at, None,
                request.id_relais, is_return, mode, labels.render(mode, [data]), data, rank,
            )
        )  # fmt: skip
        events[skybill] = scenarios.schedule(
            request.scenario, created_at, data["shipper"], data["recipient"]
        )
    esd_number = f"ESD{reservation[-8:]}" if esd else None
    ctx.store.add_shipment(
        reservation, account, created_at, mode, esd_number, parcels, events, reserved=reserved
    )
    add_all(result, [("errorCode", 0), ("errorMessage", "")])
    if esd is not None and esd_number is not None:
        add(result, "ESDFullNumber", f"{esd_number}{esd[0]:%Y%m%d}")
        add(result, "ESDNumber", esd_number)
        add(result, "pickupDate", esd[0])
    if reserved:  # "present when withReservation is 1 or 2" ([D] §2.3.2.c; SPEC-FACTS §2.7)
        add(result, "reservationNumber", reservation)
    inline = not (reserved and ctx.withhold_reserved_label())  # the fault knob (faults.py)
    for parcel in parcels:
        _parcel_result(add(result, "resultMultiParcelValue"), parcel, inline=inline)


def _parcel_result(element: etree._Element, parcel: Parcel, *, inline: bool = True) -> None:
    product = PRODUCTS[parcel.product]
    zip_code = str(parcel.label_data["recipient"].get("zip") or "")
    code_service = f"2{parcel.product.zfill(2)}"
    mark = "RETOUR" if parcel.is_return else (f"REL {parcel.id_relais}" if parcel.id_relais else "")
    add_all(
        element,
        [
            ("codeDepot", f"{zip_code[:2].zfill(2)}327227"),
            ("codeService", code_service),
            ("destinationDepot", f"0{zip_code[:3]}"),
            ("geoPostCodeBarre", f"%00{zip_code[:5]}{parcel.skybill[:11]}248{code_service}250"),
            ("geoPostNumeroColis", f"{parcel.skybill[:11]}248D"),
            ("groupingPriorityLabel", "SIA1"),
            # Empty (the element kept) when the knob withholds a reserved label.
            ("pdfEtiquette", base64.b64encode(parcel.label) if inline else b""),
            ("serviceMark", mark),
            ("serviceName", product.name),
            ("signaletiqueProduit", product.signaletique),
            ("skybillNumber", parcel.skybill),
        ],
    )


def _stored_parcels(ctx: Context, number: str | None) -> list[Parcel]:
    """The parcels whose label Chronopost stored under `number`: a reservation number, or a
    parcel (skybill) number ([S] §2.7.6); only for shipments made with withReservation 1 or 2
    ([D] §3.1-3.6). Anything else is error 29 ([D] §2.3.3.b)."""
    number = (number or "").strip()
    parcels = ctx.store.parcels_of_reservation(number) if number else []
    if not parcels and number:
        parcel = ctx.store.parcel(number)
        parcels = [parcel] if parcel is not None else []
    if not parcels or not ctx.store.is_reserved(parcels[0].reservation):
        raise BusinessError.of(RESERVATION_NOT_FOUND)
    return parcels


def _reserved_document(ctx: Context, op: etree._Element, mode: str | None) -> tuple[str, bytes]:
    """The stored label again (the same skybill numbers; no parcel is made), in `mode`, or when
    empty in the first stored format of [S]'s order (the sandbox stores the creation mode)."""
    parcels = _stored_parcels(ctx, _text(op, "reservationNumber"))
    stored = parcels[0].mode
    wanted = (mode or "").strip().upper()
    if not wanted:  # the stored formats in [S]'s order, then the creation mode
        formats = (stored,)  # one format per shipment here (no `PDF|Z2D` modes in the sandbox)
        wanted = next((m for m in RESERVED_MODE_ORDER if m in formats), stored)
    if wanted == stored and len(parcels) == 1:
        return wanted, parcels[0].label
    try:
        return wanted, labels.render(wanted, [p.label_data for p in parcels])
    except labels.UnsupportedLabelMode as exc:
        raise _invalid("mode", f"label mode {wanted} is not available in the sandbox") from exc


def get_reserved_skybill(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """The label document of a reservation, base64 text, in the mode it was created with."""
    _, document = _reserved_document(ctx, op, None)
    add_all(result, [("errorCode", 0), ("skybill", base64.b64encode(document))])


def get_reserved_skybill_with_type_and_mode(
    ctx: Context, op: etree._Element, result: etree._Element
) -> None:
    """The label document of a reservation rendered in the requested mode."""
    mode, document = _reserved_document(ctx, op, _text(op, "mode"))
    add_all(result, [("errorCode", 0), ("skybill", base64.b64encode(document)), ("type", mode)])
