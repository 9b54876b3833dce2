"""How many requests per second the Chronopost sandbox serves, so later benchmarks know it is not
their bottleneck. Target: >= 300 trackSkybillV2 requests/s on 2 cores.

The sandbox runs in its own process (as `chronoforce sandbox chronopost`); 16 concurrent httpx
clients send raw SOAP. It never talks to anything but the loopback sandbox it started.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from lxml import etree

from bench.common import report
from chronoforce.sandbox.server import free_port

CONCURRENCY = 16
SECONDS = 5.0
TARGET = 300.0
SHIP_NS = "http://cxf.shipping.soap.chronopost.fr/"
TRACK_NS = "http://cxf.tracking.soap.chronopost.fr/"
ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="{ns}">'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)
SHIPMENT = """<c:shippingMultiParcelV5>
<headerValue><accountNumber>19869502</accountNumber><idEmit>CHRFR</idEmit><subAccount>0</subAccount></headerValue>
<shipperValue><shipperAdress1>28 rue du Clair Bocage</shipperAdress1><shipperCity>La Seyne-sur-Mer</shipperCity>
<shipperCivility>M</shipperCivility><shipperCountry>FR</shipperCountry><shipperName>Chef Royale</shipperName>
<shipperPreAlert>0</shipperPreAlert><shipperZipCode>83500</shipperZipCode></shipperValue>
<customerValue><customerPreAlert>0</customerPreAlert></customerValue>
<recipientValue><recipientAdress1>72 rue Reine Elisabeth</recipientAdress1><recipientCity>Menton</recipientCity>
<recipientCountry>FR</recipientCountry><recipientName>HautSide</recipientName><recipientPreAlert>0</recipientPreAlert>
<recipientZipCode>06500</recipientZipCode></recipientValue>
<refValue><shipperRef>BENCH-{n}</shipperRef></refValue>
<skybillValue><productCode>01</productCode><shipHour>10</shipHour><weight>2.5</weight><weightUnit>KGM</weightUnit>
<height>10</height><length>20</length><width>15</width></skybillValue>
<skybillParamsValue><mode>PDF</mode><withReservation>1</withReservation></skybillParamsValue>
<password>255562</password><modeRetour>2</modeRetour><numberOfParcel>1</numberOfParcel></c:shippingMultiParcelV5>"""
TRACK = "<c:trackSkybillV2><language>en_GB</language><skybillNumber>{skybill}</skybillNumber></c:trackSkybillV2>"


def start_sandbox(port: int, *args: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-c",
        "from chronoforce.cli import app; app()",
        "sandbox",
        "chronopost",
    ]
    process = subprocess.Popen([*command, "--port", str(port), *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the sandbox did not start")


async def load(
    url: str, body_for: Callable[[int], bytes], seconds: float
) -> tuple[list[float], list[int], list[bytes]]:
    """CONCURRENCY clients sending for `seconds`: latencies (s), completions per second, bodies."""
    latencies: list[float] = []
    answers: list[bytes] = []
    start = time.monotonic()
    per_second = [0] * (int(seconds) + 1)
    counter = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal counter
        while (now := time.monotonic()) - start < seconds:
            counter += 1
            response = await http.post(
                url, content=body_for(counter), headers={"Content-Type": "text/xml"}
            )
            response.raise_for_status()
            latencies.append(time.monotonic() - now)
            per_second[min(int(time.monotonic() - start), len(per_second) - 1)] += 1
            if len(answers) < 2000:
                answers.append(response.content)

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(CONCURRENCY)))
    return latencies, per_second[: int(seconds)], answers


def _skybills(answers: list[bytes]) -> list[str]:
    found = []
    for answer in answers:
        found += [e.text or "" for e in etree.fromstring(answer).iter("skybillNumber")]
    return found


def _stats(latencies: list[float], seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
    }


def main() -> None:
    port = free_port()
    process = start_sandbox(port)
    try:
        base = f"http://127.0.0.1:{port}"
        ship_url, track_url = (
            f"{base}/shipping-cxf/ShippingServiceWS",
            f"{base}/tracking-cxf/TrackingServiceWS",
        )

        def ship_body(n: int) -> bytes:
            return ENVELOPE.format(ns=SHIP_NS, body=SHIPMENT.format(n=n)).encode()

        ship_lat, ship_series, answers = asyncio.run(load(ship_url, ship_body, SECONDS))
        skybills = _skybills(answers)

        def track_body(n: int) -> bytes:
            return ENVELOPE.format(
                ns=TRACK_NS, body=TRACK.format(skybill=skybills[n % len(skybills)])
            ).encode()

        track_lat, track_series, _ = asyncio.run(load(track_url, track_body, SECONDS))
        httpx.put(f"{base}/_sandbox/faults", json={"latency_ms": 300})
        slow_lat, _, _ = asyncio.run(load(track_url, track_body, 3.0))
    finally:
        process.terminate()
        process.wait(timeout=10)
    shipping, tracking, slow = (
        _stats(ship_lat, SECONDS),
        _stats(track_lat, SECONDS),
        _stats(slow_lat, 3.0),
    )
    report(
        "sandbox_chronopost",
        metric="tracking_rps",
        value=round(tracking["rps"], 1),
        unit="req/s",
        ratio=round(tracking["rps"] / TARGET, 3),
        target=TARGET,
        meets=tracking["rps"] >= TARGET,
        extra={
            "concurrency": CONCURRENCY,
            "seconds": SECONDS,
            "tracking": tracking,
            "shipping": shipping,
            # With 300 ms injected latency, 16 clients should approach 16 / 0.3 = 53 req/s.
            "tracking_with_300ms_latency": slow,
        },
        series={"shipping req/s": ship_series, "tracking req/s": track_series},
    )


if __name__ == "__main__":
    main()
