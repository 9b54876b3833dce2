"""Live rates: quickCost (one product) and calculateProducts (every product for a route).

Requests and answers go through zeep (rarely called). No I/O here; amounts are never rounded
beyond the cent, and a product Chronopost prices at 0.00 is still returned as it said.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import number, parse_envelope, result_of
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.models import ObjectType, Parcel, Rate
from chronoforce.domain.products import spell

QUICK_COST_OPERATION = "quickCost"
PRODUCTS_OPERATION = "calculateProducts"
NAMESPACE = Service.QUICKCOST.namespace
# quickCost/calculateProducts `type`: D documents, M goods (karrio's RateRequest sample: M).
RATE_TYPES = {ObjectType.DOCUMENTS: "D", ObjectType.GOODS: "M"}
CENT = Decimal("0.01")


def quick_cost_code(product_code: str) -> str:
    """Our 2-character code as quickCost takes it: "01" → "1", "02" → "2" ([S] §3.1.4 lists
    national products as 1, 2, 16, 86, 00). Only at this edge: everywhere else it is "01"."""
    code = spell(product_code)
    return code[1] if code[0] == "0" and code[1] in "123456789" else code


def _amount(value: Any) -> Decimal:
    # xsd:float arrives as a binary float: go through its shortest text, then to cents.
    return Decimal(str(value if value is not None else 0)).quantize(CENT)


def _account(credentials: ChronopostCredentials) -> dict[str, str]:
    return {"accountNumber": credentials.account_number.strip(), "password": credentials.password}


def build_quick_cost(
    credentials: ChronopostCredentials,
    product_code: str,
    departure_postal_code: str,
    arrival_postal_code: str,
    weight_kg: Decimal,
    object_type: ObjectType = ObjectType.GOODS,
) -> bytes:
    values = {
        **_account(credentials),
        "depCode": departure_postal_code,
        "arrCode": arrival_postal_code,
        "weight": number(weight_kg),
        "productCode": quick_cost_code(product_code),
        "type": RATE_TYPES[object_type],
    }
    return zeep_request(Service.QUICKCOST, QUICK_COST_OPERATION, values)


def parse_quick_cost(content: bytes, product_code: str) -> Rate:
    root = parse_envelope(content, QUICK_COST_OPERATION)
    result_of(root, NAMESPACE, QUICK_COST_OPERATION)
    value = zeep_result(Service.QUICKCOST, QUICK_COST_OPERATION, root)
    return Rate(
        product_code=spell(product_code),
        amount_excl_vat=_amount(value.amount),
        amount_incl_vat=_amount(value.amountTTC),
        vat=_amount(value.amountTVA),
        zone=(value.zone or "").strip(),
    )


def build_calculate_products(
    credentials: ChronopostCredentials,
    departure: tuple[str, str],
    arrival: tuple[str, str, str],
    parcel: Parcel,
    ship_date: dt.date | None = None,
    object_type: ObjectType = ObjectType.GOODS,
) -> bytes:
    """departure = (country, postal code); arrival = (country, postal code, city)."""
    values = {
        **_account(credentials),
        "depCountryCode": departure[0],
        "depZipCode": departure[1],
        "arrCountryCode": arrival[0],
        "arrZipCode": arrival[1],
        "arrCity": arrival[2] or None,
        "type": RATE_TYPES[object_type],
        "weight": number(parcel.weight_kg),
        "height": number(parcel.height_cm) if parcel.height_cm else None,
        "length": number(parcel.length_cm) if parcel.length_cm else None,
        "width": number(parcel.width_cm) if parcel.width_cm else None,
        # dd/mm/yyyy like the relay search (every field is text on this service).
        "shippingDate": f"{ship_date:%d/%m/%Y}" if ship_date else None,
    }
    return zeep_request(Service.QUICKCOST, PRODUCTS_OPERATION, values)


def parse_calculate_products(content: bytes) -> tuple[Rate, ...]:
    root = parse_envelope(content, PRODUCTS_OPERATION)
    result_of(root, NAMESPACE, PRODUCTS_OPERATION)
    value = zeep_result(Service.QUICKCOST, PRODUCTS_OPERATION, root)
    return tuple(
        Rate(
            # calculateProducts answers "1" for Chrono 13 ([S] §3.2.4): ours is "01".
            product_code=spell(p.productCode or ""),
            amount_excl_vat=_amount(p.amount),
            amount_incl_vat=_amount(p.amountTTC),
            vat=_amount(p.amountTVA),
        )
        for p in value.productList or ()
        if p is not None
    )
