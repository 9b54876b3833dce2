"""Micro benchmark of the Chronopost adapter's hot path: shipment requests built and serialized,
shipment and tracking answers parsed, per second, direct codec vs zeep over the same WSDL.

CPU only (no network, no sandbox); it must never call Chronopost. Run:
`python -m bench.bench_chronopost_codec`.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench.common import report
from chronoforce.chronopost import shipping, tracking
from chronoforce.chronopost.config import ChronopostCredentials
from chronoforce.chronopost.transport import Redactor
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
from chronoforce.redaction import redact_text

SECONDS = float(os.environ.get("BENCH_SECONDS", "0.4"))  # per measurement
ROUNDS = 3
TARGET_RATIO = 5.0  # the direct codec must be at least 5x zeep on a full label exchange
CREDENTIALS = ChronopostCredentials("19869502", "255562")
NS_SHIPPING = "http://cxf.shipping.soap.chronopost.fr/"
NS_TRACKING = "http://cxf.tracking.soap.chronopost.fr/"


def _request(product: str, parcels: int, options: ShipmentOptions) -> ShipmentRequest:
    """A typical French e-commerce shipment, already normalized."""
    return ShipmentRequest(
        shipper=Party(
            Address(
                "Boutique Lumière", "", "28 rue du Clair Bocage", "", "83500", "LA SEYNE", "FR"
            ),
            Contact("Jean Dupont", phone="0494000000", email="expeditions@example.com"),
        ),
        recipient=Party(
            Address(
                "Claire Martin", "", "72 rue Reine Elisabeth", "Bat. B", "06500", "MENTON", "FR"
            ),
            Contact("Claire Martin", mobile="0612345678", email="claire@example.fr"),
        ),
        parcels=tuple(
            Parcel(Decimal("2.5"), Decimal(30), Decimal(20), Decimal(10)) for _ in range(parcels)
        ),
        product_code=product,
        ship_date=dt.date(2024, 3, 4),
        references=References("SO-000123", "CUST-42"),
        options=options,
    )


def _shipment_answer(parcels: int, label_bytes: int = 4000) -> bytes:
    """A shippingMultiParcelV5 answer shaped like the reference sample, with label-sized data."""
    label = base64.b64encode(b"%PDF-1.3 " + b"x" * label_bytes).decode()
    values = "".join(
        "<resultMultiParcelValue><codeDepot>75327227</codeDepot><codeService>226</codeService>"
        "<destinationDepot>0477</destinationDepot>"
        f"<geoPostCodeBarre>%0006500XP69698248{i}248226250</geoPostCodeBarre>"
        f"<geoPostNumeroColis>XP69698248{i}248D</geoPostNumeroColis>"
        f"<groupingPriorityLabel>SIA1</groupingPriorityLabel><pdfEtiquette>{label}</pdfEtiquette>"
        "<serviceMark/><serviceName>AM2-NO</serviceName><signaletiqueProduit>13H"
        f"</signaletiqueProduit><skybillNumber>XP69698248{i}FR</skybillNumber>"
        "</resultMultiParcelValue>"
        for i in range(parcels)
    )
    return _envelope(
        NS_SHIPPING,
        "shippingMultiParcelV5Response",
        "<errorCode>0</errorCode><errorMessage/><reservationNumber>0729300138103893"
        f"</reservationNumber>{values}",
    )


def _tracking_answer(events: int = 9) -> bytes:
    items = "".join(
        f"<events><code>TS</code><eventDate>2022-06-21T23:3{i % 10}:06+02:00</eventDate>"
        "<eventLabel>Shipment in transit</eventLabel><highPriority>false</highPriority>"
        "<NPC>91</NPC><officeLabel>HUB CHILLY MAZARIN CHRONOPOST</officeLabel>"
        "<zipCode>91090</zipCode><infoCompList><name>Comment</name><value>In transit</value>"
        "</infoCompList></events>"
        for i in range(events)
    )
    return _envelope(
        NS_TRACKING,
        "trackSkybillV2Response",
        f"<errorCode>0</errorCode><listEventInfoComp>{items}<skybillNumber>XP1</skybillNumber>"
        "</listEventInfoComp>",
    )


def _envelope(namespace: str, element: str, inner: str) -> bytes:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<ns1:{element} xmlns:ns1="{namespace}"><return>{inner}</return></ns1:{element}>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def per_second(work: Callable[[], Any]) -> float:
    """Best of ROUNDS: calls per second of `work` over about SECONDS each."""
    work()  # warm caches (zeep's WSDL load, pycountry) outside the measurement
    rates = []
    for _ in range(ROUNDS):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < SECONDS:
            for _ in range(20):
                work()
            calls += 20
        rates.append(calls / elapsed)
    return max(rates)


def measure() -> dict[str, dict[str, float]]:
    one = _request("01", 1, ShipmentOptions())
    # Three parcels to a home (a relay label takes one parcel only, SPEC-FACTS §2.5).
    three = _request("01", 3, ShipmentOptions())
    answer1, answer3, events = _shipment_answer(1), _shipment_answer(3), _tracking_answer()
    pdf = LabelFormat.PDF
    redactor = Redactor(CREDENTIALS.password)
    request3 = shipping.build_shipment(three, CREDENTIALS)
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "build shipment, 1 parcel": (
            lambda: shipping.build_shipment(one, CREDENTIALS),
            lambda: shipping.build_shipment_zeep(one, CREDENTIALS),
        ),
        "build shipment, 3 parcels": (
            lambda: shipping.build_shipment(three, CREDENTIALS),
            lambda: shipping.build_shipment_zeep(three, CREDENTIALS),
        ),
        "parse shipment answer, 1 parcel": (
            lambda: shipping.parse_shipment(answer1, pdf),
            lambda: shipping.parse_shipment_zeep(answer1, pdf),
        ),
        "parse shipment answer, 3 parcels": (
            lambda: shipping.parse_shipment(answer3, pdf),
            lambda: shipping.parse_shipment_zeep(answer3, pdf),
        ),
        "build tracking request": (
            lambda: tracking.build_track("XP1"),
            lambda: tracking.build_track_zeep("XP1"),
        ),
        # Recording a CarrierCall: our targeted masking vs the general redaction rules.
        "redact request + answer, 3 parcels": (
            lambda: (redactor(request3), redactor(answer3)),
            lambda: (redact_text(request3.decode()), redact_text(answer3.decode())),
        ),
        "parse tracking answer, 9 events": (
            lambda: tracking.parse_track(events, "XP1"),
            lambda: tracking.parse_track_zeep(events, "XP1"),
        ),
    }
    return {
        name: {"fast_per_s": per_second(fast), "zeep_per_s": per_second(slow)}
        for name, (fast, slow) in cases.items()
    }


def _exchange_rate(results: dict[str, dict[str, float]], key: str, parcels: str) -> float:
    """Label exchanges per second: one build plus one parse (harmonic combination)."""
    build = results[f"build shipment, {parcels}"][key]
    parse = results[f"parse shipment answer, {parcels}"][key]
    return 1.0 / (1.0 / build + 1.0 / parse)


def main() -> None:
    results = measure()
    for name, row in results.items():
        speedup = row["fast_per_s"] / row["zeep_per_s"]
        print(
            f"  {name:34} fast {row['fast_per_s']:>10,.0f}/s   zeep {row['zeep_per_s']:>9,.0f}/s"
            f"   x{speedup:.1f}"
        )
    fast = _exchange_rate(results, "fast_per_s", "3 parcels")
    zeep = _exchange_rate(results, "zeep_per_s", "3 parcels")
    ratio = fast / zeep
    report(
        "chronopost_codec",
        metric="label exchanges (build + parse, 3 parcels) per second, direct codec",
        value=fast,
        unit="/s",
        ratio=ratio,
        target=TARGET_RATIO,
        meets=ratio >= TARGET_RATIO,
        direction="ratio direct/zeep: higher is better",
        extra={
            "zeep_exchanges_per_s": zeep,
            "cases": results,
            "speedups": {n: r["fast_per_s"] / r["zeep_per_s"] for n, r in results.items()},
            "median_speedup": statistics.median(
                r["fast_per_s"] / r["zeep_per_s"] for r in results.values()
            ),
            "seconds_per_measurement": SECONDS,
        },
    )


if __name__ == "__main__":
    main()
