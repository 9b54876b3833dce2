"""Relay points of the sandbox: a small built-in set and recherchePointChronopost over it.

The service shape is unconfirmed (not in the reference XSDs; see relay.wsdl). Points are made
up; it must never pretend to know real Chronopost relay points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all

# Relay search errors ([D] §4.3.3; [S] Annexe 5; error_codes.csv, service relay).
RELAY_BAD_FORMAT = 300
RELAY_NULL = 301
RELAY_BAD_DATE = 306
RELAY_NOT_NUMBER = 309
RELAY_HOLIDAY = 317
RELAY_TOO_FAR = 319
RELAY_TOO_MANY = 320
RELAY_BAD_WEIGHT = 321
NO_POINT = (601, "No relay point found")
RELAY_BAD_ACCOUNT = (1500, "Wrong contract number or password")
MAX_POINTS = 25  # [D] §2.4.2.a; [S] §3.4.4
MAX_KM = 50  # [D] §2.4.2.a (the 2017 document says 40, error 319's text says 99)
POINT_TYPES = frozenset({"P", "C", "T"})  # A and B are not supported ([D] §2.4.2.a)
SEARCH_SERVICES = frozenset({"L", "D", "I", "T"})


@dataclass(frozen=True)
class RelayPoint:
    identifier: str
    name: str
    address: str
    zip: str
    city: str
    lat: float
    lon: float
    max_weight_kg: int = 20
    hours: str = "09:00-12:30 14:00-19:00"
    country: str = "FR"


RELAY_POINTS: dict[str, RelayPoint] = {
    p.identifier: p
    for p in (
        RelayPoint(
            "2001R", "TABAC DES MARTYRS", "12 RUE DES MARTYRS", "75009", "PARIS", 48.8778, 2.3397,
        ),
        RelayPoint(
            "2002R", "EPICERIE DOUAI", "40 RUE DE DOUAI", "75009", "PARIS", 48.8816, 2.3323,
        ),
        RelayPoint("2003R", "PRESSING ROME", "5 RUE DE ROME", "75008", "PARIS", 48.8757, 2.3247),
        RelayPoint(
            "2004R", "LIBRAIRIE RIVOLI", "150 RUE DE RIVOLI", "75001", "PARIS", 48.8610, 2.3430,
        ),
        RelayPoint(
            "6901R", "CAVE DES TERREAUX", "3 PLACE DES TERREAUX", "69001", "LYON", 45.7676, 4.8336,
        ),
        RelayPoint(
            "1301R", "BAZAR DU VIEUX PORT", "8 QUAI DU PORT", "13002", "MARSEILLE", 43.2965, 5.3698,
        ),
        RelayPoint(
            "3301R", "FLEURS BOURSE", "2 PL DE LA BOURSE", "33000", "BORDEAUX", 44.8412, -0.5700,
        ),
        RelayPoint(
            "0601R", "TABAC DU PORT", "1 QUAI BONAPARTE", "06500", "MENTON", 43.7770, 7.5060,
        ),
        # Chrono Relais Europe points (product 49).
        RelayPoint(
            "1001B", "LIBRAIRIE DE LA LOI", "RUE DE LA LOI 20", "1000", "BRUXELLES", 50.8453,
            4.3710, country="BE",
        ),
        RelayPoint(
            "1011D", "KIOSK INVALIDENSTRASSE", "INVALIDENSTRASSE 100", "10115", "BERLIN",
            52.5310, 13.3840, country="DE",
        ),
    )
}  # fmt: skip

# Rough centres of the postal codes the sandbox knows, to sort points by distance.
_CENTRES = {
    "75": (48.8566, 2.3522), "69": (45.7640, 4.8357), "13": (43.2965, 5.3698),
    "33": (44.8378, -0.5792), "06": (43.7102, 7.2620),
    "BE1000": (50.8467, 4.3525), "DE10115": (52.5323, 13.3846),
}  # fmt: skip


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> int:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return int(2 * 6_371_000 * math.asin(math.sqrt(h)))


def _point(element: etree._Element, point: RelayPoint, distance: int) -> None:
    add_all(
        element,
        [
            ("accesPersonneMobiliteReduite", True),
            ("actif", True),
            ("adresse1", point.address),
            ("codePays", point.country),
            ("codePostal", point.zip),
            ("coordGeolocalisationLatitude", f"{point.lat:.6f}"),
            ("coordGeolocalisationLongitude", f"{point.lon:.6f}"),
            ("distanceEnMetre", distance),
            ("identifiant", point.identifier),
        ],
    )
    for day in range(1, 7):  # Monday..Saturday open, Sunday closed
        opening = add(element, "listeHoraireOuverture")
        add_all(opening, [("horairesAsString", point.hours), ("jour", day)])
        for span in point.hours.split():
            start, end = span.split("-")
            add_all(add(opening, "listeHoraireOuverture"), [("debut", start), ("fin", end)])
    add_all(
        element,
        [
            ("localite", point.city),
            ("nom", point.name),
            ("poidsMaxi", point.max_weight_kg),  # kg: "always 20" ([D] §2.4.2.b)
            ("typeDePoint", "P"),
        ],
    )


def _field(op: etree._Element, name: str) -> str:
    return (op.findtext(name) or "").strip()


def _number(op: etree._Element, name: str, code: int, default: int | None = None) -> int:
    raw = _field(op, name)
    if not raw and default is not None:
        return default
    if not raw:
        raise BusinessError(RELAY_NULL, f"{name} is mandatory")
    if not raw.isdigit():
        raise BusinessError(code, f"{name} is not a number")
    return int(raw)


def _check_search(op: etree._Element) -> tuple[int, int, int]:
    """The request rules of [D] §2.4.2.a (and [S] §3.4.4 for weight): (limit, km, grams)."""
    for name in ("zipCode", "countryCode", "type", "productCode", "service", "shippingDate"):
        if not _field(op, name):
            raise BusinessError(RELAY_NULL, f"{name} is mandatory")
    if _field(op, "type") not in POINT_TYPES:
        raise BusinessError(RELAY_BAD_FORMAT, "type must be P, C or T")
    if _field(op, "service") not in SEARCH_SERVICES:
        raise BusinessError(RELAY_BAD_FORMAT, "service must be L, D, I or T")
    try:
        datetime.strptime(_field(op, "shippingDate"), "%d/%m/%Y")
    except ValueError:
        raise BusinessError(RELAY_BAD_DATE, "shippingDate must be DD/MM/YYYY") from None
    if _field(op, "holidayTolerant") != "1":
        raise BusinessError(RELAY_HOLIDAY, "holidayTolerant must be 1")
    grams = _number(op, "weight", RELAY_BAD_WEIGHT)  # mandatory in [S], in grams
    limit = _number(op, "maxPointChronopost", RELAY_NOT_NUMBER, 5)
    if limit > MAX_POINTS:
        raise BusinessError(RELAY_TOO_MANY, f"maxPointChronopost: at most {MAX_POINTS} points")
    km = _number(op, "maxDistanceSearch", RELAY_NOT_NUMBER, MAX_KM)
    if km > MAX_KM:
        raise BusinessError(RELAY_TOO_FAR, f"maxDistanceSearch: at most {MAX_KM} km")
    return limit, km, grams


def recherche_point_chronopost(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """recherchePointChronopost(Inter): the nearest built-in relay points that take the weight.

    Quality 2 when an address was given, 1 on the postal code alone; a postal code the sandbox
    cannot place answers quality 0 with arbitrary points, which a client must ignore ([D]
    §2.4.2.b). No point found is error 601 ([D] §4.3.3).
    """
    if ctx.authenticate(op.findtext("accountNumber"), op.findtext("password")) is None:
        raise BusinessError.of(RELAY_BAD_ACCOUNT)
    limit, max_km, grams = _check_search(op)
    zip_code, country = _field(op, "zipCode"), _field(op, "countryCode").upper()
    centre = _CENTRES.get(zip_code[:2]) if country == "FR" else _CENTRES.get(f"{country}{zip_code}")
    found: list[tuple[int, RelayPoint]] = []
    quality = 0
    if centre is not None:
        quality = 2 if _field(op, "address") else 1
        for point in RELAY_POINTS.values():
            distance = _distance_m(centre, (point.lat, point.lon))
            if distance <= max_km * 1000 and grams <= point.max_weight_kg * 1000:
                found.append((distance, point))
        found.sort(key=lambda pair: (pair[1].zip != zip_code, pair[0]))
    else:  # bad quality: whatever points, for the client to ignore
        found = [(0, point) for point in list(RELAY_POINTS.values())[:limit]]
    if not found:
        raise BusinessError(*NO_POINT)
    add(result, "errorCode", 0)
    for distance, point in found[:limit]:
        _point(add(result, "listePointRelais"), point, distance)
    add_all(
        result,
        [
            ("qualiteReponse", quality),
            ("wsRequestId", f"SBX{ctx.store.next_counter('relay'):08d}"),
        ],
    )
