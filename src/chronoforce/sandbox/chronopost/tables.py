"""The Chronopost sandbox's data tables: products, event codes, scenarios, postal codes, limits.

Literal tables with their sources named; logic lives elsewhere. Never import from the layers
above (domain/status.py keeps its own copy of the agreed event-code table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# --- accounts ------------------------------------------------------------------------------------

DEMO_ACCOUNT = "19869502"
DEMO_PASSWORD = "255562"  # noqa: S105 - the published demo password of the sandbox, not a secret

# --- products ------------------------------------------------------------------------------------
# Codes, families and limits: Chronopost's documents as summarized in shared/reference/chronopost/
# products.csv ([S] Annexe 8; [D] §3.1-§3.6); relay products 20 kg ([D] §2.4.2.b). Pictograms
# (signaletique) and skybill prefixes are the sandbox's own (karrio sample: "13H", "XP").


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    zones: frozenset[str]  # where it delivers: FR (mainland), CORSE, EU, WORLD
    max_weight_kg: float
    signaletique: str  # printed pictogram text (karrio sample: "13H" for Chrono 13)
    skybill_prefix: str  # first two letters of the skybill number (sample: "XP")
    relay: bool = False  # needs refValue/idRelais
    is_return: bool = False
    saturday: bool = True  # service 6 allowed (France only)
    expiry_required: bool = False  # Chronofresh: scheduledValue/expirationDate ([D] §3.1)


_FR = frozenset({"FR", "CORSE"})
_INTL = frozenset({"EU", "WORLD"})
PRODUCTS: dict[str, Product] = {
    p.code: p
    for p in (
        Product("01", "Chrono 13", _FR, 30, "13H", "XP"),
        Product("02", "Chrono 10", _FR, 30, "10H", "XA"),
        Product("16", "Chrono 18", _FR, 30, "18H", "XR"),
        Product("86", "Chrono Relais", _FR, 20, "REL", "XS", relay=True),
        Product("49", "Chrono Relais Europe", frozenset({"EU"}), 20, "RELEU", "XE", relay=True,
                saturday=False),
        Product("5E", "Shop 2 Shop", _FR | frozenset({"EU"}), 20, "S2S", "XT", relay=True),
        Product("17", "Chrono Express", _INTL, 30, "EXP", "EE", saturday=False),
        Product("37", "Chrono Premium", _INTL, 30, "PRM", "EP", saturday=False),
        Product("44", "Chrono Classic", frozenset({"EU"}), 30, "CLA", "EC", saturday=False),
        Product("2R", "Chrono Fresh 13", _FR, 30, "FRESH", "XF", expiry_required=True),
        # Return products ([D] §3.6): the consumer sends the parcel back.
        Product("4T", "Chrono Reverse 13", _FR, 30, "RET", "XU", is_return=True),
        Product("4U", "Chrono Reverse 18", _FR, 30, "RET", "XV", is_return=True),
    )
}  # fmt: skip
# calculateProducts and quickCost speak "1", "2" for Chrono 13 and 10 ([S] §3.2.4, Annexe 8);
# shipping wants exactly 2 characters ([D] §4.3.2 error 33 "ProductCode must be equal 2").
PRODUCT_ALIASES = {"1": "01", "2": "02"}
RATE_SPELLING = {code: alias for alias, code in PRODUCT_ALIASES.items()}
# Destinations in the French network (no customs, Saturday and Monday possible).
DOMESTIC_COUNTRIES = frozenset({"FR", "MC"})

# modeRetour: how the label file is delivered ([D] §2.3.2.b9, §4.5), never a return by itself:
# 1 e-mailed to shipperEmail, 2 not sent, 3 post-office machine + SMS, 4 Shop2Shop e-mail.
MODES_RETOUR = frozenset({"1", "2", "3", "4"})
# Parcels per call ([D] §2.3.2.b9; [S] §2.7.5).
MAX_PARCELS = 100
MAX_PARCELS_WITH_ESD = 50
# content1..5 ([D] §2.3.2.b7, §4.8).
CONTENT_FIELDS = ("content1", "content2", "content3", "content4", "content5")
CONTENT_MAX_LENGTH = 45

# --- label modes (skybillParamsValue.mode, [D] §2.3.2.b8, §4.4: THE* are PDF) ---------------------

PDF_MODES = frozenset({"PDF", "PPR", "SPD", "THE", "THEPSG", "THE1015"})
ZPL_MODES = frozenset({"Z2D", "ZPL", "ZPL300", "ZPLPSG", "Z2DPSG"})

# --- field limits (NOTES.md: roulier's Chronopost schema) ----------------------------------------

MAX_LENGTHS = {
    "Name": 100,
    "Name2": 100,
    "Adress1": 38,
    "Adress2": 38,
    "ZipCode": 9,
    "City": 50,
    "Country": 2,
    "ContactName": 100,
    "Email": 80,  # [D] §2.3.2.b3-b5 (roulier's 50 was too short)
    "Phone": 17,
    "MobilePhone": 17,
}
REF_MAX_LENGTHS = {"shipperRef": 35, "recipientRef": 35, "customerSkybillNumber": 15}
# 0 normal, 1 Monday, 6 Saturday ([D] §2.3.2.b7); 345/346 Shop2Shop Europe ([D] §3.3).
SERVICES = frozenset({"0", "1", "6", "345", "346"})
NATIONAL_SERVICES = frozenset({"1", "6"})  # France only ([S] §3.12.4, rev 2.5.8)
CIVILITIES = frozenset({"E", "L", "M"})
SHIPPER_PREALERTS = frozenset({0, 11})
RECIPIENT_PREALERTS = frozenset({0, 22})
OBJECT_TYPES = frozenset({"DOC", "MAR"})

# --- business error codes ------------------------------------------------------------------------
# Confirmed by the reference samples: 1 (tracking), 2 (cancel), 3 (rates), 33 (shipping). The
# shipping codes 31/32/33/36 follow Mouhaha-editions/chronopost enums/ErrorCodeWSEtiquette.php
# (EMPTY_DATA, INCORRECT_DATA_LENGTH, INVALID_DATA, FILE_NOT_FOUND); one source only.
SYSTEM_ERROR = (1, "System Error")
PARCEL_NOT_FOUND = (2, "the parcel doesn't match account or parcel information not found")
BAD_CREDENTIALS = (3, "invalid account or password")
SHIPPING_BAD_ACCOUNT = (33, "Invalid accesColis account number")
EMPTY_DATA = 31
INCORRECT_LENGTH = 32
INVALID_DATA = 33
LABEL_NOT_FOUND = 36
# Sandbox choices (no source): cancelling a parcel Chronopost already holds; rates input errors.
CANCEL_TOO_LATE = (4, "parcel already taken over by Chronopost, it can no longer be cancelled")
RATE_BAD_WEIGHT = (4, "invalid weight")
RATE_BAD_ZIP = (5, "invalid postal code or country")
RATE_NO_PRODUCT = (6, "product not available for this destination")

# --- tracking event codes (agreed table, issue 3; first eight confirmed by karrio's fixture) -----


@dataclass(frozen=True)
class EventCode:
    code: str
    label_en: str
    label_fr: str
    high_priority: bool = False


EVENT_CODES: dict[str, EventCode] = {
    e.code: e
    for e in (
        EventCode(
            "DC",
            "Shipment in preparation to be shipped",
            "Envoi en cours de préparation chez l'expéditeur",
        ),
        EventCode("DB", "Shipment handed over by shipper", "Envoi remis par l'expéditeur"),
        EventCode(
            "DY",
            "Parcel registered by the post office",
            "Colis pris en charge par le bureau de poste",
        ),
        EventCode("SC", "Sorted at departure location", "Tri effectué dans l'agence de départ"),
        EventCode("TS", "Shipment in transit", "Envoi en transit"),
        EventCode(
            "SD", "Sorted at delivery location", "Tri effectué dans l'agence de distribution"
        ),
        EventCode("TA", "Shipment in delivery to the consignee", "Envoi en cours de livraison"),
        EventCode("D", "Delivered", "Livré", high_priority=True),
        # Exception path: NOT confirmed from a primary source (agreed table, issue 3).
        EventCode(
            "IA",
            "Consignee absent, notice left",
            "Destinataire absent, avis de passage déposé",
            True,
        ),
        EventCode("RP", "Available at the relay point", "Colis disponible en point relais", True),
        EventCode("RC", "Collected at the relay point", "Colis retiré en point relais", True),
        EventCode("RF", "Refused by the consignee", "Refusé par le destinataire", True),
        EventCode(
            "AI", "Incorrect or incomplete address", "Adresse incorrecte ou incomplète", True
        ),
        EventCode("AV", "Parcel damaged", "Colis endommagé", True),
        EventCode("DO", "Held at customs", "Retenu en douane", True),
        EventCode("PE", "Parcel lost", "Colis perdu", True),
        EventCode("RE", "Return to sender in progress", "Retour à l'expéditeur en cours", True),
        EventCode("RL", "Returned to sender", "Retourné à l'expéditeur", True),
        EventCode("AN", "Shipment cancelled", "Envoi annulé", True),
    )
}

# --- scenarios: (event code, hours after label creation) -----------------------------------------
# "+1wd" in a step means "the next working day after the previous step" (see scenarios.py).

_TO_DELIVERY = (("DC", 0.0), ("DB", 4.0), ("DY", 4.1), ("SC", 8.0), ("TS", 12.0), ("SD", 18.0))
_TA = (("TA", 21.0),)
SCENARIOS: dict[str, tuple[tuple[str, float], ...]] = {
    "delivered": (*_TO_DELIVERY, *_TA, ("D", 23.0)),
    "absent": (*_TO_DELIVERY, *_TA, ("IA", 23.0), ("TA", -1.0), ("D", -1.0)),
    "relay": (*_TO_DELIVERY, ("RP", 22.0), ("RC", 46.0)),
    "refused": (*_TO_DELIVERY, *_TA, ("RF", 23.0), ("RE", 26.0), ("RL", 70.0)),
    "address_incorrect": (*_TO_DELIVERY, *_TA, ("AI", 23.0), ("RE", 26.0), ("RL", 70.0)),
    "damaged": (*_TO_DELIVERY[:5], ("AV", 16.0), ("RE", 20.0), ("RL", 64.0)),
    "customs": (*_TO_DELIVERY[:5], ("DO", 16.0)),
    "lost": (*_TO_DELIVERY[:5], ("PE", 60.0)),
    "return_to_sender": (*_TO_DELIVERY, *_TA, ("RE", 23.0), ("RL", 67.0)),
}
DEFAULT_SCENARIO = "delivered"
# The "absent" retry: TA at 08:00 and D at 10:00 on the next working day after IA.
RETRY_TA_AT = timedelta(hours=8)
RETRY_D_AT = timedelta(hours=10)
PICKED_UP_CODES = frozenset({"DB", "DY", "SC", "TS"})
DELIVERED_CODES = frozenset({"D", "RC"})

# Offices printed on events (names and postcodes from karrio's tracking fixture).
HUB = ("HUB CHILLY MAZARIN CHRONOPOST", "91090")

# --- French postal codes <-> cities (a small sample for consistency checks; La Poste's
# base officielle des codes postaux lists these pairs) -------------------------------------------

POSTAL_CODES: dict[str, frozenset[str]] = {
    "75001": frozenset({"PARIS"}),
    "75008": frozenset({"PARIS"}),
    "75009": frozenset({"PARIS"}),
    "75015": frozenset({"PARIS"}),
    "69001": frozenset({"LYON"}),
    "69002": frozenset({"LYON"}),
    "13001": frozenset({"MARSEILLE"}),
    "33000": frozenset({"BORDEAUX"}),
    "31000": frozenset({"TOULOUSE"}),
    "59000": frozenset({"LILLE"}),
    "67000": frozenset({"STRASBOURG"}),
    "44000": frozenset({"NANTES"}),
    "35000": frozenset({"RENNES"}),
    "34000": frozenset({"MONTPELLIER"}),
    "06000": frozenset({"NICE"}),
    "06500": frozenset({"MENTON", "GORBIO", "SAINTE AGNES"}),
    "83500": frozenset({"LA SEYNE SUR MER"}),
    "37000": frozenset({"TOURS"}),
    "37400": frozenset({"AMBOISE", "CANGEY", "LIMERAY", "NAZELLES NEGRON", "POCE SUR CISSE"}),
    "62223": frozenset({"SAINT LAURENT BLANGY", "ANZIN SAINT AUBIN", "ATHIES", "FEUCHY"}),
    "91090": frozenset({"LISSES"}),
    "91210": frozenset({"DRAVEIL"}),
    "92100": frozenset({"BOULOGNE BILLANCOURT"}),
    "94000": frozenset({"CRETEIL"}),
    "20000": frozenset({"AJACCIO"}),
}
# Départements that do not exist (mainland 01-95 with Corsica as 20, overseas 971-976, 98x).
INVALID_DEPARTMENTS = frozenset({"00", "96", "99"})

EU_COUNTRIES = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "GR", "HR", "HU"}
    | {"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)

# --- rates ---------------------------------------------------------------------------------------
VAT_RATE = 0.20  # French standard VAT
# Insurance offer returned by quickCost (sandbox values: ceiling in EUR, rate in %).
INSURANCE_CEILING = 5000.0
INSURANCE_RATE = 1.0
