"""Security: signed webhooks, API auth, no secret anywhere, SOQL only with escaped values.

Everything runs against the real servers on loopback: the FastAPI app (webhooks, API), the
Salesforce sandbox (whose SOQL entry point is wrapped to record each query it receives) and
the Chronopost sandbox. The suite-wide secrets scan lives in tests/conftest.py and
tests/secrets_registry.py; the tests here prove it finds what it looks for, and run one
pipeline with faults and expired sessions whose every log line and stored payload is checked.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from chronoforce.config import Secrets, Settings
from chronoforce.domain.errors import ChronoforceError
from chronoforce.salesforce.soql import SoqlInjectionError, in_list, quote
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Shipment, WebhookInbox
from chronoforce.web.app import create_app
from chronoforce.web.webhooks import PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests import secrets_registry

WEBHOOK_SECRET = "whsec-reliability-3b9d0e7a51"
EVIL_ID = "x' OR Name != '"

# --- webhooks: signature and replay --------------------------------------------------------


@pytest.fixture()
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    yield s
    s.dispose()


@pytest.fixture()
def hook(store: Store) -> Iterator[httpx.Client]:
    settings = Settings(secrets=Secrets(webhook_secret=SecretStr(WEBHOOK_SECRET)))
    app = create_app(settings, SimpleNamespace(store=store), drain_inbox=False)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _event(event_id: str, skybill: str = "XR000000001FR") -> dict[str, Any]:
    return {
        "eventId": event_id,
        "skybillNumber": skybill,
        "code": "DC",
        "eventDate": "2026-03-02T08:00:00+00:00",
    }


def _body(*event_ids: str) -> bytes:
    return json.dumps({"events": [_event(i) for i in event_ids]}).encode()


def _post(
    client: httpx.Client,
    body: bytes,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    secret: str = WEBHOOK_SECRET,
) -> httpx.Response:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        TIMESTAMP_HEADER: stamp,
        # bytes: a header may carry any octets on the wire, not only ASCII
        SIGNATURE_HEADER: (signature or sign(secret, stamp, body)).encode(),
        "Content-Type": "application/json",
    }
    return client.post(PATH, content=body, headers=headers)


def _inbox(store: Store) -> list[str]:
    with store.session() as session:
        return sorted(session.scalars(select(WebhookInbox.event_id)))


def test_a_signature_made_for_another_body_is_refused(hook: httpx.Client, store: Store) -> None:
    stamp = int(time.time())
    signed_for_other = sign(WEBHOOK_SECRET, str(stamp), _body("evt-a"))
    answer = _post(hook, _body("evt-b"), timestamp=stamp, signature=signed_for_other)
    assert answer.status_code == 401
    assert _inbox(store) == []


def test_a_signature_is_bound_to_its_timestamp(hook: httpx.Client, store: Store) -> None:
    """Re-stamping a captured request (to pass the window again) breaks its signature."""
    body, stamp = _body("evt-a"), int(time.time()) - 200
    captured = sign(WEBHOOK_SECRET, str(stamp), body)
    assert _post(hook, body, timestamp=stamp + 200, signature=captured).status_code == 401
    assert _inbox(store) == []


@pytest.mark.parametrize("skew", [-301, 301, -(10**6), 10**6])
def test_a_timestamp_outside_the_window_either_way_is_refused(
    hook: httpx.Client, store: Store, skew: int
) -> None:
    answer = _post(hook, _body("evt-a"), timestamp=int(time.time()) + skew)
    assert answer.status_code == 401 and "window" in answer.json()["detail"]
    assert _inbox(store) == []


@pytest.mark.parametrize("skew", [-240, 240])
def test_a_timestamp_inside_the_window_either_way_is_accepted(
    hook: httpx.Client, skew: int
) -> None:
    assert _post(hook, _body(f"evt{skew}"), timestamp=int(time.time()) + skew).status_code == 202


def test_an_event_id_is_accepted_once_across_requests(hook: httpx.Client, store: Store) -> None:
    """Replays by event id: each request is new (fresh time, fresh signature), the event not."""
    assert _post(hook, _body("evt-1")).status_code == 202
    mixed = _post(hook, _body("evt-1", "evt-2"))
    assert mixed.status_code == 202
    assert mixed.json()["accepted"] == ["evt-2"] and mixed.json()["duplicates"] == ["evt-1"]
    again = _post(hook, _body("evt-2", "evt-1"))
    assert again.status_code == 409
    assert _inbox(store) == ["evt-1", "evt-2"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s.upper().replace("V1=", "v1="),  # same digest, other case
        lambda s: s[:-1],  # a prefix of the right one
        lambda s: s + "0",
        lambda s: s.replace("v1=", "v0="),
        lambda s: s.split("=", 1)[1],  # digest without its scheme
        lambda s: "v1=" + "é" * 64,  # not ASCII: refused, not a server error
        lambda s: " , ".join(["v1=" + "0" * 64] * 50),  # many wrong ones
    ],
)
def test_a_signature_that_is_not_exactly_the_right_one_is_refused(
    hook: httpx.Client, store: Store, tamper: Callable[[str], str]
) -> None:
    body, stamp = _body("evt-a"), int(time.time())
    good = sign(WEBHOOK_SECRET, str(stamp), body)
    answer = _post(hook, body, timestamp=stamp, signature=tamper(good))
    assert answer.status_code == 401
    assert _inbox(store) == []


def test_a_signature_with_another_secret_is_refused(hook: httpx.Client, store: Store) -> None:
    assert _post(hook, _body("evt-a"), secret=WEBHOOK_SECRET + "-old").status_code == 401
    assert _inbox(store) == []


def test_signatures_are_compared_in_constant_time(
    hook: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observed, not read: every comparison the server makes goes through compare_digest."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    body, stamp = _body("evt-a"), int(time.time())
    good = sign(WEBHOOK_SECRET, str(stamp), body)
    wrong = "v1=" + "0" * 64
    assert _post(hook, body, timestamp=stamp, signature=f"{wrong},{good}").status_code == 202
    assert (good.encode(), wrong.encode()) in seen or (wrong.encode(), good.encode()) in seen
    assert any(good.encode() in pair and pair[0] == pair[1] for pair in seen)


# --- secrets: the scanner, and a pipeline run with faults whose every trace is scanned ------


def test_the_scan_finds_a_registered_secret_wherever_it_is_planted(tmp_path: Path) -> None:
    planted = "planted-Secret-7c1e44b09d"
    secrets_registry.register("planted test secret", planted)
    assert [str(h) for h in secrets_registry.find(f"a log line {planted}", "log")] == [
        "planted test secret found in log"
    ]
    assert secrets_registry.find("nothing here", "log") == []
    # Numeric secrets are matched as whole values only (the Chronopost password is 6 digits).
    assert secrets_registry.find("duration_ms=12.255562", "log") == []
    assert secrets_registry.find("<password>255562</password>", "log")
    # A private key is found line by line, even inside JSON with escaped new lines.
    from tests.salesforce.conftest import key_and_certificate

    pem, _ = key_and_certificate()
    secrets_registry.register("planted private key", pem)
    assert secrets_registry.find(json.dumps({"key": pem}), "payload")
    with tempfile.TemporaryDirectory() as elsewhere:  # outside the session's scanned tree
        path = Path(elsewhere) / "planted.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE exception (message TEXT)")
            db.execute("INSERT INTO exception VALUES (?)", (f"login failed for {planted}",))
        db.close()
        hits = secrets_registry.scan_sqlite(path, record=False)
    assert [h.kind for h in hits] == ["planted test secret"] and "exception" in hits[0].where


ORDERS = 24


def _world(base: Path, lease_seconds: float = 120.0) -> Iterator[dict[str, Any]]:
    from chronoforce.cli.demo import demo_settings
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.tls import ensure_tls

    tls = ensure_tls(base / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", cancel_window=dt.timedelta(0))
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=ORDERS, seed=11)
    queries: list[str] = []
    real_query = org.org.query

    def recording(soql: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(soql)
        return real_query(soql, *args, **kwargs)

    org.org.query = recording  # the sandbox's SOQL entry point: what Salesforce would receive
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(base, cp.url, sf.url, tls.ca_cert)
    pipeline = settings.pipeline.model_copy(update={"lease_seconds": lease_seconds})
    runtime = build_runtime(settings.model_copy(update={"pipeline": pipeline}))
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime, "queries": queries}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # A short lease: a recovered label is looked up again 2 x lease later, within the run.
    yield from _world(tmp_path, lease_seconds=3.0)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One org for the SOQL tests: they only read (and record intents in their own store)."""
    yield from _world(tmp_path_factory.mktemp("soql"))


def test_a_run_with_carrier_faults_and_expired_sessions_leaves_no_secret_anywhere(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reliability_summary: list[Any],
    request: pytest.FixtureRequest,
) -> None:
    from chronoforce.cli.common import run_until
    from chronoforce.pipeline.labels import MAX_TRANSIENT_ATTEMPTS
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.chronopost import Faults

    carrier, org, runtime = world["carrier"], world["org"], world["runtime"]
    ids = runtime.detect()
    # An outage on the first orders: their retry budget is spent, the exception rows keep the
    # (redacted) SOAP request that carried the Chronopost password.
    carrier.set_faults(Faults(kind="http_500", operations=("shippingMultiParcelV5",)))
    failed = []
    for shipment_id in ids:
        if runtime.labels.process(shipment_id) == "retry":
            failed.append(shipment_id)
        if len(failed) == 2:
            break
    for _ in range(MAX_TRANSIENT_ATTEMPTS):
        for shipment_id in failed:
            with runtime.store.session() as session:
                session.get_one(Shipment, shipment_id).next_attempt_at = None
            runtime.labels.process(shipment_id)
    carrier.set_faults(Faults())
    for shipment_id in failed:  # the carrier is back: recovery, then a label
        with runtime.store.session() as session:
            session.get_one(Shipment, shipment_id).next_attempt_at = None
        runtime.labels.process(shipment_id)
    org.expire_sessions()  # the next call re-authenticates: a fresh token to leak or not
    # The run takes cluster turns: a runtime composed with the cluster's gates (the steps above
    # were driven by hand on this process's own slots, with no breaker to open).
    running = build_runtime(runtime.settings, cluster=True)
    try:
        run_until(running, workers=2, until_idle=True, max_seconds=60)
    finally:
        running.close()
    known = secrets_registry.values()
    kinds = set(known.values())
    assert {"Chronopost password", "Salesforce client secret", "Salesforce access token"} <= kinds
    with runtime.store.session() as session:
        rows = session.scalars(select(ExceptionRow)).all()
        payloads = [r.request_payload for r in rows if r.request_payload]
        outbox = session.scalar(select(func.count()).select_from(Outbox))
    assert payloads and outbox, "the run left exception payloads and outbox rows to scan"
    assert any("<password>" in p for p in payloads), "the SOAP request is kept, password masked"
    captured = capsys.readouterr()
    # The suite's log file (tests/conftest.py) got this run's lines, as production renders them.
    log_file = request.config._tmp_path_factory.getbasetemp() / "chronoforce-session.jsonl"  # type: ignore[attr-defined]
    logged = log_file.read_text("utf-8", "replace")
    assert '"event": "label created"' in logged and '"label retry"' in logged
    places = [
        *secrets_registry.find(logged, f"log file {log_file}"),
        *secrets_registry.scan_sqlite(tmp_path / "chronoforce.db"),
        *secrets_registry.scan_sandbox(org),
        *secrets_registry.scan_sandbox(carrier),
        *secrets_registry.check(captured.out + captured.err, "this test's output"),
    ]
    assert not places, "secrets leaked: " + "; ".join(str(p) for p in places)
    assert org.records("Chronopost_Integration_Error__c"), "error records were scanned too"
    from tests.reliability.conftest import SummaryRow

    with runtime.store.session() as session:
        states = list(session.scalars(select(Shipment.state)))
    reliability_summary.append(
        SummaryRow(
            scenario="security (secrets scan)",
            orders=len(states),
            faults=len(failed) * MAX_TRANSIENT_ATTEMPTS + 2,  # carrier 500s + 2 session expiries
            labels=states.count("labeled"),
            exceptions=states.count("exception"),
            notes={"secret values": len(known), "leaks": len(places)},
        )
    )


# --- SOQL: values are escaped or refused, never executed --------------------------------------


def _order_ids(org: Any) -> list[str]:
    return [o["Id"] for o in org.records("Order")]


def test_a_quoted_value_stays_one_literal_at_salesforce(shared_world: dict[str, Any]) -> None:
    runtime, queries = shared_world["runtime"], shared_world["queries"]
    assert len(shared_world["org"].records("Order")) == ORDERS
    soql = f"SELECT Id FROM Order WHERE ShippingCity = {quote(EVIL_ID)}"
    assert list(runtime.salesforce.query_iter(soql)) == [], "the injected OR matched nothing"
    assert queries[-1].endswith("""WHERE ShippingCity = 'x\\' OR Name != \\''""")
    values = in_list([EVIL_ID, "a\\", "b"])  # a trailing backslash must not eat the quote
    soql = f"SELECT Id FROM Order WHERE ShippingCity IN {values}"
    assert list(runtime.salesforce.query_iter(soql)) == []
    assert queries[-1].endswith("""IN ('x\\' OR Name != \\'', 'a\\\\', 'b')""")
    # Against an Id, Salesforce reads the whole value as one (malformed) id and refuses it.
    with pytest.raises(ChronoforceError) as refused:
        list(runtime.salesforce.query_iter(f"SELECT Id FROM Order WHERE Id = {quote(EVIL_ID)}"))
    assert f"invalid ID field: {EVIL_ID}" in str(refused.value)


def test_items_of_a_record_with_a_forged_id_are_refused_before_any_query(
    shared_world: dict[str, Any],
) -> None:
    from chronoforce.salesforce.mapping import fetch_items

    runtime, queries = shared_world["runtime"], shared_world["queries"]
    before = len(queries)
    with pytest.raises(SoqlInjectionError) as refused:
        fetch_items(runtime.salesforce.query_iter, runtime.mapping, [{"Id": EVIL_ID}])
    assert EVIL_ID in str(refused.value)
    assert len(queries) == before, "nothing reached Salesforce"


def test_linked_shipments_escape_the_order_ids(shared_world: dict[str, Any]) -> None:
    runtime, queries, org = shared_world["runtime"], shared_world["queries"], shared_world["org"]
    assert org.records("Shipment"), "the seed links Shipments to some orders"
    with pytest.raises(ChronoforceError) as refused:
        runtime._linked_shipments([EVIL_ID])
    assert queries[-1] == (
        """SELECT Id, Order__c FROM Shipment WHERE Order__c IN ('x\\' OR Name != \\'')"""
    )
    assert f"invalid ID field: {EVIL_ID}" in str(refused.value), "one literal, not a clause"


@pytest.mark.parametrize(
    "watermark",
    [EVIL_ID, "2026-03-01T00:00:00Z' OR Name != '", "2026-03-01) OR (Id != null"],
)
def test_a_forged_watermark_is_refused_before_any_query(
    shared_world: dict[str, Any], watermark: str
) -> None:
    from chronoforce.salesforce.changes import DeltaReader

    runtime, queries = shared_world["runtime"], shared_world["queries"]
    before = len(queries)
    with pytest.raises((ChronoforceError, ValueError)):
        list(DeltaReader(runtime.salesforce, runtime.mapping).read(watermark))
    assert len(queries) == before


def test_track_by_a_forged_order_id_finds_nothing_and_queries_nothing(
    shared_world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from chronoforce.cli import app

    runtime, queries = shared_world["runtime"], shared_world["queries"]
    runtime.detect()
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Shipment))
    before = len(queries)
    monkeypatch.setenv("CHRONOFORCE_DATABASE_URL", runtime.settings.database_url)
    result = CliRunner().invoke(app, ["track", "--order", EVIL_ID, "--offline"])
    assert result.exit_code != 0
    assert "no shipment for order" in result.output
    assert len(queries) == before


# --- API and console auth, against the app served over HTTP --------------------------------

API_CLIENT, API_SECRET = "reliability-org", "reliability client secret 5d2c"
API_KEY = "cfk_reliability-key-every-scope-8e1f04a9"
CONSOLE_USER, CONSOLE_PASSWORD = "ops", "console password 9a7b3c"
METRICS_TOKEN = "metrics-token-reliability-41c8d2"


@pytest.fixture(scope="module")
def web(shared_world: dict[str, Any]) -> Iterator[httpx.Client]:
    """The whole web app (API, console, webhooks) on the shared world's runtime."""
    from argon2 import PasswordHasher

    from chronoforce.web.api_config import sha256_hex

    secrets_registry.register("static API key", API_KEY)
    hasher = PasswordHasher()
    runtime = shared_world["runtime"]
    settings = runtime.settings.model_copy(
        update={
            "api": {
                "clients": [
                    {
                        "id": API_CLIENT,
                        "client_hash": hasher.hash(API_SECRET),
                        "key_sha256": sha256_hex(API_KEY),
                    }
                ]
            },
            "console": {
                "users": [{"username": CONSOLE_USER, "hash": hasher.hash(CONSOLE_PASSWORD)}],
                "login_attempts": 3,
            },
            "secrets": runtime.settings.secrets.model_copy(
                update={"metrics_token": SecretStr(METRICS_TOKEN)}
            ),
        }
    )
    app = create_app(settings, runtime, drain_inbox=False)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _token(web: httpx.Client, **form: str) -> httpx.Response:
    return web.post("/api/v1/oauth/token", data={"grant_type": "client_credentials", **form})


def test_an_expired_api_token_is_refused(web: httpx.Client, shared_world: dict[str, Any]) -> None:
    import datetime as dt

    from chronoforce.store.models import ApiToken

    answer = _token(web, client_id=API_CLIENT, client_secret=API_SECRET)
    assert answer.status_code == 200, answer.text
    bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    assert web.get("/api/v1/relay-points?postal_code=75008", headers=bearer).status_code == 200
    with shared_world["runtime"].store.session() as session:
        for row in session.scalars(select(ApiToken)):
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    refused = web.get("/api/v1/relay-points?postal_code=75008", headers=bearer)
    assert refused.status_code == 401


def test_an_unknown_client_and_a_wrong_secret_get_the_same_answer(web: httpx.Client) -> None:
    wrong = _token(web, client_id=API_CLIENT, client_secret=API_SECRET + "x")
    unknown = _token(web, client_id="nobody", client_secret=API_SECRET)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json(), "the answer does not tell which clients exist"


def test_refused_credentials_are_not_echoed_back(web: httpx.Client) -> None:
    forged = "cft_" + "forged-token-for-echo-test-0f3a9c"
    secrets_registry.register("forged bearer token", forged)  # and the session scan looks too
    for headers in ({"Authorization": f"Bearer {forged}"}, {"X-API-Key": forged}):
        answer = web.get("/api/v1/relay-points?postal_code=75008", headers=headers)
        assert answer.status_code == 401
        assert forged not in answer.text and forged not in str(answer.headers)
    in_query = web.get(f"/api/v1/relay-points?postal_code=75008&api_key={API_KEY}")
    assert in_query.status_code == 401, "keys are read from headers only"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/orders/{id}/rate", {"product_code": "01"}),
        ("GET", "/api/v1/relay-points?near_order={id}", None),
        (
            "POST",
            "/api/v1/orders/{id}/pickup",
            {"date": "2030-01-02", "ready_time": "10:00", "closing_time": "17:00"},
        ),
        ("POST", "/api/v1/orders/{id}/return-label", {}),
        ("POST", "/api/v1/cases/{id}/return-label", {}),
    ],
)
def test_api_order_ids_are_checked_before_any_soql(
    web: httpx.Client, shared_world: dict[str, Any], method: str, path: str, body: Any
) -> None:
    from urllib.parse import quote as url_quote

    queries = shared_world["queries"]
    before = len(queries)
    target = path.format(id=url_quote(EVIL_ID, safe=""))
    answer = web.request(method, target, json=body, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 422, answer.text  # refused by the id pattern, named
    assert "order" in answer.text or "case_id" in answer.text, answer.text
    assert queries[before:] == [], "nothing reached Salesforce"


def test_a_well_formed_api_order_id_reaches_salesforce_as_a_quoted_literal(
    web: httpx.Client, shared_world: dict[str, Any]
) -> None:
    """The control for the test above: the recorder does see the API's queries."""
    queries = shared_world["queries"]
    before = len(queries)
    unknown = "801000000000999AAA"
    answer = web.post(
        f"/api/v1/orders/{unknown}/rate",
        json={"product_code": "01"},
        headers={"X-API-Key": API_KEY},
    )
    assert answer.status_code == 404, answer.text
    assert any(f"'{unknown}'" in q for q in queries[before:]), queries[before:]


def _login(web: httpx.Client, password: str, username: str = CONSOLE_USER) -> httpx.Response:
    page = web.get("/login")
    csrf = page.cookies.get("cf_login_csrf") or web.cookies.get("cf_login_csrf")
    return web.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf or "", "next": "/"},
    )


def test_console_login_needs_its_csrf_token_and_throttles_guessing(web: httpx.Client) -> None:
    web.cookies.clear()
    no_csrf = web.post("/login", data={"username": CONSOLE_USER, "password": CONSOLE_PASSWORD})
    assert no_csrf.status_code == 403
    first = _login(web, CONSOLE_PASSWORD)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert web.get("/").status_code == 200
    web.cookies.clear()
    for _ in range(3):
        assert _login(web, "guess", username="intruder").status_code == 303
    blocked = _login(web, "guess again", username="intruder")
    assert blocked.status_code == 429
    web.cookies.clear()


def test_a_forged_or_tampered_console_session_is_no_session(web: httpx.Client) -> None:
    web.cookies.clear()
    assert _login(web, CONSOLE_PASSWORD).status_code == 303
    cookie = web.cookies.get("cf_session") or ""
    assert web.get("/").status_code == 200
    body, _, mac = cookie.rpartition(".")
    for forged in (f"{body}.{'0' * len(mac)}", body, "e30." + mac, ""):
        web.cookies.clear()
        web.cookies.set("cf_session", forged)
        answer = web.get("/")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    web.cookies.clear()


def test_console_actions_need_the_session_csrf_token(web: httpx.Client) -> None:
    web.cookies.clear()
    assert _login(web, CONSOLE_PASSWORD).status_code == 303
    for action in ("retry", "resolve"):
        answer = web.post(f"/exceptions/1/{action}", data={"csrf": "wrong", "note": "x"})
        assert answer.status_code == 403, answer.text
    web.cookies.clear()


def test_metrics_need_the_metrics_token(web: httpx.Client) -> None:
    web.cookies.clear()
    assert web.get("/metrics").status_code == 401
    wrong = web.get("/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN[:-1]})
    assert wrong.status_code == 401
    right = web.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert right.status_code == 200 and METRICS_TOKEN not in right.text


# --- redaction: whatever the shape, a known secret never comes out ---------------------------

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

secret_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=4, max_size=40
).filter(lambda v: v.strip() == v and len(v.strip()) >= 4)
surroundings = st.sampled_from(
    [
        "{}",
        "password={}&user=x",
        "<password>{}</password>",
        '<ns1:password xmlns:ns1="urn:x">{}</ns1:password>',
        '{{"client_secret": "{}", "n": 1}}',
        "Authorization: Bearer {}",
        "login failed for {} at 10:00",
        "{}{}",
        "prefix{}suffix",
    ]
)


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(secret=secret_values, other=secret_values, shape=surroundings, noise=st.text(max_size=30))
# Found while writing this test: masking `SECRETXYZ` in `kSECRETXYZ` made the secret `k***`,
# and a secret holding a shorter one was masked around it (`ab***gh` of `abcdefgh`, below).
@example(secret="SECRETXYZ", other="k***", shape="k{}", noise="")
def test_a_known_secret_never_survives_redaction(
    secret: str, other: str, shape: str, noise: str
) -> None:
    from chronoforce import redaction

    saved = redaction._known_values
    try:
        redaction.register_secrets([secret, other])
        text = noise + shape.replace("{}", secret, 1).replace("{}", other) + noise
        out = redaction.redact_text(text)
        assert secret not in out and other not in out, (text, out)
        assert redaction.redact({"nested": [text.encode()]})["nested"][0] == out
    finally:
        redaction._known_values = saved


def test_a_secret_holding_a_shorter_one_is_masked_whole() -> None:
    from chronoforce import redaction

    saved = redaction._known_values
    try:
        redaction.register_secrets(["cdef", "abcdefgh"])
        assert redaction.redact_text("xxabcdefghyy") == "xx***yy"
    finally:
        redaction._known_values = saved


def test_a_ship_request_event_with_a_forged_record_id_is_dropped_not_queried(
    tmp_path: Path,
) -> None:
    """Anyone who may publish Chronopost_Ship_Request__e chooses its Record_Id__c: a forged one
    must neither reach SOQL nor block the events after it (replay id stuck forever)."""
    from chronoforce.cli.demo import demo_settings
    from chronoforce.config import SalesforceConfig
    from chronoforce.pipeline.runtime import build_runtime
    from chronoforce.sandbox.chronopost import ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.salesforce.pubsub import PubSubServer
    from chronoforce.sandbox.tls import ensure_tls
    from chronoforce.store.models import Watermark

    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:", cancel_window=dt.timedelta(0))
    org = SalesforceSandbox(db_path=":memory:")
    order_id = org.seed(orders=3, seed=7)["Order"][1]
    queries: list[str] = []
    real_query = org.org.query

    def recording(soql: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(soql)
        return real_query(soql, *args, **kwargs)

    org.org.query = recording
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls).start()
    grpc = PubSubServer(org, tls=tls).start()
    base = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    config = base.salesforce.model_dump()
    settings = base.model_copy(
        update={"salesforce": SalesforceConfig(**{**config, "pubsub_endpoint": grpc.target})}
    )
    runtime = build_runtime(settings)
    try:
        with runtime.store.session() as session:  # only events can find orders here
            session.add(Watermark(source="delta:Order", value="2999-01-01T00:00:00.000Z"))
        assert runtime.detect() == []
        events = runtime.salesforce.connection.sf.Chronopost_Ship_Request__e
        events.create({"Record_Id__c": EVIL_ID, "Reason__c": "forged"})
        events.create({"Record_Id__c": order_id, "Reason__c": "real"})
        ids = runtime.detect()
        assert len(ids) == 1, "the real request after the forged one is taken"
        assert not any("OR Name" in q for q in queries), queries
        assert runtime.detect() == [], "the replay id moved past both events"
    finally:
        runtime.close()
        grpc.stop()
        sf.stop()
        cp.stop()


def test_salesforce_text_shown_in_the_console_is_escaped(
    web: httpx.Client, shared_world: dict[str, Any]
) -> None:
    """Stored XSS: a ship-to city typed in Salesforce reaches the console's exception pages."""
    script = "<script>alert('cf')</script>"
    with shared_world["runtime"].store.session() as session:
        row = ExceptionRow(
            key="xss:label.create:ADDRESS_INVALID",
            sf_object="Order",
            sf_id="801000000000777AAA",
            operation="label.create",
            kind="address",
            code="ADDRESS_INVALID",
            field="city",
            message=f"recipient: city {script} is unknown",
            request_payload=f"<city>{script}</city>",
        )
        session.add(row)
        session.flush()
        row_id = row.id
    web.cookies.clear()
    assert _login(web, CONSOLE_PASSWORD).status_code == 303
    for page in (f"/exceptions/{row_id}", "/exceptions"):
        html = web.get(page).text
        assert "801000000000777AAA" in html, page
        assert script not in html, f"{page} renders Salesforce text as HTML"
    web.cookies.clear()


class _Boom(Exception):
    pass


def _structures(secret: str) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.just(secret),
        st.text(max_size=10).map(lambda t: t + secret),
        st.just(secret.encode()),
        st.just(bytearray(secret.encode())),
        st.just(_Boom(f"login refused for {secret}")),
        st.integers(),
        st.none(),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.one_of(st.text(max_size=8), st.just(secret)), inner, max_size=3),
        ),
        max_leaves=8,
    )


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(data=st.data())
def test_a_known_secret_never_survives_redaction_of_any_structure(data: st.DataObject) -> None:
    """What a log call may bind: nested dicts (secret keys too), bytes, exceptions, numbers."""
    from chronoforce import redaction

    secret = data.draw(secret_values, label="secret")
    value = data.draw(_structures(secret), label="value")
    saved = redaction._known_values
    try:
        redaction.register_secrets([secret, "255562"])
        out = redaction.redact(value)
        rendered = json.dumps(out, default=repr, ensure_ascii=False)  # as JSONRenderer does
        assert secret not in rendered, rendered
        assert redaction.redact({"n": 255562}) == {"n": redaction.MASK}
    finally:
        redaction._known_values = saved
