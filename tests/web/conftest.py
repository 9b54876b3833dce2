"""The API's world: the Chronopost sandbox, the Salesforce sandbox over HTTPS, and `create_app`
served by a real uvicorn server with two configured API clients (`api_world_at`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:  # imported when a world is made: a module-level logger binds at import
    from chronoforce.pipeline.runtime import Runtime
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.web.api_service import ApiService

CLIENT_ID = "sf-org"
CLIENT_SECRET = "a client secret for tests only"
API_KEY = "cfk_test-key-with-every-scope-0123456789"
RATES_ONLY_KEY = "cfk_test-key-rates-only-0123456789abcd"


@dataclass
class ApiWorld:
    url: str
    carrier: ChronopostSandbox
    org: SalesforceSandbox
    runtime: Runtime
    good_orders: list[str]
    http: httpx.Client
    service: ApiService

    def headers(self, key: str = API_KEY) -> dict[str, str]:
        return {"X-API-Key": key}

    def order(self, record_id: str) -> dict[str, Any]:
        return next(o for o in self.org.records("Order") if o["Id"] == record_id)

    def take_order(self) -> str:
        """A well-formed French order no other test has used."""
        return self.good_orders.pop()


def _good_french_orders(org: SalesforceSandbox) -> list[str]:
    contacts = {c["Id"]: c for c in org.records("Contact")}
    good = []
    for order in org.records("Order"):
        contact = contacts.get(order.get("ShipToContactId") or "", {})
        if (
            order.get("ShippingCountryCode") == "FR"
            and len(order.get("ShippingPostalCode") or "") == 5
            and not (order.get("ShippingPostalCode") or "").startswith(("97", "98"))
            and len(order.get("ShippingStreet") or "") <= 38
            and (order.get("Chronopost_Weight_Kg__c") or 99) <= 20
            and contact.get("Phone")
        ):
            good.append(order["Id"])
    return good


@contextmanager
def api_world_at(
    tmp: Path,
    *,
    latency: float | None = None,
    concurrency: int | None = None,
    cancel_window: dt.timedelta = dt.timedelta(0),
) -> Iterator[ApiWorld]:
    """The world in `tmp`; `latency`: seconds per Chronopost answer; `concurrency`: the
    configured `chronopost.concurrency`; `cancel_window`: the sandbox's (none by default: only
    tests/web/test_api_cancel_window.py is about it)."""
    from argon2 import PasswordHasher

    from chronoforce.cli.demo import demo_settings
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls
    from chronoforce.web.api_config import sha256_hex
    from chronoforce.web.app import create_app

    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", latency=latency, cancel_window=cancel_window)
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=40, seed=11)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    hasher = PasswordHasher()
    settings = demo_settings(tmp, cp.url, sf.url, tls.ca_cert)
    chronopost = settings.chronopost
    if concurrency is not None:
        chronopost = chronopost.model_copy(update={"concurrency": concurrency})
    settings = settings.model_copy(
        update={
            "api": {
                "rate_cache_ttl_s": 600,
                "return_case_type": "Problem",
                "clients": [
                    {
                        "id": CLIENT_ID,
                        "client_hash": hasher.hash(CLIENT_SECRET),
                        "key_sha256": sha256_hex(API_KEY),
                    },
                    {
                        "id": "rates-only",
                        "scopes": ["rates"],
                        "key_sha256": sha256_hex(RATES_ONLY_KEY),
                    },
                ],
            },
            "chronopost": chronopost,
            "worker": {"queue_name": f"cf-test-{uuid.uuid4().hex[:10]}"},
        }
    )
    runtime = build_runtime(settings)
    app = create_app(settings, runtime, drain_inbox=False)
    web = BackgroundServer(app, options={"timeout_graceful_shutdown": 1}).start()
    http = httpx.Client(base_url=web.url, timeout=30)
    try:
        yield ApiWorld(
            web.url, carrier, org, runtime, _good_french_orders(org), http, app.state.api
        )
    finally:
        http.close()
        web.stop()
        runtime.close()
        sf.stop()
        cp.stop()
