"""`chronoforce doctor`: what a first connection to the configured services needs, checked.

Each check answers ok or not with what it saw and, when not, what to do. The checks only read:
a login, describes, `/limits`, one LIMIT 1 query, the WSDLs, one rates call (the harmless call
that proves the Chronopost credentials), `SELECT 1` and a queue ping. They never write to the
org or create anything at Chronopost, and never show a secret or a URL's password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import httpx

from chronoforce.config import Settings
from chronoforce.domain.errors import (
    CarrierAccountError,
    ChronoforceError,
    PermanentError,
)
from chronoforce.domain.models import Parcel
from chronoforce.salesforce.fields import TRACKING_EVENT

# Objects chronoforce writes and what it does to them (pipeline/writeback.py, tracking/).
WRITES: dict[str, tuple[str, ...]] = {
    "Order": ("updateable",),
    "Shipment": ("updateable",),
    "Case": ("createable", "updateable"),
    "CaseComment": ("createable",),
    "ContentVersion": ("createable",),
    "ContentDocumentLink": ("createable",),
    TRACKING_EVENT: ("createable", "updateable"),
}
# The Salesforce sandbox and the Chronopost test route: a parcel from Paris to Lyon.
SAMPLE_ROUTE = ("FR", "75011", "FR", "69003")


@dataclass(frozen=True)
class Check:
    area: str  # salesforce, chronopost, store
    name: str
    ok: bool
    detail: str  # what was seen
    fix: str = ""  # what to do when not ok

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _safe(area: str, name: str, fix: str, fn: Callable[[], Check]) -> Check:
    """Run one check; any failure becomes a failed row naming the error, never a traceback."""
    try:
        return fn()
    except ChronoforceError as exc:
        return Check(area, name, False, f"{type(exc).__name__}: {exc}", fix)
    except Exception as exc:  # the check's own answer: the service could not be used
        return Check(area, name, False, f"{type(exc).__name__}: {str(exc)[:200]}", fix)


def run_checks(settings: Settings, queue_name: str = "chronoforce") -> list[Check]:
    """Every check, in the order a person fixes them: Salesforce, Chronopost, the store."""
    return [
        *salesforce_checks(settings),
        *chronopost_checks(settings),
        *store_checks(settings, queue_name),
    ]


# --- Salesforce ---------------------------------------------------------------------------


def salesforce_checks(settings: Settings) -> Iterator[Check]:
    from chronoforce.salesforce.client import SalesforceClient

    area = "salesforce"
    flow = settings.salesforce.auth
    login_fix = (
        f"check salesforce.login_url / instance_url, salesforce.client_id and the secrets of the "
        f"'{flow}' flow (docs/deploy.md, 'Salesforce')"
    )
    client: SalesforceClient | None = None

    def login() -> Check:
        nonlocal client
        client = SalesforceClient.from_settings(settings)
        url = client.connection.sf.sf_instance
        return Check(area, "login", True, f"logged in with '{flow}' to {url}")

    yield _safe(area, "login", login_fix, login)
    if client is None:
        for name in ("api version", "org shape", "permissions", "API budget"):
            yield Check(area, name, False, "not checked: no login", "fix the login first")
        return
    sf_client: SalesforceClient = client
    try:
        yield _safe(
            area,
            "api version",
            "set salesforce.api_version to one the org lists",
            lambda: _api_version(sf_client, settings),
        )
        yield _safe(
            area,
            "org shape",
            "run `chronoforce mapping check`",
            lambda: _org_shape(sf_client, settings),
        )
        yield _safe(
            area,
            "permissions",
            "assign the Chronoforce_Integration permission set to the integration user",
            lambda: _permissions(sf_client),
        )
        yield _safe(
            area,
            "API budget",
            "wait for the 24-hour window to roll, or ask Salesforce for more API calls",
            lambda: _budget(sf_client, settings),
        )
    finally:
        sf_client.close()


def _api_version(client: Any, settings: Settings) -> Check:
    sf = client.connection.sf
    base = f"https://{sf.sf_instance}/services/data/"
    answer = client.connection.call("versions", lambda s: s.session.get(base, timeout=30))
    answer.raise_for_status()
    versions = [str(v.get("version")) for v in answer.json()]
    wanted = settings.salesforce.api_version
    newest = versions[-1] if versions else "none"
    if wanted in versions:
        return Check(
            "salesforce", "api version", True, f"{wanted} (newest the org offers: {newest})"
        )
    return Check(
        "salesforce",
        "api version",
        False,
        f"{wanted} is not offered; the org offers {', '.join(versions[-5:]) or 'none'}",
        f"set salesforce.api_version to {newest}",
    )


def _org_shape(client: Any, settings: Settings) -> Check:
    from chronoforce.salesforce.mapping import MappingConfig
    from chronoforce.salesforce.mapping_check import check_mapping

    mapping = MappingConfig.from_settings(settings.mapping)
    problems = check_mapping(client, mapping)
    if not problems:
        return Check(
            "salesforce",
            "org shape",
            True,
            f"{len(mapping.specs())} mapped fields of {mapping.trigger_object} found",
        )
    first = problems[0]
    return Check(
        "salesforce",
        "org shape",
        False,
        f"{len(problems)} mapping problem(s), first: {first.path} on {first.sobject}: "
        f"{first.message}",
        "deploy the metadata package (salesforce/README.md) or map the org's own fields "
        "(`chronoforce mapping check`)",
    )


def _permissions(client: Any) -> Check:
    missing: list[str] = []
    seen = 0
    for sobject, needs in WRITES.items():
        try:
            described = client.describe(sobject)
        except PermanentError:
            if sobject == "Shipment":
                continue  # orgs without the Shipment object ship Orders only
            missing.append(f"{sobject} (not visible)")
            continue
        seen += 1
        missing += [f"{sobject}.{need}" for need in needs if not described.get(need, False)]
        for f in described.get("fields", []):
            name = str(f.get("name", ""))
            writable = f.get("updateable") or f.get("createable") or f.get("calculated")
            if name.startswith("Chronopost_") and not writable:
                missing.append(f"{sobject}.{name} (read-only for this user)")
    if missing:
        return Check(
            "salesforce",
            "permissions",
            False,
            f"missing: {', '.join(missing[:6])}"
            + (f" and {len(missing) - 6} more" if len(missing) > 6 else ""),
            "assign the Chronoforce_Integration permission set to the integration user",
        )
    return Check("salesforce", "permissions", True, f"writes allowed on {seen} objects")


def _budget(client: Any, settings: Settings) -> Check:
    limits = client.connection.call("limits", lambda s: s.limits())
    daily = limits.get("DailyApiRequests", {})
    left, most = int(daily.get("Remaining", 0)), int(daily.get("Max", 0))
    reserve = settings.salesforce.api_reserve_fraction
    ok = most > 0 and left > most * reserve
    detail = (
        f"{left:,} of {most:,} daily API calls left (chronoforce stops writing below {reserve:.0%})"
    )
    return Check("salesforce", "API budget", ok, detail, "" if ok else "the budget is nearly spent")


# --- Chronopost ---------------------------------------------------------------------------


def chronopost_checks(settings: Settings) -> Iterator[Check]:
    from chronoforce.chronopost.client import ChronopostClient
    from chronoforce.chronopost.config import Service

    area = "chronopost"
    base = settings.chronopost.base_url.rstrip("/")
    verify: bool | str = str(settings.chronopost.ca_file) if settings.chronopost.ca_file else True
    with httpx.Client(verify=verify, timeout=settings.chronopost.connect_timeout_s + 10) as http:
        for service in Service:

            def wsdl(service: Service = service) -> Check:
                answer = http.get(f"{base}{service.path}", params="wsdl")
                ok = answer.status_code == 200 and b"definitions" in answer.content[:4000]
                return Check(
                    area,
                    f"{service.value} service",
                    ok,
                    f"{service.path}?wsdl answered {answer.status_code}",
                    "" if ok else "check chronopost.base_url and the network path to it",
                )

            yield _safe(area, f"{service.value} service", "check chronopost.base_url", wsdl)

    def credentials_and_products() -> Iterator[Check]:
        client = ChronopostClient.from_settings(settings)
        try:
            shipper = settings.chronopost.shipper
            dep = (shipper.country or "FR", shipper.postal_code or SAMPLE_ROUTE[1])
            parcel = Parcel(weight_kg=Decimal("1"))
            try:
                rates = client.calculate_products(
                    dep[1],
                    SAMPLE_ROUTE[3],
                    parcel,
                    departure_country=dep[0],
                    arrival_country=SAMPLE_ROUTE[2],
                    ship_date=dt.date.today(),
                )
            except CarrierAccountError as exc:
                yield Check(
                    area,
                    "credentials",
                    False,
                    f"account {settings.chronopost.account_number} refused: {exc}",
                    "check chronopost.account_number and CHRONOFORCE_CHRONOPOST_PASSWORD",
                )
                yield Check(area, "products", False, "not checked: credentials refused")
                return
            yield Check(
                area,
                "credentials",
                True,
                f"account {settings.chronopost.account_number} accepted (calculateProducts)",
            )
            codes = sorted({r.product_code for r in rates})
            route = f"{dep[1]} {dep[0]} → {SAMPLE_ROUTE[3]} {SAMPLE_ROUTE[2]}"
            yield Check(
                area,
                "products",
                bool(codes),
                f"{route}: products {', '.join(codes) or 'none'}",
                "" if codes else "ask Chronopost which products the contract opens",
            )
        finally:
            client.close()

    try:
        yield from credentials_and_products()
    except Exception as exc:
        yield Check(
            area,
            "credentials",
            False,
            f"{type(exc).__name__}: {str(exc)[:200]}",
            "check chronopost.base_url, account_number and the password",
        )


# --- the store ------------------------------------------------------------------------------


def store_checks(settings: Settings, queue_name: str = "chronoforce") -> Iterator[Check]:
    from chronoforce.pipeline.health import readiness
    from chronoforce.store.db import Store

    store = Store(settings.database_url, migrate=False)
    try:
        checks = readiness(settings, store, queue_name)
    finally:
        store.dispose()
    fixes = {
        "database": "check CHRONOFORCE_DATABASE_URL (and that the server runs)",
        "migrations": "run `chronoforce db upgrade`",
        "queue": "check CHRONOFORCE_QUEUE_URL (and that Redis runs)",
    }
    for name, value in checks.items():
        ok = value == "ok"
        yield Check("store", name, ok, str(value), "" if ok else fixes.get(name, ""))
