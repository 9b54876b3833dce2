"""The console over real HTTP: login, sessions, CSRF, throttling, redirects, actions, request ids."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr, ValidationError
from pypdf import PdfReader
from typer.testing import CliRunner

from chronoforce.config import ConfigError, Secrets, Settings
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Parcel, Shipment
from chronoforce.web.app import create_app
from chronoforce.web.console.auth import COOKIE
from chronoforce.web.console.settings import console_config

PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters for tests (a verification costs what its hash says); the command's
# hashes use argon2-cffi's defaults.
HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
SESSION_KEY = "console-test-key-5d1e0c7b9a"
PAGES = ["/", "/shipments", "/shipments?q=42", "/shipments/1", "/exceptions", "/exceptions/1"]


def console_settings(url: str, **console: Any) -> Settings:
    return Settings(
        database_url=url,
        console={"users": [{"username": "ops", "hash": HASH}], **console},
        secrets=Secrets(console_session_key=SecretStr(SESSION_KEY)),
    )


@pytest.fixture()
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    yield s
    s.dispose()


@pytest.fixture()
def serve(store: Store) -> Iterator[Callable[..., httpx.Client]]:
    servers: list[BackgroundServer] = []
    clients: list[httpx.Client] = []

    def start(tls: Any = None, **console: Any) -> httpx.Client:
        app = create_app(
            console_settings(str(store.engine.url), **console),
            SimpleNamespace(store=store),
            drain_inbox=False,
        )
        server = BackgroundServer(app, tls=tls).start()
        servers.append(server)
        verify = ssl.create_default_context(cafile=str(tls.ca_cert)) if tls else True
        client = httpx.Client(base_url=server.url, timeout=30, verify=verify)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def login(client: httpx.Client, username: str = "ops", password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "the login form carries a CSRF token"
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": token.group(1), "next": "/"},
    )


def csrf_of(client: httpx.Client, path: str = "/") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


@pytest.fixture()
def broken_order(store: Store) -> int:
    """A shipment stopped by an address exception, as the label pipeline leaves it."""
    with store.session() as session:
        shipment = Shipment(
            sf_object="Order",
            sf_id="8018d0000000042AAA",
            order_number="00000042",
            state="exception",
            source={"record": {"Id": "8018d0000000042AAA", "ShippingCountry": "Atlantis"}},
        )
        session.add(shipment)
        session.flush()
        row = ExceptionRow(
            key="8018d0000000042AAA:label.create:COUNTRY_UNKNOWN",
            shipment_id=shipment.id,
            sf_object="Order",
            sf_id=shipment.sf_id,
            operation="label.create",
            kind="address",
            code="COUNTRY_UNKNOWN",
            field="country",
            message="recipient: unknown country 'Atlantis'",
            request_payload="<password>***</password>",
        )
        session.add(row)
        session.flush()
        return row.id


def test_an_anonymous_visit_to_any_page_is_redirected_to_login(
    serve: Callable[..., httpx.Client], broken_order: int
) -> None:
    client = serve()
    for path in [*PAGES, "/parcels/1/label"]:
        response = client.get(path)
        assert response.status_code == 303, path
        location = response.headers["location"]
        assert location.startswith("/login?next=")
        assert httpx.URL(location).params["next"] == path
    # Actions too, even with a plausible form: no session, no action.
    refused = client.post(f"/exceptions/{broken_order}/retry", data={"csrf": "x"})
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert client.get("/health").status_code == 200  # the one page open to anyone
    assert client.get("/login").status_code == 200


def test_login_sets_a_signed_httponly_lax_cookie_and_opens_every_page(
    serve: Callable[..., httpx.Client], broken_order: int
) -> None:
    client = serve()
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https sets it (next test)
    assert PASSWORD not in cookie and HASH not in cookie
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert "00000042" in client.get("/shipments?q=42").text
    assert "unknown country" in client.get("/exceptions?kind=address").text
    assert "unknown country" not in client.get("/exceptions?kind=timeout").text


def test_the_session_cookie_is_secure_when_served_over_https(
    serve: Callable[..., httpx.Client], tmp_path: Path
) -> None:
    client = serve(tls=ensure_tls(tmp_path / "tls"))
    response = login(client)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_a_wrong_password_or_unknown_user_gets_no_session(
    serve: Callable[..., httpx.Client],
) -> None:
    client = serve()
    for username, password in (("ops", "wrong password here"), ("nobody", PASSWORD)):
        response = login(client, username, password)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?")
        assert COOKIE not in response.headers.get("set-cookie", "")
        assert "Wrong username or password" in client.get(response.headers["location"]).text
    assert client.get("/").status_code == 303


def test_a_tampered_or_foreign_cookie_is_no_session(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    login(client)
    value = client.cookies[COOKIE]
    body, mac = value.split(".")
    forged = json.dumps({"u": "admin", "c": "x", "e": 4102444800}).encode()
    import base64

    forged_body = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    for bad in (f"{forged_body}.{mac}", f"{body}.{mac[:-2]}AA", "garbage"):
        other = httpx.Client(base_url=str(client.base_url), cookies={COOKIE: bad})
        assert other.get("/").status_code == 303
        other.close()


def test_login_is_throttled_after_repeated_failures(serve: Callable[..., httpx.Client]) -> None:
    client = serve(login_attempts=3)
    for _ in range(3):
        assert login(client, "ops", "not the password").status_code == 303
    blocked = login(client, "ops", PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text
    assert COOKIE not in blocked.headers.get("set-cookie", "")


def test_login_without_its_csrf_token_is_refused(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    response = client.post("/login", data={"username": "ops", "password": PASSWORD, "csrf": "x"})
    assert response.status_code == 403
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_login_never_redirects_off_site(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    page = client.get("/login", params={"next": "//evil.example/steal"})
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        "/login",
        data={"username": "ops", "password": PASSWORD, "csrf": token.group(1),
              "next": "https://evil.example/"},
    )  # fmt: skip
    assert response.headers["location"] == "/"
    from chronoforce.web.console.routes import _safe_next

    for target in ("//evil.example", "/\\evil.example", "https://evil.example", "evil"):
        assert _safe_next(target) == "/", target
    assert _safe_next("/exceptions?kind=address") == "/exceptions?kind=address"


def test_an_action_without_the_session_csrf_token_is_refused_and_changes_nothing(
    serve: Callable[..., httpx.Client], store: Store, broken_order: int
) -> None:
    client = serve()
    login(client)
    for data in ({}, {"csrf": "forged-token"}):
        response = client.post(f"/exceptions/{broken_order}/retry", data=data)
        assert response.status_code == 403
    with store.session() as session:
        row = session.get_one(ExceptionRow, broken_order)
        assert row.state == "open"
        assert session.get_one(Shipment, row.shipment_id).state == "exception"
    # Another session's token does not work either: tokens are bound to their session.
    other = serve()
    login(other)
    stolen = csrf_of(other)
    assert client.post(f"/exceptions/{broken_order}/retry", data={"csrf": stolen}).status_code == (
        403
    )


def test_retry_and_resolve_with_a_note(
    serve: Callable[..., httpx.Client], store: Store, broken_order: int
) -> None:
    client = serve()
    login(client)
    token = csrf_of(client)
    response = client.post(f"/exceptions/{broken_order}/retry", data={"csrf": token})
    assert response.status_code == 303
    assert "back in line" in client.get(response.headers["location"]).text
    with store.session() as session:
        row = session.get_one(ExceptionRow, broken_order)
        assert row.state == "retrying"
        assert session.get_one(Shipment, row.shipment_id).state == "pending"
    empty = client.post(f"/exceptions/{broken_order}/resolve", data={"csrf": token, "note": " "})
    assert "a note is required" in client.get(empty.headers["location"]).text
    client.post(
        f"/exceptions/{broken_order}/resolve", data={"csrf": token, "note": "customer called"}
    )
    with store.session() as session:
        row = session.get_one(ExceptionRow, broken_order)
        assert row.state == "resolved" and row.resolution_note == "customer called — ops"


def test_an_address_fix_that_still_fails_the_check_writes_nothing(
    serve: Callable[..., httpx.Client], store: Store, broken_order: int
) -> None:
    client = serve()
    login(client)
    page = client.get(f"/exceptions/{broken_order}")
    assert 'name="f:ShippingCountry"' in page.text and "Atlantis" in page.text
    response = client.post(
        f"/exceptions/{broken_order}/fix-address",
        data={"csrf": csrf_of(client), "f:ShippingCountry": "Narnia"},
    )
    assert response.status_code == 422
    assert "still refused" in response.text and 'value="Narnia"' in response.text
    with store.session() as session:
        assert session.query(Outbox).count() == 0
        row = session.get_one(ExceptionRow, broken_order)
        assert row.state == "open"
        shipment = session.get_one(Shipment, row.shipment_id)
        assert shipment.source["record"]["ShippingCountry"] == "Atlantis"


def test_logout_ends_the_session(serve: Callable[..., httpx.Client]) -> None:
    client = serve()
    login(client)
    assert client.post("/logout", data={"csrf": csrf_of(client)}).status_code == 303
    assert client.get("/").status_code == 303


def test_label_download_needs_a_stored_label(
    serve: Callable[..., httpx.Client], store: Store
) -> None:
    with store.session() as session:
        shipment = Shipment(sf_object="Order", sf_id="8018d0000000043AAA", state="labeled")
        session.add(shipment)
        session.flush()
        parcel = Parcel(
            shipment_id=shipment.id, skybill_number="XR000000001FR", weight_kg=1,
            label_bytes=b"%PDF-1.4 test",
        )  # fmt: skip
        session.add(parcel)
        session.flush()
        parcel_id = parcel.id
    client = serve()
    login(client)
    label = client.get(f"/parcels/{parcel_id}/label")
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    assert 'filename="chronopost-XR000000001FR.pdf"' in label.headers["content-disposition"]
    assert client.get("/parcels/999/label").status_code == 404


def test_every_response_carries_a_request_id_bound_for_the_request_logs(store: Store) -> None:
    import structlog

    app = create_app(
        console_settings(str(store.engine.url)), SimpleNamespace(store=store), drain_inbox=False
    )

    @app.get("/_probe")
    def probe() -> dict[str, Any]:  # a sync endpoint runs in the thread pool, like ours
        return dict(structlog.contextvars.get_contextvars())

    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        fresh = client.get("/health").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", fresh)
        assert client.get("/health").headers["x-request-id"] != fresh
        kept = client.get("/health", headers={"X-Request-ID": "lb-7f3a9c21-0001"})
        assert kept.headers["x-request-id"] == "lb-7f3a9c21-0001"
        injected = client.get("/health", headers={"X-Request-ID": "bad id; forged=1 <x>"})
        assert re.fullmatch(r"[0-9a-f]{32}", injected.headers["x-request-id"])
        # What every log line of the request merges in (logs.py: merge_contextvars).
        bound = client.get("/_probe", headers={"X-Request-ID": "trace-probe-000042"})
        assert bound.json()["request_id"] == "trace-probe-000042"
        assert bound.headers["x-request-id"] == "trace-probe-000042"
        other = client.get("/_probe")
        assert other.json()["request_id"] == other.headers["x-request-id"] != "trace-probe-000042"
    assert "request_id" not in structlog.contextvars.get_contextvars()  # nothing leaks out


def test_console_configuration_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"console\.users\.0\.hash"):
        console_config({"users": [{"username": "ops", "hash": "plain-text"}]})
    with pytest.raises(ConfigError, match="listed twice: ops"):
        console_config({"users": [{"username": "ops", "hash": HASH}] * 2})
    with pytest.raises(ConfigError, match=r"console\.oidc"):
        console_config({"oidc": {"issuer": "https://id.example"}})


def test_hash_password_prints_an_argon2_hash_that_logs_in(tmp_path: Any) -> None:
    from chronoforce.cli import app
    from chronoforce.web.console.auth import check_password

    result = CliRunner().invoke(
        app, ["console", "hash-password", "--stdin"], input="s3cret pass 99\n"
    )
    assert result.exit_code == 0, result.output
    made = result.output.strip()
    assert made.startswith("$argon2id$") and "s3cret" not in made
    config = console_config({"users": [{"username": "ana", "hash": made}]})
    assert check_password(config, "ana", "s3cret pass 99")
    short = CliRunner().invoke(app, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == 2


def test_timestamps_in_pages_are_utc(serve: Callable[..., httpx.Client], store: Store) -> None:
    """The overview counts what was created today (UTC) only."""
    with store.session() as session:
        session.add(Shipment(sf_object="Order", sf_id="8018d0000000044AAA", status="pending"))
        session.add(
            Shipment(
                sf_object="Order", sf_id="8018d0000000045AAA", status="delivered",
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
            )
        )  # fmt: skip
    client = serve()
    login(client)
    page = client.get("/").text
    assert re.search(r'<div class="n">1</div><div class="l">shipments today', page)


def test_a_bad_console_section_stops_the_app_at_start(sqlite_url: str) -> None:
    # Typed at load (issue 16): the settings themselves refuse it, before any app is made.
    with pytest.raises(ValidationError, match=r"console\.users\.0\.hash"):
        Settings(database_url=sqlite_url, console={"users": [{"username": "ops"}]})


@pytest.fixture()
def lyon_code_for_paris(store: Store) -> int:
    """Issue 20's 69001 PARIS: a shipment stopped by the postal code check."""
    record = {
        "Id": "8018d0000000069AAA",
        "OrderNumber": "00000069",
        "ShippingStreet": "12 rue de la Paix",
        "ShippingPostalCode": "69001",
        "ShippingCity": "Paris",
        "ShippingCountry": "France",
        "ShipToContact": {"Name": "Camille Martin", "Phone": "0612345678"},
        "Account": {"Name": "Camille Martin"},
        "Chronopost_Weight_Kg__c": 1.2,
    }
    with store.session() as session:
        shipment = Shipment(
            sf_object="Order", sf_id=record["Id"], order_number="00000069", state="exception",
            source={"record": record, "items": []},
        )  # fmt: skip
        session.add(shipment)
        session.flush()
        row = ExceptionRow(
            key=f"{record['Id']}:label.create:POSTAL_CODE_CITY_MISMATCH",
            shipment_id=shipment.id, sf_object="Order", sf_id=shipment.sf_id,
            operation="label.create", kind="address", code="POSTAL_CODE_CITY_MISMATCH",
            field="postal_code",
            message="recipient: 69001 is LYON; PARIS is 75001–75020, 75116 — did you mean 75001?",
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_the_fix_form_offers_the_candidates_and_one_click_writes_back_and_retries(
    serve: Callable[..., httpx.Client], store: Store, lyon_code_for_paris: int
) -> None:
    client = serve()
    login(client)
    page = client.get(f"/exceptions/{lyon_code_for_paris}").text
    assert "Likely fixes" in page
    assert "Use 75001 PARIS" in page and "Use 69001 LYON" in page  # the code, or the city
    choice = re.search(r"<form[^>]*fix-address[^>]*>(?:(?!</form>).)*Use 75001 PARIS", page, re.S)
    assert choice, "each candidate is a form of its own"
    fields = dict(re.findall(r'name="(f:[^"]+)" value="([^"]*)"', choice.group(0)))
    assert fields["f:ShippingPostalCode"] == "75001" and fields["f:ShippingCity"] == "PARIS"
    response = client.post(
        f"/exceptions/{lyon_code_for_paris}/fix-address", data={"csrf": csrf_of(client), **fields}
    )
    assert response.status_code == 303
    with store.session() as session:
        (write,) = session.query(Outbox).all()
        assert write.payload == {"ShippingPostalCode": "75001", "ShippingCity": "PARIS"}
        row = session.get_one(ExceptionRow, lyon_code_for_paris)
        assert row.state == "retrying"
        shipment = session.get_one(Shipment, row.shipment_id)
        assert shipment.state == "pending"
        assert shipment.source["record"]["ShippingPostalCode"] == "75001"


def test_the_shipment_page_shows_the_proof_of_delivery_status(
    serve: Callable[..., httpx.Client], store: Store
) -> None:
    """Issue 21: the POD status, why, and when it is asked next (pipeline/pod.py's columns)."""
    with store.session() as session:
        row = Shipment(
            sf_object="Order", sf_id="8018d0000000046AAA", order_number="00000046",
            status="delivered", pod_status="pending", pod_attempts=1,
            pod_reason="XP123: not ready yet: available one working day after delivery",
            pod_next_at=dt.datetime(2026, 12, 9, 5, 0, tzinfo=dt.UTC),
        )  # fmt: skip
        quiet = Shipment(sf_object="Order", sf_id="8018d0000000047AAA", status="in_transit")
        session.add_all([row, quiet])
        session.flush()
        ids = row.id, quiet.id
    client = serve()
    login(client)
    page = client.get(f"/shipments/{ids[0]}").text
    shown = re.search(r'<dd class="pod-status">(.*?)</dd>', page, re.S)
    assert shown, "a delivered shipment shows its proof of delivery"
    assert "Pending" in shown.group(1) and "not ready yet" in shown.group(1)
    assert "next try 2026-12-09 05:00 UTC" in shown.group(1)
    assert "pod-status" not in client.get(f"/shipments/{ids[1]}").text  # not delivered: none


# --- end-of-day slips (issue 21) ---------------------------------------------------------
def test_the_slips_page_lists_the_days_slip_and_its_pdf_downloads(
    serve: Callable[..., httpx.Client],
    store: Store,
) -> None:
    made = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
    with store.session() as session:
        for n, live in ((1, True), (2, True), (3, False)):
            shipment = Shipment(sf_object="Order", sf_id=f"8018d00000000{n}0AAA",
                                order_number=f"0000010{n}", state="labeled", product_code="01")  # fmt: skip
            session.add(shipment)
            session.flush()
            session.add(Parcel(shipment_id=shipment.id, skybill_number=f"XR00000000{n}FR",
                               weight_kg=2, live=live, created_at=made))  # fmt: skip
    client = serve()
    login(client)
    page = client.get("/manifests", params={"date": "2026-12-03"})
    assert page.status_code == 200
    assert "Slips" in page.text and "19869502" in page.text
    link = "/manifests/1.pdf"
    assert link in page.text
    pdf = client.get(link)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "XR000000001FR" in text and "XR000000002FR" in text
    assert "XR000000003FR" not in text  # voided
    assert client.get("/manifests", params={"date": "2026-13-01"}).status_code == 400
    assert client.get("/manifests/99.pdf").status_code == 404
    huge = "358389784118492259004973056"  # past any row id: refused, never a 500 from SQLite
    for url in (f"/manifests/{huge}.pdf", f"/shipments/{huge}", f"/exceptions/{huge}",
                f"/parcels/{huge}/label"):  # fmt: skip
        assert client.get(url).status_code == 422, url
    empty = client.get("/manifests", params={"date": "2026-12-04"})
    assert "no slip" in empty.text
