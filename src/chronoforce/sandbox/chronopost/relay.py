"""Relay points of the sandbox: a small built-in set and recherchePointChronopost over it.

The service shape is unconfirmed (not in the reference XSDs; see relay.wsdl). Points are made
up; it must never pretend to know real Chronopost relay points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.tables import BAD_CREDENTIALS


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
    )
}  # fmt: skip

# Rough centres of the postal codes the sandbox knows, to sort points by distance.
_CENTRES = {
    "75": (48.8566, 2.3522), "69": (45.7640, 4.8357), "13": (43.2965, 5.3698),
    "33": (44.8378, -0.5792), "06": (43.7102, 7.2620),
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
            ("codePays", "FR"),
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
            ("poidsMaxi", point.max_weight_kg * 1000),
            ("typeDePoint", "P"),
        ],
    )


def recherche_point_chronopost(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """The nearest built-in relay points to the requested postal code."""
    if ctx.authenticate(op.findtext("accountNumber"), op.findtext("password")) is None:
        raise BusinessError.of(BAD_CREDENTIALS)
    zip_code = (op.findtext("zipCode") or "").strip()
    limit = int((op.findtext("maxPointChronopost") or "5").strip() or 5)
    max_km = float((op.findtext("maxDistanceSearch") or "40").strip() or 40)
    centre = _CENTRES.get(zip_code[:2])
    found: list[tuple[int, RelayPoint]] = []
    if centre is not None:
        for point in RELAY_POINTS.values():
            distance = _distance_m(centre, (point.lat, point.lon))
            if distance <= max_km * 1000:
                found.append((distance, point))
    found.sort(key=lambda pair: (pair[1].zip != zip_code, pair[0]))
    add(result, "errorCode", 0)
    for distance, point in found[:limit]:
        _point(add(result, "listePointRelais"), point, distance)
    add_all(
        result,
        [
            ("qualiteReponse", 1 if found else 0),
            ("wsRequestId", f"SBX{ctx.store.next_counter('relay'):08d}"),
        ],
    )
