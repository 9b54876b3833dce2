"""The per-case shipping rules of Chronopost's documents, as the sandbox enforces them.

Multi-parcel, relay point, international contents and customs value, Saturday and Monday
service, Chronofresh use-by date, money in cents, modeRetour (SPEC-FACTS §2.3-§2.5). Each
refusal is an in-body error of error_codes.csv (31 empty, 32 length, 33 invalid); where the
documents give no message the sandbox's wording is listed in docs/sandbox-chronopost.md.
It must never create anything: it only reads the request and raises BusinessError.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError
from chronoforce.sandbox.chronopost.relay import RELAY_POINTS
from chronoforce.sandbox.chronopost.tables import (
    CONTENT_FIELDS,
    CONTENT_MAX_LENGTH,
    DOMESTIC_COUNTRIES,
    EMPTY_DATA,
    INCORRECT_LENGTH,
    INVALID_DATA,
    MAX_PARCELS,
    MAX_PARCELS_WITH_ESD,
    MODES_RETOUR,
    NATIONAL_SERVICES,
    Product,
)

# A French mobile: 06 or 07, nationally or after +33 / 0033 ([D] §3.2: relay needs a mobile).
_FR_MOBILE = re.compile(r"^(?:\+33|0033|0)[67]\d{8}$")


def text(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = element.findtext(name)
    return value.strip() if value is not None and value.strip() else None


def empty(field: str) -> BusinessError:
    return BusinessError(EMPTY_DATA, f"Empty data: {field}")


def invalid(field: str, why: str = "") -> BusinessError:
    return BusinessError(INVALID_DATA, f"Invalid data: {field}{f' ({why})' if why else ''}")


def abroad(recipient: dict[str, Any]) -> bool:
    return str(recipient.get("country") or "").upper() not in DOMESTIC_COUNTRIES


# --- the whole call ------------------------------------------------------------------------


def check_parcel_count(op: etree._Element, skybills: int) -> None:
    """numberOfParcel, the 100 / 50 limits, one recipient with multiParcel=Y ([D] §4.3.2)."""
    raw = text(op, "numberOfParcel") or "0"
    count = int(raw) if raw.isdigit() else 0
    if count != skybills:
        raise BusinessError(INVALID_DATA, f"Size of skybillValue must be 1 or {count}")
    with_esd = text(op.find("esdValue"), "retrievalDateTime") is not None
    limit = MAX_PARCELS_WITH_ESD if with_esd else MAX_PARCELS
    if count > limit:
        where = " with a pickup (esdValue)" if with_esd else ""
        raise invalid("numberOfParcel", f"at most {limit} parcels a call{where}")
    multi = (text(op, "multiParcel") or "N").upper() == "Y"
    if multi and len(op.findall("recipientValue")) > 1:
        raise BusinessError(
            INVALID_DATA,
            "En multiParcel vous ne pouvez renseigner qu'une seule adresse destinataire",
        )
    for rank, skybill in enumerate(op.findall("skybillValue"), start=1):
        bulk, own_rank = text(skybill, "bulkNumber"), text(skybill, "skybillRank")
        if (bulk is None) != (own_rank is None):  # always both ([D] §2.3.2.b7)
            raise empty("skybillRank" if own_rank is None else "bulkNumber")
        if count > 1 and bulk is None:
            raise empty("bulkNumber")
        if bulk is not None and (bulk != str(count) or own_rank != str(rank)):
            raise invalid("skybillRank", f"parcel {rank} of {count} expected")


def check_mode_retour(op: etree._Element, shipper: dict[str, Any]) -> str:
    """modeRetour 1-4; 1 and 3 need the shipper's e-mail the label is sent to ([S] §3.12.4)."""
    mode = text(op, "modeRetour")
    if mode is None:
        raise empty("modeRetour")
    if mode not in MODES_RETOUR:
        raise invalid("modeRetour", "1, 2, 3 or 4")
    shipper_el = op.find("shipperValue")
    if mode in ("1", "3") and text(shipper_el, "shipperEmail") is None:
        raise empty("shipperEmail")
    return mode


# --- one parcel ------------------------------------------------------------------------------


def check_relay(
    recipient_el: etree._Element,
    recipient: dict[str, Any],
    id_relais: str | None,
    recipient_ref: str | None,
    parcels: int,
) -> None:
    """A relay parcel ([D] §3.2, §3.3; [S] §3.12.4): the point's code in idRelais and
    recipientRef, its name and address as the recipient, who collects in Name2, e-mail and a
    mobile, a single parcel."""
    if not id_relais:
        raise empty("idRelais")
    point = RELAY_POINTS.get(id_relais)
    if point is None:
        raise invalid("idRelais", f"unknown relay point {id_relais}")
    if recipient_ref != id_relais:
        raise invalid("recipientRef", f"the relay point code {id_relais} is expected")
    if parcels > 1:
        raise invalid("numberOfParcel", "no multi-parcel shipment to a relay point")
    if (recipient.get("address1") or "").upper() != point.address or recipient["zip"] != point.zip:
        raise invalid("recipientAdress1", f"the address of relay point {id_relais} is expected")
    if (recipient.get("name") or "").upper() != point.name:
        raise invalid("recipientName", f"the name of relay point {id_relais} is expected")
    if not recipient.get("name2"):
        raise empty("recipientName2")
    if text(recipient_el, "recipientEmail") is None:
        raise empty("recipientEmail")
    phone = text(recipient_el, "recipientPhone")
    if phone is None:
        raise empty("recipientPhone")
    digits = re.sub(r"[\s.\-]", "", phone)
    if point.country == "FR" and not _FR_MOBILE.match(digits):
        raise invalid("recipientPhone", "a mobile number is expected")


def _cents(skybill: etree._Element, name: str) -> int | None:
    raw = text(skybill, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BusinessError(34, f"Not a number: {name}") from None
    if value != int(value) or value < 0:  # integer euro cents ([D] §2.3.2.b7)
        raise invalid(name, "integer euro cents expected")
    return int(value)


def _contents(skybill: etree._Element) -> list[str]:
    contents = []
    for name in CONTENT_FIELDS:
        value = text(skybill, name)
        if value is not None and len(value) > CONTENT_MAX_LENGTH:
            raise BusinessError(
                INCORRECT_LENGTH, f"Incorrect data length: {name} (max {CONTENT_MAX_LENGTH})"
            )
        if value is not None:
            contents.append(value)
    return contents


def check_parcel(
    op: etree._Element,
    skybill: etree._Element,
    recipient: dict[str, Any],
    product: Product,
    first: bool = True,
) -> dict[str, Any]:
    """Service, contents, customs value, money and use-by date; what the label records.

    The customs value is the shipment's: asked on its first parcel (sandbox choice)."""
    service = text(skybill, "service") or "0"
    outside = abroad(recipient)
    if service in NATIONAL_SERVICES and outside:
        raise invalid("service", f"{service} is for deliveries in France only")
    if service == "6" and not product.saturday:
        raise invalid("service", f"no Saturday delivery with {product.name}")
    if len(service) == 3 and product.code not in ("5E", "5H") and not product.precise:
        raise invalid("service", f"{service} is a Shop2Shop service")
    contents = _contents(skybill)
    customs = _cents(skybill, "customsValue")
    if outside and not contents:  # every EU and non-EU parcel ([D] §2.3.2.b7, §4.8)
        raise empty("content1")
    goods = (text(skybill, "objectType") or "MAR") == "MAR"
    if outside and first and goods and customs is None:
        raise empty("customsValue")
    scheduled = op.find("scheduledValue")
    expiry = text(scheduled, "expirationDate")
    if product.expiry_required and expiry is None:  # Chronofresh ([D] §2.3.2.b10, §3.1)
        raise empty("expirationDate")
    return {
        "service": service,
        "insured_cents": _cents(skybill, "insuredValue"),
        "cod_cents": _cents(skybill, "codValue"),
        "customs_cents": customs,
        "contents": contents,
        "expiration_date": expiry,
    }
