"""Seed generator: accounts, contacts, products, orders with items and shipments, deterministic
by seed, with realistic French and European ship-to addresses and ~10% deliberately broken ones.

Rows go in with executemany (200,000 orders in well under a minute); seeding writes no change
events, like a data load before Change Data Capture was switched on. It never touches existing
records.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from chronoforce.sandbox.salesforce.ids import make_id
from chronoforce.sandbox.salesforce.org import Org, auto_number, sf_time

# (street, postal code, city, state, country, country code) — real places, invented numbers.
FRANCE = [
    ("{n} rue de Rivoli", "75001", "Paris", None),
    ("{n} boulevard Haussmann", "75009", "Paris", None),
    ("{n} avenue de la République", "75011", "Paris", None),
    ("{n} rue de la Convention", "75015", "Paris", None),
    ("{n} rue de la République", "69002", "Lyon", None),
    ("{n} cours Lafayette", "69003", "Lyon", None),
    ("{n} La Canebière", "13001", "Marseille", None),
    ("{n} rue Sainte-Catherine", "33000", "Bordeaux", None),
    ("{n} rue Nationale", "59000", "Lille", None),
    ("{n} allée des Capucins", "44000", "Nantes", None),
    ("{n} cours Napoléon", "20000", "Ajaccio", "2A"),
    ("{n} boulevard Paoli", "20200", "Bastia", "2B"),
    ("{n} rue Victor Hugo, BP 412", "75381", "Paris CEDEX 08", None),
    ("{n} avenue Jean Jaurès, CS 30021", "69361", "Lyon CEDEX 07", None),
    ("{n} rue Victor Hugo", "97200", "Fort-de-France", "972"),
    ("{n} rue de Paris", "97400", "Saint-Denis", "974"),
    ("{n} rue Schœlcher", "97110", "Pointe-à-Pitre", "971"),
]
MONACO = [("{n} boulevard des Moulins", "98000", "Monaco", None)]
EUROPE = [
    ("Rue Neuve {n}", "1000", "Bruxelles", "Belgium", "BE"),
    ("Friedrichstraße {n}", "10117", "Berlin", "Germany", "DE"),
    ("Calle de Alcalá {n}", "28014", "Madrid", "Spain", "ES"),
    ("Via del Corso {n}", "00186", "Roma", "Italy", "IT"),
    ("Damrak {n}", "1012 LG", "Amsterdam", "Netherlands", "NL"),
    ("Bahnhofstrasse {n}", "8001", "Zürich", "Switzerland", "CH"),
    ("{n} Baker Street", "NW1 6XE", "London", "United Kingdom", "GB"),
]
FIRST = [
    "Camille",
    "Léa",
    "Hugo",
    "Louis",
    "Chloé",
    "Manon",
    "Jules",
    "Inès",
    "Lucas",
    "Zoé",
    "Anna",
    "Lukas",
    "Sofia",
    "Marco",
    "Emma",
    "Noah",
    "Olivia",
    "Pablo",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Müller",
    "García",
    "Rossi",
    "De Vries",
    "Smith",
    "Peeters",
]
PRODUCTS = [
    ("Carton de vin 6 bouteilles", 9.5, 54.0),
    ("Casque audio", 0.4, 129.0),
    ("Livre broché", 0.35, 18.9),
    ("Théière en fonte", 1.8, 45.0),
    ("Chaussures de randonnée", 1.3, 139.0),
    ("Vélo pliant", 14.5, 799.0),
    ("Lot de 4 serviettes", 1.1, 39.0),
    ("Machine à café", 4.2, 249.0),
    ("Parfum 100 ml", 0.45, 92.0),
    ("Jeu de société", 1.2, 34.9),
    ("Sac à dos 30 L", 0.9, 69.0),
    ("Plaid en laine", 1.6, 79.0),
]
# English descriptions for customs (Chronopost wants precise English contents on every
# international parcel, [D] §2.3.2.b7), by the French product name above.
ENGLISH = {
    "Carton de vin 6 bouteilles": "Red wine, 6 bottles",
    "Casque audio": "Headphones",
    "Livre broché": "Paperback book",
    "Théière en fonte": "Cast iron teapot",
    "Chaussures de randonnée": "Hiking shoes",
    "Vélo pliant": "Folding bicycle",
    "Lot de 4 serviettes": "Cotton towels, set of 4",
    "Machine à café": "Coffee machine",
    "Parfum 100 ml": "Perfume, 100 ml",
    "Jeu de société": "Board game",
    "Sac à dos 30 L": "Backpack, 30 litres",
    "Plaid en laine": "Wool blanket",
}
DOMESTIC = ("FR", "MC")  # no customs contents or declared value needed
# Showcase orders (`showcase=True`, for `make demo`): one of each case the documents describe.
# (case, street, postal code, city, country, code, extra Order fields)
SHOWCASE: list[tuple[str, str, str, str, str, str, dict[str, Any]]] = [
    ("relay", "14 rue des Martyrs", "75009", "Paris", "France", "FR",
     {"Chronopost_Relay_Point_Id__c": "2001R", "Chronopost_Weight_Kg__c": 2.0}),
    ("saturday", "8 rue de Rivoli", "75001", "Paris", "France", "FR",
     {"Chronopost_Saturday_Delivery__c": True}),
    ("insured", "30 cours Lafayette", "69003", "Lyon", "France", "FR", {"insured": True}),
    ("international-eu", "Friedrichstraße 43", "10117", "Berlin", "Germany", "DE", {}),
    ("international-world", "221 Baker Street", "NW1 6XE", "London", "United Kingdom", "GB", {}),
]  # fmt: skip
BROKEN_KINDS = ("street_too_long", "postal_code_mismatch", "missing_phone", "unknown_country")


def _phone(rng: random.Random, country: str) -> str:
    digits = "".join(str(rng.randint(0, 9)) for _ in range(8))
    if country == "FR":
        return f"+33 6 {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    prefix = {
        "BE": "+32 470",
        "DE": "+49 151",
        "ES": "+34 612",
        "IT": "+39 347",
        "NL": "+31 6",
        "CH": "+41 79",
        "GB": "+44 7700",
        "MC": "+377 6",
    }
    return f"{prefix.get(country, '+33 6')} {digits}"


def ship_to(rng: random.Random) -> tuple[dict[str, Any], str | None]:
    """A ship-to address and, for about one in ten, the way it is broken."""
    n = rng.randint(1, 180)
    roll = rng.random()
    if roll < 0.62:
        street, postal, city, state = rng.choice(FRANCE)
        address = {
            "street": street.format(n=n),
            "postal": postal,
            "city": city,
            "state": state,
            "country": "France",
            "code": "FR",
        }
    elif roll < 0.65:
        street, postal, city, state = MONACO[0]
        address = {
            "street": street.format(n=n),
            "postal": postal,
            "city": city,
            "state": None,
            "country": "Monaco",
            "code": "MC",
        }
    else:
        street, postal, city, country, code = rng.choice(EUROPE)
        address = {
            "street": street.format(n=n),
            "postal": postal,
            "city": city,
            "state": None,
            "country": country,
            "code": code,
        }
    broken = rng.choice(BROKEN_KINDS) if rng.random() < 0.10 else None
    if broken == "street_too_long":
        address["street"] = (
            f"{n} avenue du Général de Gaulle prolongée, résidence Les Jardins de la Méditerranée,"
            " bâtiment C escalier 4"
        )
    elif broken == "postal_code_mismatch":
        wrong = {"FR": "7500", "MC": "75008", "GB": "10117"}
        address["postal"] = wrong.get(str(address["code"]), "ABC12")
    elif broken == "unknown_country":
        address.update(country="Atlantis", code="XA")
    return address, broken


def seed_org(
    org: Org, orders: int, seed: int, showcase: bool = False, location: str = ""
) -> dict[str, list[str]]:
    """`orders` orders; with `showcase`, the first ones are one of each SHOWCASE case (relay,
    Saturday, insured, international EU and non-EU), the rest random as always. With
    `location`, every third order (the 2nd, 5th…) names it in Chronopost_Location__c (issue 23);
    no random draw changes."""
    rng = random.Random(seed)
    store, schema = org.store, org.schema
    now = sf_time(org.clock())
    today = org.clock().date()
    system = {
        "IsDeleted": False,
        "CreatedDate": now,
        "LastModifiedDate": now,
        "SystemModstamp": now,
        "CreatedById": org.user_id,
        "LastModifiedById": org.user_id,
    }
    owned = {**system, "OwnerId": org.user_id}
    batches: dict[str, list[dict[str, Any]]] = {
        n: []
        for n in ("Product2", "Account", "Contact", "Order", "OrderItem", "Shipment")
        if n in schema  # an Order-only org has no Shipment
    }

    def add(name: str, values: dict[str, Any]) -> str:
        if name not in batches:
            return ""  # the org has no such object (Shipment on an Order-only org)
        number = store.next_number(name)
        record_id = make_id(schema[name].prefix, number)
        values = {"Id": record_id, **values}
        for f in schema[name].fields.values():
            if f.auto_number:
                values[f.name] = auto_number(f.auto_number, number)
        values["_rowid"] = number
        batches[name].append(values)
        return record_id

    products = [
        (
            add(
                "Product2",
                {
                    **system,
                    "Name": name,
                    "ProductCode": f"SKU-{i:04d}",
                    "IsActive": True,
                    "Chronopost_Weight_Kg__c": weight,
                },
            ),
            weight,
            price,
            ENGLISH[name],
        )
        for i, (name, weight, price) in enumerate(PRODUCTS)
    ]
    accounts: list[str] = []
    for index in range(orders):
        if index % 3 == 0:
            company = f"{rng.choice(LAST)} {rng.choice(['SARL', 'SAS', 'GmbH', 'Ltd', 'SA'])}"
            accounts.append(add("Account", {**owned, "Name": company}))
        case = SHOWCASE[index] if showcase and index < len(SHOWCASE) else None
        where = {"Chronopost_Location__c": location} if location and index % 3 == 1 else {}
        _order(rng, add, owned, system, accounts[-1], products, today, case, where)
    ids: dict[str, list[str]] = {}
    with store.transaction():
        for name, rows in batches.items():
            _write(store, schema[name], rows)
            ids[name] = [r["Id"] for r in rows]
    return ids


def _order(
    rng: random.Random,
    add: Any,
    owned: dict[str, Any],
    system: dict[str, Any],
    account_id: str,
    products: list[tuple[str, float, float, str]],
    today: dt.date,
    case: tuple[str, str, str, str, str, str, dict[str, Any]] | None = None,
    located: dict[str, Any] | None = None,
) -> None:
    address, broken = ship_to(rng)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    phone = None if broken == "missing_phone" else _phone(rng, address["code"])
    extra: dict[str, Any] = {}
    if case is not None:  # no random draw changes: the other orders stay as they were
        _, street, postal, city, country, code, extra = case
        address = {"street": street, "postal": postal, "city": city, "state": None,
                   "country": country, "code": code}  # fmt: skip
        phone = _phone(random.Random(postal), code)
    email = f"{first}.{last}@example.{address['code'].lower()}".lower().replace(" ", "")
    if case is not None:
        email = f"showcase.{case[0]}@example.fr"  # relay labels need one ([D] §3.2)
    contact_id = add(
        "Contact",
        {
            **owned,
            "AccountId": account_id,
            "FirstName": first,
            "LastName": last,
            "Name": f"{first} {last}",
            "Email": email,
            "Phone": phone,
            "MobilePhone": phone,
        },
    )
    items = [rng.choice(products) for _ in range(rng.randint(1, 3))]
    quantities = [rng.randint(1, 3) for _ in items]
    weight = round(sum(w * q for (_, w, _, _), q in zip(items, quantities, strict=True)), 3)
    total = round(sum(p * q for (_, _, p, _), q in zip(items, quantities, strict=True)), 2)
    # Overseas departments (97x) ship under their own ISO codes (MQ, RE, GP…): customs too.
    abroad = address["code"] not in DOMESTIC or str(address["postal"]).startswith("97")
    customs: dict[str, Any] = {
        "Chronopost_Contents__c": "\n".join(dict.fromkeys(e for (_, _, _, e) in items)),
        "Chronopost_Declared_Value__c": total,
    }
    extra = dict(extra)
    insured = {"Chronopost_Insured_Value__c": total} if extra.pop("insured", False) else {}
    order_id = add(
        "Order",
        {
            **owned,
            "AccountId": account_id,
            "EffectiveDate": _days_ago(today, rng.randint(0, 20)),
            "Status": "Draft",
            "ShipToContactId": contact_id,
            "BillToContactId": contact_id,
            "ShippingStreet": address["street"],
            "ShippingCity": address["city"],
            "ShippingPostalCode": address["postal"],
            "ShippingState": address["state"],
            "ShippingCountry": address["country"],
            "ShippingCountryCode": address["code"],
            "TotalAmount": total,
            "Chronopost_Ship__c": True,
            "Chronopost_Label_Status__c": "Requested",
            "Chronopost_Weight_Kg__c": weight,
            # Heavy orders leave the count empty: chronoforce splits them into ≤ 30 kg parcels.
            "Chronopost_Parcel_Count__c": 1 if weight is None or weight <= 30 else None,
            "Chronopost_Saturday_Delivery__c": False,
            "Chronopost_Priority__c": rng.random() < 0.05,
            **(customs if abroad else {}),
            **insured,
            **extra,
            **(located or {}),
        },
    )
    for (product_id, _, price, _), quantity in zip(items, quantities, strict=True):
        add(
            "OrderItem",
            {
                **system,
                "OrderId": order_id,
                "Product2Id": product_id,
                "Quantity": float(quantity),
                "UnitPrice": price,
                "TotalPrice": round(price * quantity, 2),
            },
        )
    # The draw happens on every org, so an Order-only org gets the same orders as the others.
    if rng.random() < 0.3:
        add(
            "Shipment",
            {
                **owned,
                "Order__c": order_id,
                "ShipToName": f"{first} {last}",
                "ShipToStreet": address["street"],
                "ShipToCity": address["city"],
                "ShipToPostalCode": address["postal"],
                "ShipToCountry": address["country"],
                "Provider": "Chronopost",
                "Chronopost_Label_Status__c": "Requested",
            },
        )


def _days_ago(today: dt.date, days: int) -> str:
    return (today - dt.timedelta(days=days)).isoformat()


def _write(store: Any, obj: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = sorted({k for row in rows for k in row if k != "_rowid"})
    booleans = [f.name for f in obj.stored_fields if f.type == "boolean" and f.name not in names]
    names += booleans  # checkboxes are never null
    store.insert_many(
        obj,
        names,
        (
            (row["_rowid"], *(row.get(n, False if n in booleans else None) for n in names))
            for row in rows
        ),
    )
