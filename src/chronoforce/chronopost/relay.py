"""Relay point search (recherchePointChronopost): the Chronopost Relais a recipient can use.

Through zeep (rarely called). No I/O here; opening hours are passed on as Chronopost words
them, one line per day, never reinterpreted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope, result_of
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.models import Address, RelayPoint

OPERATION = "recherchePointChronopost"
NAMESPACE = Service.RELAY.namespace
POINT_TYPE = "P"  # relay points (Chronopost "Pickup"), as opposed to agencies
RELAY_PRODUCT = "86"  # Chrono Relais (NOTES.md products table)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # `jour`: 1 = Monday .. 7 = Sunday


def build_search(
    credentials: ChronopostCredentials,
    postal_code: str,
    country: str,
    city: str = "",
    address: str = "",
    *,
    limit: int = 10,
    max_distance_km: int = 40,
    ship_date: dt.date | None = None,
) -> bytes:
    values = {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "address": address or None,
        "zipCode": postal_code,
        "city": city or None,
        "countryCode": country,
        "type": POINT_TYPE,
        "productCode": RELAY_PRODUCT,
        "shippingDate": f"{ship_date or dt.date.today():%d/%m/%Y}",
        "maxPointChronopost": str(limit),
        "maxDistanceSearch": str(max_distance_km),
        "holidayTolerant": "1",
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


def parse_search(content: bytes) -> tuple[RelayPoint, ...]:
    root = parse_envelope(content, OPERATION)
    result_of(root, NAMESPACE, OPERATION)
    value = zeep_result(Service.RELAY, OPERATION, root)
    return tuple(_point(p) for p in value.listePointRelais or () if p is not None)
