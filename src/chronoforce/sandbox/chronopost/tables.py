"""The Chronopost sandbox's data tables: products, event codes, scenarios, postal codes, limits.

Literal tables with their sources named; logic lives elsewhere. Never import from the layers
above (domain/status.py keeps its own copy of the agreed event-code table).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

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
    precise: bool = False  # Chrono Precise: appointmentValue of a confirmed slot (issue 23)


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
        # Chrono Precise (issue 23; products.csv 2O, 2E, 2F; [D] §4.6 "RDV FRESH"). Weights and
        # prefixes are sandbox choices.
        Product("2O", "Chrono Rendez-Vous", _FR, 30, "RDV", "XY", precise=True),
        Product("2E", "Chrono Fresh Rendez-Vous", _FR, 30, "RDV FRESH", "XY",
                expiry_required=True, precise=True),
        Product("2F", "Chrono Freeze Rendez-Vous", _FR, 30, "RDV FREEZE", "XY",
                expiry_required=True, precise=True),
        # Return products ([D] §3.6; products.csv, family "return"): the consumer sends the
        # parcel back to the merchant in France. Weights, pictograms and prefixes are ours.
        Product("4R", "Chrono Reverse 9", _FR, 30, "RET", "XU", is_return=True),
        Product("4S", "Chrono Reverse 10", _FR, 30, "RET", "XU", is_return=True),
        Product("4T", "Chrono Reverse 13", _FR, 30, "RET", "XU", is_return=True),
        Product("4U", "Chrono Reverse 18", _FR, 30, "RET", "XV", is_return=True),
        Product("3T", "Chrono Retour Europe", _FR, 30, "RET", "XU", is_return=True),
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

# --- field limits (maximum characters; SPEC-FACTS §2.3 and field_limits.csv: [D] §2.3.2.b2-b9,
# [S] §3.12.4; tests/sandbox/chronopost/test_field_limits.py checks every row is here) ---------

MAX_LENGTHS = {  # shipper / customer / recipient + suffix
    "Name": 100,
    "Name2": 100,
    "Adress1": 38,
    "Adress2": 38,
    "ZipCode": 9,
    "City": 50,
    "Civility": 1,
    "Country": 2,
    "CountryName": 50,
    "ContactName": 100,
    "Email": 80,  # [D] §2.3.2.b3-b5 (roulier's 50 was too short)
    "Phone": 17,
    "MobilePhone": 17,
    "Type": 1,
}
REF_MAX_LENGTHS = {"shipperRef": 35, "recipientRef": 35, "customerSkybillNumber": 15, "idRelais": 5}
SKYBILL_MAX_LENGTHS = {
    **{f"content{n}": 45 for n in range(1, 6)},
    "productCode": 2,
    "alternateProductCode": 2,
    "service": 3,
    "evtCode": 2,
    "objectType": 3,
    "weight": 5,
    "weightUnit": 3,
    "shipHour": 2,
    "carrier": 1,
    "codCurrency": 3,
    "customsCurrency": 3,
    "insuredCurrency": 3,
}
OTHER_MAX_LENGTHS = {  # header, label parameters and the request's own variables
    "accountNumber": 8,
    "idEmit": 5,
    "subAccount": 3,
    "duplicata": 1,
    "withReservation": 1,
    "password": 6,
    "modeRetour": 1,
    "version": 1,
    "multiParcel": 1,
    "printAsSender": 1,
}
# 0 normal, 1 Monday, 6 Saturday ([D] §2.3.2.b7); 345/346 Shop2Shop Europe ([D] §3.3).
SERVICES = frozenset({"0", "1", "6", "345", "346", "961", "962", "976", "977"})  # + Precise
NATIONAL_SERVICES = frozenset({"1", "6"})  # France only ([S] §3.12.4, rev 2.5.8)
CIVILITIES = frozenset({"E", "L", "M"})
SHIPPER_PREALERTS = frozenset({0, 11})
RECIPIENT_PREALERTS = frozenset({0, 22})
OBJECT_TYPES = frozenset({"DOC", "MAR"})

# --- business error codes (codes and texts of error_codes.csv; SPEC-FACTS §1.1) ---------------
# Errors come in the body with HTTP 200. Texts in quotes in the documents are used as they are;
# where the documents give a meaning only, the text is the sandbox's (docs/sandbox-chronopost.md).
SYSTEM_ERROR = (1, "System Error")  # every service ([S] §3.12.5, §3.15.5; karrio sample)
# cancelSkybill [S] §3.14.5 (the operation the client calls): 2 = not in this contract or not
# yet registered in tracking, 3 = already taken over. The first text is karrio's sample.
PARCEL_NOT_FOUND = (2, "the parcel doesn't match account or parcel information not found")
CANCEL_TOO_EARLY = (2, "parcel not yet registered in tracking, try again later")
CANCEL_TOO_LATE = (3, "Cannot cancel: parcel already taken over by Chronopost")
# Cancelling works "about 10 minutes" after creation ([D] §2.6.4): exactly 10 in the sandbox.
CANCEL_OPENS_AFTER = timedelta(minutes=10)
# quickCost / calculateProducts ([D] §4.3.6; [S] §3.1.5; karrio sample text for 3).
BAD_CREDENTIALS = (3, "invalid account or password")
RATE_EMPTY_DATA = (2, "Data Empty")
RATE_NO_PRODUCT = (4, "Invalid product code for this destination")
RATE_BAD_ZIP = RATE_NO_PRODUCT  # sandbox: a postcode no product serves
RATE_BAD_WEIGHT = (5, "Amount not found")  # sandbox: no price band for that weight
# shipping ([D] §4.3.2; [S] Annexe 4): 33 with this text is the account, without it bad data.
SHIPPING_BAD_ACCOUNT = (33, "Invalid accesColis account number")
SHIPPING_BAD_PASSWORD = (33, "Invalid accesColis password")
SHIPPING_BAD_CONTRACT = (30, "Invalid contract number")
EMPTY_DATA = 31
INCORRECT_LENGTH = 32
INVALID_DATA = 33
NOT_A_NUMBER = 34
GEOPOST_NOT_FOUND = (35, "Code Service GeoPost not found")
# getReservedSkybill*: 29 = "reservation number not found or inconsistent" ([D] §2.3.3.b, for
# getReservedSkybillTypeAndModeAuth). [S] §3.13.5 documents only 1 "System Error" for
# getReservedSkybillWithTypeAndMode; the sandbox answers [D]'s 29 there too (the newer document).
RESERVATION_NOT_FOUND = (29, "reservation number not found or inconsistent")
# withReservation: 0 no reservation, 1 label stored, 2 only the first format of mode stored
# ([D] §2.3.2.b8; SPEC-FACTS §2.3). Absent is 0, [D]'s default.
WITH_RESERVATION = frozenset({"0", "1", "2"})
# mode left empty in getReservedSkybillWithTypeAndMode: the first stored format in this order
# ([S] §2.7.6, §3.13.4: "XML, PDF, SPD, THE, PPR, Z2D, ..."; the rest of the list is not given).
RESERVED_MODE_ORDER = ("XML", "PDF", "SPD", "THE", "PPR", "Z2D")
# ESD pickups ([D] §4.3.1; [S] Annexe 1): the name is the documented text, the rest is ours.
ESD_EMPTY = (3, "METHOD_INPUT_PARAMETER_EMPTY")
ESD_PACKAGES_WRONG = (6, "PICKUP_PACKAGES_ATTRIBUTE_WRONG")
ESD_BAD_CONTRACT = (8, "WRONG_CONTRACT_NUMBER")
ESD_ZIP_UNKNOWN = (10, "CONTRAINTES_NOT_FOUND")
ESD_DATE_ERROR = (13, "PICKUP_DATE_ERROR_1")
ESD_NOT_FRANCE = (920, "DPD_ENLEVEMENT_DESTINATAIRE")
ESD_DATE_PAST = (910, "DATE_PASSE")
# relay search ([D] §4.3.3; [S] Annexe 5): 601 is an empty answer, not a fault.
RELAY_NOT_FOUND = (601, "No relay point found")
RELAY_SYSTEM_ERROR = (700, "System error")
RELAY_BAD_CREDENTIALS = (1500, "Wrong contract number or password")
# trackWithSenderRef and searchPOD* with a bad account: the documents give no code for tracking;
# the sandbox answers like searchPOD ([S] §3.18.5: 2 = parcel not in the contract).
TRACKING_BAD_CREDENTIALS = PARCEL_NOT_FOUND

# --- tracking event codes ([D] §4.1, all 149; data/events.csv names the source) ------------------


@dataclass(frozen=True)
class EventCode:
    code: str
    label_en: str
    label_fr: str
    category: str = ""


def _load_events() -> dict[str, EventCode]:
    text = resources.files("chronoforce.sandbox.chronopost").joinpath("data/events.csv")
    lines = [line for line in text.read_text("utf-8").splitlines() if not line.startswith("#")]
    return {
        row["code"]: EventCode(row["code"], row["label_en"], row["label_fr"], row["category"])
        for row in csv.DictReader(lines)
    }


EVENT_CODES: dict[str, EventCode] = _load_events()

# --- scenarios: (event code, hours after label creation) -----------------------------------------
# A negative offset means "on the next working day after the previous step" (see scenarios.py).
# The story scenarios are what tests ask for by name; the others sweep the rest of the official
# list, so that every one of the 149 codes is emitted by some scenario (tests check it). Which
# codes follow which is the sandbox's reading of the labels: the documents give no sequences
# beyond karrio's delivered parcel (unconfirmed, docs/sandbox-chronopost.md).

_TO_DELIVERY = (("DC", 0.0), ("DB", 4.0), ("DY", 4.1), ("SC", 8.0), ("TS", 12.0), ("SD", 18.0))
_TA = (("TA", 21.0),)
_TRANSIT = (("DC", 0.0), ("PC", 4.0), ("SC", 8.0), ("TS", 12.0), ("SD", 18.0))


def _round(first: str, last: str) -> tuple[tuple[str, float], ...]:
    """A delivered parcel whose last round is `first` (out for delivery) then `last`."""
    return (*_TRANSIT, (first, 21.0), (last, 23.0))


SCENARIOS: dict[str, tuple[tuple[str, float], ...]] = {
    # stories
    "delivered": (*_TO_DELIVERY, *_TA, ("D", 23.0)),
    "absent": (*_TO_DELIVERY, *_TA, ("P", 23.0), ("TA", -1.0), ("D", -1.0)),
    "relay": (*_TO_DELIVERY, ("RB", 20.0), ("MD", 22.0), ("RI", 46.0)),
    "refused": (*_TO_DELIVERY, *_TA, ("PR", 23.0), ("R", 70.0)),
    "address_incorrect": (*_TO_DELIVERY, *_TA, ("IN", 23.0), ("R", 70.0)),
    "damaged": (*_TO_DELIVERY[:5], ("KC", 16.0), ("R", 64.0)),
    "customs": (*_TO_DELIVERY[:5], ("DO", 16.0)),
    "anomaly": (*_TO_DELIVERY[:5], ("PT", 60.0)),
    "return_to_sender": (*_TO_DELIVERY, *_TA, ("N", 23.0), ("R", 67.0)),
    "uncollected": (
        *_TO_DELIVERY, ("RB", 20.0), ("MD", 22.0), ("IP", 94.0), ("FI", 190.0), ("R", 236.0)
    ),
    # every delivered code
    "letterbox": _round("TA", "D1"),
    "doorstep": _round("TA", "D2"),
    "qr_code": _round("X", "D6"),
    "pin_code": _round("J", "D7"),
    "caretaker": _round("LR", "RG"),
    "delivery_slip": _round("TA", "U"),
    "unsigned": _round("TA", "VC"),
    "delivered_damaged": _round("TA", "DD"),
    "po_box": (*_TRANSIT, ("B", 22.0), ("Y", 50.0)),
    "depot_pickup": (*_TRANSIT, ("ZD", 22.0), ("D", 30.0)),
    # the rest of the list, in journeys that end where their labels lead
    "long_journey": (
        ("DC", 0.0), ("EA", 0.1), ("DE", 0.2), ("SM", 0.3), ("PE", 3.0), ("DV", 3.2),
        ("A", 4.0), ("AS", 5.0), ("BA", 6.0), ("CC", 6.5), ("EC", 7.0), ("T", 8.0),
        ("TI", 9.0), ("TO", 10.0), ("TP", 11.0), ("TR", 12.0), ("TT", 13.0), ("GC", 14.0),
        ("G", 15.0), ("I1", 16.0), ("I9", 17.0), ("IX", 18.0), ("O", 19.0), ("SF", 20.0),
        ("FD", 21.0), ("SR", 22.0), ("BL", 23.0), ("Z", 24.0), ("RO", 25.0), ("EE", 26.0),
        ("SE", 27.0), ("DT", 28.0), ("EI", 29.0), ("L", 30.0), ("E", 31.0), ("SI", 32.0),
        ("ST", 33.0), ("SJ", 34.0), ("ED", 35.0), ("I2", 36.0), ("CL", 37.0), ("CT", 38.0),
        ("SV", 39.0), ("AB", 40.0), ("AC", 40.1), ("AR", 40.2), ("CD", 40.3), ("CP", 40.4),
        ("CV", 40.5), ("FA", 40.6), ("H", 40.7), ("IC", 40.8), ("IM", 40.9), ("K", 41.0),
        ("NN", 41.1), ("OD", 41.2), ("PH", 41.3), ("SO", 41.4), ("TE", 41.5), ("V", 41.6),
        ("AT", 42.0), ("TA", 45.0), ("Y", 47.0),
    ),
    "delays": (
        ("DC", 0.0), ("DB", 4.0), ("SC", 8.0), ("A1", 9.0), ("BW", 10.0), ("CR", 11.0),
        ("DS", 12.0), ("F", 13.0), ("HD", 14.0), ("I", 15.0), ("LC", 16.0), ("LT", 17.0),
        ("LW", 18.0), ("VD", 19.0), ("W", 20.0), ("RD", 21.0), ("SD", 22.0), ("A2", 23.0),
        ("DI", 24.0), ("RA", 25.0), ("RT", 26.0), ("ZA", 27.0), ("ZC", 28.0), ("ZI", 29.0),
        ("ZT", 30.0), ("IS", 31.0), ("ZS", 32.0), ("TA", 93.0), ("IA", 94.0), ("TA", 117.0),
        ("D", 119.0),
    ),
    "instructions": (
        *_TRANSIT, ("TA", 21.0), ("CO", 23.0), ("NA", 24.0), ("PA", 25.0), ("RC", 26.0),
        ("AV", 27.0), ("IV", 28.0), ("M", 29.0), ("SK", 30.0), ("RV", 31.0),
        ("TA", 45.0), ("UN", 46.0), ("NL", 47.0), ("TA", 69.0), ("D7", 70.0),
    ),
    "customs_duties": (
        *_TRANSIT[:4], ("DF", 14.0), ("EJ", 20.0), ("AP", 30.0), ("BD", 40.0), ("SI", 50.0),
        ("SD", 60.0), ("TA", 63.0), ("D", 65.0),
    ),
    "incidents": (
        *_TRANSIT[:4], ("S", 14.0), ("ER", 15.0), ("FC", 20.0), ("VO", 21.0), ("RR", 22.0),
        ("DP", 23.0), ("RF", 24.0), ("TS", 25.0), ("DR", 40.0),
    ),
    "moved": (*_TRANSIT, ("TA", 21.0), ("CA", 23.0), ("WD", 24.0), ("RL", 48.0), ("Q", 96.0)),
    "pickup_missed": (("DC", 0.0), ("DE", 0.5), ("NC", 6.0), ("PC", 28.0), ("TS", 32.0)),
}  # fmt: skip
DEFAULT_SCENARIO = "delivered"
# The "absent" retry: TA at 08:00 and D at 10:00 on the next working day after P.
RETRY_TA_AT = timedelta(hours=8)
RETRY_D_AT = timedelta(hours=10)
# Chronopost holds the parcel once any event other than these is visible: from then on it can
# no longer be cancelled ([D] §2.6.4; [S] §2.8.1). DE is a pickup request, not a pickup.
NOT_TAKEN_OVER_CATEGORIES = frozenset({"shipper_preparation", "information", "cancelled"})
NOT_TAKEN_OVER_CODES = frozenset({"DE"})
DELIVERED_CODES = frozenset(c for c, e in EVENT_CODES.items() if e.category == "delivered")

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
