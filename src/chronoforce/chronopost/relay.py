"""Relay point search (recherchePointChronopostInter): the relay points a recipient can use.

Through zeep (rarely called). No I/O here; opening hours are passed on as Chronopost words
them, one line per day, never reinterpreted.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, Decimal
from typing import Any

from lxml import etree

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope, result_of
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.models import Address, RelayPoint

OPERATION = "recherchePointChronopostInter"  # the current operation ([D] §2.4.2)
NAMESPACE = Service.RELAY.namespace
POINT_TYPE = "P"  # relay points and lockers ([D] §2.4.2.a: A and B are not supported)
SERVICE_DELIVERY = "L"  # points that deliver parcels to recipients ([D] §2.4.2.a `service`)
RELAY_PRODUCT = "86"  # Chrono Relais: productCode is mandatory ([D] §2.4.2.a)
MAX_POINTS = 25  # error 320 above ([D] §2.4.2.a; [S] §3.4.4)
MAX_DISTANCE_KM = 50  # [D] §2.4.2.a (2017: 40; error 319's text: 99)
DEFAULT_WEIGHT_KG = Decimal(1)  # weight is mandatory in [S] §3.4.4; [S] §2.5's example: 1000 g
NO_POINT_FOUND = 601  # an empty result, not a fault (error_codes.csv, relay 601)
BAD_QUALITY = 0  # qualiteReponse 0: "ignore the result" ([D] §2.4.2.b)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # `jour`: 1 = Monday .. 7 = Sunday


def build_search(
    credentials: ChronopostCredentials,
    postal_code: str,
    country: str,
    city: str = "",
    address: str = "",
    *,
    limit: int = 10,
    max_distance_km: int = MAX_DISTANCE_KM,
    ship_date: dt.date | None = None,
    weight_kg: Decimal = DEFAULT_WEIGHT_KG,
    product_code: str = RELAY_PRODUCT,
) -> bytes:
    """The search around an address; more than 25 points or 50 km is cut to the maximum."""
    grams = int((weight_kg * 1000).to_integral_value(rounding=ROUND_CEILING))
    values = {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "address": address or None,
        "zipCode": postal_code,
        "city": city or None,
        "countryCode": country,
        "type": POINT_TYPE,
        "productCode": product_code,
        "service": SERVICE_DELIVERY,
        "weight": str(max(grams, 1)),  # grams, where shipping speaks kg ([D] §2.4.2.a)
        "shippingDate": f"{ship_date or dt.date.today():%d/%m/%Y}",
        "maxPointChronopost": str(max(1, min(limit, MAX_POINTS))),
        "maxDistanceSearch": str(max(1, min(max_distance_km, MAX_DISTANCE_KM))),
        "holidayTolerant": "1",
        "language": "FR",
        "version": "2.0",
    }
    return zeep_request(Service.RELAY, OPERATION, values)


def _hours(days: Any) -> tuple[str, ...]:
    lines = []
    for day in days or ():
        if day is None or not 1 <= int(day.jour or 0) <= 7:
            continue
        lines.append(f"{DAYS[int(day.jour) - 1]} {(day.horairesAsString or '').strip()}".strip())
    return tuple(lines)


def _point(point: Any) -> RelayPoint:
    name = (point.nom or "").strip()
    return RelayPoint(
        id=(point.identifiant or "").strip(),
        name=name,
        address=Address(
            name=name,
            line1=(point.adresse1 or "").strip(),
            line2=" ".join(x.strip() for x in (point.adresse2, point.adresse3) if x and x.strip()),
            postal_code=(point.codePostal or "").strip(),
            city=(point.localite or "").strip(),
            country=(point.codePays or "").strip(),
        ),
        opening_hours=_hours(point.listeHoraireOuverture),
        distance_m=point.distanceEnMetre,
    )


def _no_point_found(root: etree._Element) -> bool:
    code = root.findtext(".//{*}recherchePointChronopostInterResponse/return/errorCode")
    return (code or "").strip() == str(NO_POINT_FOUND)


def parse_search(content: bytes) -> tuple[RelayPoint, ...]:
    """The points found; none when Chronopost found none (601) or rates its answer quality 0."""
    root = parse_envelope(content, OPERATION)
    if _no_point_found(root):
        return ()
    result_of(root, NAMESPACE, OPERATION)
    value = zeep_result(Service.RELAY, OPERATION, root)
    if value.qualiteReponse == BAD_QUALITY:
        return ()
    return tuple(_point(p) for p in value.listePointRelais or () if p is not None)
