"""Pickups on demand: booking for parcels already labeled (creerEnlevementNational) and
cancelling (annulerEnlevements): requests and answers.

Through zeep (rarely called). The answer has its own error fields (`codeErreur`,
`libelleErreur`), mapped through the same code table as every other operation. No I/O here;
the pickup address is the shipper's, already normalized by address.py.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chronoforce.chronopost.codes import error_for
from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.errors import CarrierUnavailableError
from chronoforce.domain.models import Parcel, Party, Pickup

OPERATION = "creerEnlevementNational"
NAMESPACE = Service.SHIPPING.namespace
LOCALE = "fr_FR"


@dataclass(frozen=True, slots=True)
class PickupBooked:
    """Chronopost's confirmation of a pickup on demand."""

    number: str  # numeroUniqueESD
    date: dt.datetime | None
    pickup_id: int = 0


def _cm(value: Decimal | None) -> int:
    return math.ceil(value) if value else 0


def build_pickup(
    credentials: ChronopostCredentials,
    shipper: Party,
    pickup: Pickup,
    parcels: tuple[Parcel, ...],
    skybill_numbers: tuple[str, ...],
    reference: str,
) -> bytes:
    """The request: where (the shipper), when (the window), what (the parcels announced)."""
    a, c = shipper.address, shipper.contact
    biggest = max(parcels, key=lambda p: p.weight_kg)

    def when(time: dt.time) -> dt.datetime:
        return dt.datetime.combine(pickup.date, time)

    values: dict[str, Any] = {
        "headerValue": {
            "accountNumber": credentials.account_number.strip(),
            "idEmit": "CHRFR",
            "subAccount": credentials.sub_account.strip() or "0",
        },
        "password": credentials.password,
        "datePassage": when(pickup.ready_time),
        "datePassageFermeture": when(pickup.closing_time),
        "adresseEnlevement": {
            "codeCivilite": c.civility.value,
            "codePays": a.country,
            "codePostal": a.postal_code,
            "nomPersonneARencontrer": c.name or None,
            "numeroVoie": a.line1,
            "porteAPorte": False,
            "raisonSociale": a.name,
            "residenceBatimentEtage": a.line2 or None,
            "telephone": c.phone or c.mobile or None,
            "ville": a.city,
            "email": c.email or None,
            "refExpediteur": reference,
        },
        "particulartiesEsd": {
            "etudeDeFaisabilite": False,
            "grosVolume": False,
            "hauteur": _cm(biggest.height_cm),
            "instructionsParticulieres": pickup.instructions or None,
            "largeur": _cm(biggest.width_cm),
            "listeColisAnnonces": ",".join(skybill_numbers),
            "longueur": _cm(biggest.length_cm),
            "nombreEnvois": len(parcels),
            "poids": float(sum((p.weight_kg for p in parcels), Decimal(0))),
        },
        "referenceEsdClient": reference,
        "locale": LOCALE,
    }
    return zeep_request(Service.SHIPPING, OPERATION, values)


def parse_pickup(content: bytes) -> PickupBooked:
    root = parse_envelope(content, OPERATION)
    value = zeep_result(Service.SHIPPING, OPERATION, root)
    if value is None:
        raise CarrierUnavailableError(
            f"no {OPERATION}Response/return in the answer", code="CARRIER_BAD_XML",
            operation=OPERATION,
        )  # fmt: skip
    code = int(value.codeErreur or 0)
    if code != 0:
        raise error_for(code, value.libelleErreur or "", OPERATION)
    info = value.infoEnlevement
    number = (info.numeroUniqueESD or "").strip() if info is not None else ""
    if not number:
        raise CarrierUnavailableError(
            "pickup answer without an ESD number", code="CARRIER_BAD_XML", operation=OPERATION
        )
    return PickupBooked(number, info.datePassage, int(info.idEnlevement or 0))


# --- cancelling pickups: annulerEnlevements ([D] §2.3.5; types as in ShippingServiceWS.xsd) ----

CANCEL_OPERATION = "annulerEnlevements"
ESD_NUMBER_MAX = 10  # esdNumber: "10 digits = ESDFullNumber" (field_limits.csv, [D] §2.3.5.a)


def build_cancel_pickups(credentials: ChronopostCredentials, numbers: tuple[str, ...]) -> bytes:
    """One request for every pickup to cancel (esdNumber repeats, one per pickup)."""
    values: dict[str, Any] = {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "locale": LOCALE,
        "esdNumber": [n.strip()[:ESD_NUMBER_MAX] for n in numbers],
    }
    return zeep_request(Service.SHIPPING, CANCEL_OPERATION, values)


def parse_cancel_pickups(content: bytes) -> dict[str, str]:
    """The status Chronopost gives each pickup (ESD number → text); a refusal raises."""
    root = parse_envelope(content, CANCEL_OPERATION)
    value = zeep_result(Service.SHIPPING, CANCEL_OPERATION, root)
    if value is None:
        raise CarrierUnavailableError(
            f"no {CANCEL_OPERATION}Response/return in the answer", code="CARRIER_BAD_XML",
            operation=CANCEL_OPERATION,
        )  # fmt: skip
    code = int(value.codeErreur or 0)
    if code != 0:
        raise error_for(code, value.errorMessage or "", CANCEL_OPERATION)
    entries = getattr(value.statut, "entry", None) or []
    return {str(_plain(e.key)): str(_plain(e.value)) for e in entries}


def _plain(value: Any) -> Any:
    """xsd:anyType decodes as an lxml element or a text: its text either way."""
    return getattr(value, "text", value) if value is not None else ""
