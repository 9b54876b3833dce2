"""How many requests per second the Salesforce sandbox serves (SOQL queries and 200-record
collection updates), so label and tracking benchmarks know it is not their bottleneck.
Target: >= 200 queries/s on 2 cores.

The sandbox runs in its own process (`chronoforce sandbox salesforce`) over HTTPS; 8 concurrent
httpx clients trust its throwaway CA. It never talks to anything but that loopback sandbox.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import report
from chronoforce.sandbox.server import free_port

CONCURRENCY = 8
SECONDS = 4.0
TARGET = 200.0
ORDERS = 1000  # the admin endpoint returns ids up to 1000 orders


def _wait(url: str, context: ssl.SSLContext, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/services/data/", verify=context, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("sandbox did not start")


async def _load(client: httpx.AsyncClient, make: Callable[[int], Any]) -> tuple[int, list[float]]:
    count, latencies = 0, []
    end = time.monotonic() + SECONDS

    async def worker(offset: int) -> None:
        nonlocal count
        n = offset
        while time.monotonic() < end:
            start = time.monotonic()
            response = await make(n)
            response.raise_for_status()
            latencies.append(time.monotonic() - start)
            count += 1
            n += CONCURRENCY

    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    return count, latencies


async def _measure(url: str, context: ssl.SSLContext, token: str, ids: list[str]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{url}/services/data/v61.0"
    async with httpx.AsyncClient(verify=context, headers=headers, timeout=30) as client:

        def query(n: int) -> Any:
            soql = f"SELECT Id, OrderNumber, Account.Name, ShipToContact.Phone FROM Order WHERE Id = '{ids[n % len(ids)]}'"
            return client.get(f"{base}/query", params={"q": soql})

        def collection(n: int) -> Any:
            chunk = [ids[(n * 200 + i) % len(ids)] for i in range(200)]
            records = [
                {"attributes": {"type": "Order"}, "id": i, "Chronopost_Status__c": "in_transit"}
                for i in chunk
            ]
            return client.patch(
                f"{base}/composite/sobjects", json={"allOrNone": False, "records": records}
            )

        queries, query_latency = await _load(client, query)
        collections, collection_latency = await _load(client, collection)
    return {
        "query_rps": queries / SECONDS,
        "collections_rps": collections / SECONDS,
        "query_latency": query_latency,
        "collection_latency": collection_latency,
    }


def main() -> None:
    tls_dir = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from chronoforce.cli import app; app()",
            "sandbox",
            "salesforce",
            "--port",
            str(port),
            "--tls-dir",
            str(tls_dir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while not (tls_dir / "ca.pem").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
        _wait(url, context, deadline)
        ids = httpx.post(
            f"{url}/_sandbox/seed", json={"orders": ORDERS}, verify=context, timeout=120
        ).json()["ids"]
        token = httpx.post(
            f"{url}/services/oauth2/token",
            verify=context,
            data={
                "grant_type": "client_credentials",
                "client_id": "chronoforce-demo",
                "client_secret": "chronoforce-demo-secret",
            },
        ).json()["access_token"]
        result = asyncio.run(_measure(url, context, token, ids["Order"] if ids else []))
    finally:
        process.terminate()
        process.wait(timeout=10)
    query_rps = result["query_rps"]
    report(
        "sandbox_salesforce",
        metric="soql_queries_per_second",
        value=round(query_rps, 1),
        unit="requests/s",
        ratio=round(query_rps / TARGET, 2),
        target=TARGET,
        meets=query_rps >= TARGET,
        extra={
            "collections_per_second": round(result["collections_rps"], 1),
            "records_updated_per_second": round(result["collections_rps"] * 200, 1),
            "concurrency": CONCURRENCY,
            "seeded_orders": ORDERS,
        },
        series={
            "query latency (s)": result["query_latency"],
            "collection latency (s)": result["collection_latency"],
        },
    )


if __name__ == "__main__":
    main()
