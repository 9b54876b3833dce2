"""Mapping cost per shipment (CPU): chronoforce vs karrio's Chronopost connector, same inputs.

1,000 varied orders (addresses from the Salesforce sandbox's generator, normalized and routed by
chronoforce once, before any timing) become both libraries' own shipment models. Timed, per
shipment: build + serialize the shippingMultiParcelV5 request, and parse the answer — the
Chronopost sandbox's real answer to that order, captured once before timing, the same bytes for
both parsers. karrio (`karrio-chronopost`, bench extra only) is imported, never copied. Its
connector sends one parcel per request, so every order here has one parcel. CPU only while timing;
the sandbox is stopped before.

`python -m bench.bench_mapping_cost [ORDERS]`
"""

from __future__ import annotations

import datetime as dt
import gc
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from bench.common import report
from chronoforce.chronopost import shipping
from chronoforce.chronopost.config import ChronopostCredentials
from chronoforce.domain.address import normalize_party, require_sendable
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import (
    Address,
    Contact,
    LabelFormat,
    Parcel,
    Party,
    References,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.products import is_international
from chronoforce.domain.routing import RoutingFacts, route
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce.seed import FIRST, LAST, ship_to

ORDERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ROUNDS = 3  # best of: the machine is shared, the minimum is the cost
TARGET = 1.0  # karrio's time / ours: above 1 means chronoforce is faster
CREDENTIALS = ChronopostCredentials(DEMO_ACCOUNT, DEMO_PASSWORD)
NOW = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)  # a Tuesday morning: every product routes
SHIPPER = Party(
    Address("Boutique Lumière", "", "3 avenue Gallieni", "", "94250", "Gentilly", "FR"),
    Contact("Jean Dupont", phone="0145000000", email="expeditions@example.com"),
)


def orders(count: int, seed: int = 5) -> list[ShipmentRequest]:
    """Varied, valid, routed requests: the generator's broken addresses are left out."""
    rng = random.Random(seed)
    shipper = normalize_party(SHIPPER, "shipper").party
    result: list[ShipmentRequest] = []
    while len(result) < count:
        place, broken = ship_to(rng)
        if broken:
            continue
        first, last = rng.choice(FIRST), rng.choice(LAST)
        raw = Party(
            Address(
                f"{first} {last}",
                "",
                place["street"],
                "",
                place["postal"],
                place["city"],
                place["country"],
                place["state"] or "",
            ),
            Contact(
                f"{first} {last}",
                mobile="+33612345678" if place["code"] == "FR" else "",
                phone="+33612345678",
                email=f"{first}.{last}@example.com".lower(),
            ),
        )
        try:
            recipient = require_sendable(normalize_party(raw, "recipient").party, "recipient")
        except ChronoforceError:
            continue
        parcel = Parcel(Decimal(rng.randint(2, 250)) / 10, Decimal(30), Decimal(20), Decimal(10))
        facts = RoutingFacts(recipient.address.country, recipient.address.postal_code, (parcel,))
        try:
            decision = route(facts, NOW, None)
        except ChronoforceError:
            continue
        result.append(
            ShipmentRequest(
                shipper=shipper,
                recipient=recipient,
                parcels=(parcel,),
                product_code=decision.product_code,
                ship_date=decision.ship_date,
                references=References(f"SO-{len(result):06d}", f"C-{rng.randint(1, 9999)}"),
                options=ShipmentOptions(
                    label_format=LabelFormat.PDF,
                    # Abroad Chronopost wants English contents and a customs value (SPEC-FACTS
                    # §2.5): the request is refused before it is built without them.
                    **(INTERNATIONAL if is_international(recipient.address.country) else {}),
                ),
            )
        )
    return result


INTERNATIONAL: dict[str, Any] = {"declared_value": Decimal(45), "contents": ("Cotton T-shirts",)}


def karrio_inputs(requests: list[ShipmentRequest]) -> tuple[Any, Any, list[Any]]:
    """The same orders as karrio's unified models, and its connector's settings."""
    import karrio.core.models as models
    import karrio.mappers.chronopost.settings as karrio_settings
    import karrio.providers.chronopost as provider

    def address(party: Party) -> Any:
        a, c = party.address, party.contact
        return models.Address(
            company_name=a.name,
            person_name=c.name or a.name,
            address_line1=a.line1,
            address_line2=a.line2 or None,
            postal_code=a.postal_code,
            city=a.city,
            country_code=a.country,
            email=c.email or None,
            phone_number=c.mobile or c.phone or None,
        )

    payloads = [
        models.ShipmentRequest(
            service=r.product_code,
            shipper=address(r.shipper),
            recipient=address(r.recipient),
            parcels=[
                models.Parcel(
                    weight=float(p.weight_kg),
                    weight_unit="KG",
                    length=float(p.length_cm or 0),
                    width=float(p.width_cm or 0),
                    height=float(p.height_cm or 0),
                    dimension_unit="CM",
                )
                for p in r.parcels
            ],
            reference=r.references.order_number,
            label_type="PDF",
            options={"shipment_date": r.ship_date.isoformat()},
        )
        for r in requests
    ]
    settings = karrio_settings.Settings(account_number=DEMO_ACCOUNT, password=DEMO_PASSWORD)
    return provider, settings, payloads


def answers(requests: list[ShipmentRequest]) -> list[bytes]:
    """The sandbox's answer to each order, captured once, before any timing."""
    sandbox = ChronopostSandbox(db_path=":memory:")
    server = sandbox.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return [
                client.post(
                    "/shipping-cxf/ShippingServiceWS",
                    content=shipping.build_shipment(r, CREDENTIALS),
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                ).content
                for r in requests
            ]
    finally:
        server.stop()


def best_seconds(work: Callable[[], Any]) -> float:
    """The fastest of ROUNDS full passes (garbage collection off while timing, as timeit does)."""
    work()  # warm up: imports, caches, schema classes
    times = []
    for _ in range(ROUNDS):
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
        finally:
            gc.enable()
    return min(times)


def main() -> None:
    import karrio.lib as lib

    requests = orders(ORDERS)
    replies = answers(requests)
    refused = [i for i, r in enumerate(replies) if b"<errorCode>0</errorCode>" not in r]
    provider, settings, payloads = karrio_inputs(requests)
    pairs = list(zip(requests, replies, strict=True))
    kpairs = list(zip(payloads, replies, strict=True))

    # Both parsers must read the same label from the same answer, or the race is meaningless.
    ours = shipping.parse_shipment(replies[0], LabelFormat.PDF)
    theirs, _ = provider.parse_shipment_response(
        lib.Deserializable(replies[0].decode(), lib.to_element), settings
    )
    assert theirs is not None and theirs.tracking_number == ours.labels[0].skybill_number

    def chronoforce_build() -> None:
        for r in requests:
            shipping.build_shipment(r, CREDENTIALS)

    def chronoforce_all() -> None:
        for r, reply in pairs:
            shipping.build_shipment(r, CREDENTIALS)
            shipping.parse_shipment(reply, LabelFormat.PDF)

    def karrio_build() -> None:
        for p in payloads:
            provider.shipment_request(p, settings).serialize()

    def karrio_all() -> None:
        for p, reply in kpairs:
            provider.shipment_request(p, settings).serialize()
            provider.parse_shipment_response(
                lib.Deserializable(reply.decode(), lib.to_element), settings
            )

    times = {
        "chronoforce build": best_seconds(chronoforce_build),
        "chronoforce build+parse": best_seconds(chronoforce_all),
        "karrio build": best_seconds(karrio_build),
        "karrio build+parse": best_seconds(karrio_all),
    }
    per = {k: round(v / len(requests) * 1e6, 1) for k, v in times.items()}  # µs per shipment
    for name, micros in per.items():
        print(f"  {name:26} {micros:>9,.1f} µs/shipment")
    ratio = times["karrio build+parse"] / times["chronoforce build+parse"]
    countries: dict[str, int] = {}
    products: dict[str, int] = {}
    for r in requests:
        countries[r.recipient.address.country] = countries.get(r.recipient.address.country, 0) + 1
        products[r.product_code] = products.get(r.product_code, 0) + 1
    report(
        "mapping_cost",
        metric="chronoforce build+serialize+parse per shipment",
        value=per["chronoforce build+parse"],
        unit="µs",
        ratio=round(ratio, 2),
        target=TARGET,
        meets=ratio > TARGET,
        direction="ratio karrio time / chronoforce time: higher is better (>1: chronoforce faster)",
        extra={
            "orders": len(requests),
            "answers_refused_by_sandbox": len(refused),
            "microseconds_per_shipment": per,
            "build_only_ratio": round(times["karrio build"] / times["chronoforce build"], 2),
            "countries": countries,
            "products": products,
            "rounds": ROUNDS,
            "clock": "process CPU time, best of rounds",
        },
        series=None,
    )


if __name__ == "__main__":
    main()
