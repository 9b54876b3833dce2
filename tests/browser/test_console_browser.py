"""The console in Debian's headless Chromium, against a store filled by a real label run.

Both sandboxes run on loopback; the console is served by uvicorn on a free port with the same
runtime. Screenshots of every page at 1280 px and 390 px go to tests/artifacts/console/.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr
from sqlalchemy import select, update

from chronoforce.cli.demo import demo_settings
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Event, ExceptionRow, Parcel, Shipment
from chronoforce.web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
PASSWORD = "browser test password 1"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
FIXED_ADDRESS = {
    "ShippingStreet": "12 rue de la Paix",
    "ShippingPostalCode": "75002",
    "ShippingCity": "Paris",
    "ShippingCountry": "France",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console")
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=8, seed=7)  # seed 7: one order with an unknown country
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    base = demo_settings(tmp, cp.url, sf.url, tls.ca_cert)
    settings = base.model_copy(
        update={
            "console": {
                "users": [
                    {
                        "username": "ops",
                        "hash": PasswordHasher(time_cost=1, memory_cost=1024).hash(PASSWORD),
                    }
                ]
            },
            "secrets": base.secrets.model_copy(
                update={"console_session_key": SecretStr("browser-test-session-key")}
            ),
        }
    )
    runtime = build_runtime(settings)
    for shipment_id in runtime.detect():  # what a worker does, one order after the other
        runtime.labels.process(shipment_id)
    runtime.flush()
    _track(runtime, carrier)
    web = BackgroundServer(create_app(settings, runtime, drain_inbox=False)).start()
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime, "url": web.url}
    finally:
        web.stop()
        runtime.close()
        sf.stop()
        cp.stop()


def _track(runtime: Any, carrier: ChronopostSandbox) -> None:
    """Let the carrier move the parcels on for two days, then poll them once."""
    carrier.advance_clock(dt.timedelta(days=2))
    with runtime.store.session() as session:
        session.execute(
            update(Shipment)
            .where(Shipment.state == "labeled")
            .values(next_poll_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
    runtime.poll_once()
    runtime.flush()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def shoot(page: Any, name: str) -> None:
    """Save the page at both widths and check the phone view does not scroll sideways."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} overflows {overflow} px at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/")
    page.fill("#username", "ops")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_an_anonymous_visit_is_redirected_to_login(world: dict[str, Any], page: Any) -> None:
    url = world["url"]
    page.goto(f"{url}/exceptions?kind=address")
    landed = urlsplit(page.url)
    assert landed.path == "/login"
    assert parse_qs(landed.query)["next"] == ["/exceptions?kind=address"]
    assert page.locator("#password").is_visible()
    shoot(page, "login")
    page.fill("#username", "ops")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "Wrong username or password" in page.inner_text("[role=alert]")


def test_find_an_order_open_its_timeline_and_download_its_label(
    world: dict[str, Any], page: Any
) -> None:
    from pypdf import PdfReader

    url, runtime = world["url"], world["runtime"]
    with runtime.store.session() as session:
        tracked = session.scalars(
            select(Shipment)
            .join(Parcel, Parcel.shipment_id == Shipment.id)
            .join(Event, Event.skybill_number == Parcel.skybill_number)
            .where(Shipment.state == "labeled")
        ).first()
        assert tracked is not None, "the carrier moved at least one parcel"
        skybill = session.scalars(
            select(Parcel.skybill_number).where(Parcel.shipment_id == tracked.id, Parcel.live)
        ).first()
        events = session.scalars(
            select(Event).where(Event.skybill_number == skybill).order_by(Event.event_time)
        ).all()
    log_in(page, url)
    assert "labels created today" in page.inner_text("main")
    shoot(page, "overview")

    page.click("text=Shipments")
    page.fill("#q", tracked.order_number)
    page.click("text=Search")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    shoot(page, "shipments")
    page.click(f"a:text-is('{tracked.order_number}')")
    page.wait_for_url(f"{url}/shipments/{tracked.id}")

    timeline = page.locator(".timeline li")
    assert timeline.count() >= len(events) >= 1
    assert events[-1].code in timeline.last.inner_text()
    body = page.inner_text("main")
    assert tracked.routing_reason in body  # why this product
    assert "Order update" not in body and "sent" in body  # every Salesforce write, with state
    link = page.locator(f"a[href$='/lightning/r/Order/{tracked.sf_id}/view']")
    assert link.count() == 1
    customer = re.search(r"Customer\s+(\S+)", page.inner_text("dl.kv"))
    assert customer, "the shipment page names the customer"
    shoot(page, "shipment")

    with page.expect_download() as info:
        page.locator("a:has-text('Download label')").first.click()
    download = info.value
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF") and download.suggested_filename.endswith(".pdf")
    assert len(PdfReader(io.BytesIO(data)).pages) >= 1

    # Search by skybill number and by customer name find the same order.
    for term in (skybill, customer.group(1)):
        page.goto(f"{url}/shipments?q={term}")
        assert tracked.order_number in page.inner_text("table"), term
    assert customer.group(1) in page.inner_text("table")  # the list names the customer


def test_fix_an_address_retry_and_the_order_gets_its_label(
    world: dict[str, Any], page: Any
) -> None:
    url, runtime, org, carrier = world["url"], world["runtime"], world["org"], world["carrier"]
    with runtime.store.session() as session:
        problem = session.scalars(
            select(ExceptionRow).where(ExceptionRow.kind == "address", ExceptionRow.state == "open")
        ).first()
        assert problem is not None, "seed 7 has an order with an unknown country"
        order_id, exception_id = problem.sf_id, problem.id
    log_in(page, url)
    page.click("text=Exceptions")
    page.click("text=address")
    assert page.url.endswith("kind=address&status=open")
    shoot(page, "exceptions")
    page.click(f"a:text-is('#{exception_id}')")
    assert "unknown country" in page.inner_text("main")
    assert "Request (redacted)" in page.inner_text("main")
    shoot(page, "exception")

    for field, value in FIXED_ADDRESS.items():
        page.fill(f"input[name='f:{field}']", value)
    page.click("text=Save to Salesforce and retry")
    assert "written back to Salesforce" in page.inner_text("[role=status]")
    live_before = carrier.live_labels()

    # What the worker does next: label the shipment put back in line, then flush the outbox.
    with runtime.store.session() as session:
        retried = session.get_one(ExceptionRow, exception_id).shipment_id
        assert session.get_one(Shipment, retried).state == "pending"
    assert runtime.labels.process(retried) == "labeled"
    report = runtime.flush()
    assert report.failed == 0, report.errors

    record = {o["Id"]: o for o in org.records("Order")}[order_id]
    for field, value in FIXED_ADDRESS.items():
        assert record[field] == value, field  # the source is corrected too
    assert record["Chronopost_Label_Status__c"] == "Created"
    assert record["Chronopost_Tracking_Number__c"]
    with runtime.store.session() as session:
        row = session.get_one(ExceptionRow, exception_id)
        shipment = session.get_one(Shipment, row.shipment_id)
        assert shipment.state == "labeled" and row.state == "resolved"
        shipment_id = shipment.id
    assert carrier.live_labels() == live_before + 1
    # Our own write changed the record: reading it again is no "change", no second label.
    assert shipment_id not in runtime.detect()
    assert carrier.live_labels() == live_before + 1

    page.goto(f"{url}/shipments/{shipment_id}")
    assert "labeled" in page.inner_text("h1")
    assert page.locator("a:has-text('Download label')").count() >= 1
    shoot(page, "shipment-fixed")


def test_choose_a_candidate_postal_code_and_the_order_gets_its_label(
    world: dict[str, Any], page: Any
) -> None:
    """Issue 20: 69001 PARIS stops at the address check; the console offers PARIS's codes and
    one click writes the chosen one to Salesforce and retries."""
    url, runtime, org = world["url"], world["runtime"], world["org"]
    model = next(o for o in org.records("Order") if o["ShippingCountryCode"] == "FR")
    copied = ("AccountId", "EffectiveDate", "ShipToContactId", "BillToContactId", "ShippingStreet",
              "Chronopost_Weight_Kg__c")  # fmt: skip
    order_id = org.org.create(
        "Order",
        {**{k: model[k] for k in copied}, "Status": "Draft", "ShippingPostalCode": "69001",
         "ShippingCity": "Paris", "ShippingCountry": "France", "Chronopost_Ship__c": True,
         "Chronopost_Label_Status__c": "Requested"},
    )  # fmt: skip
    (shipment_id,) = [i for i in runtime.detect() if i]
    assert runtime.labels.process(shipment_id) != "labeled"
    with runtime.store.session() as session:
        problem = session.scalars(
            select(ExceptionRow).where(ExceptionRow.shipment_id == shipment_id)
        ).one()
        assert (problem.kind, problem.field) == ("address", "postal_code")
        exception_id = problem.id
    log_in(page, url)
    page.goto(f"{url}/exceptions/{exception_id}")
    assert "69001 is LYON" in page.inner_text("main")
    choices = page.locator("#address-choices button")
    assert choices.count() >= 2
    shoot(page, "exception-candidates")
    page.click("#address-choices button[data-postal-code='75001']")
    assert "written back to Salesforce" in page.inner_text("[role=status]")
    assert runtime.labels.process(shipment_id) == "labeled"
    assert runtime.flush().failed == 0
    record = {o["Id"]: o for o in org.records("Order")}[order_id]
    assert (record["ShippingPostalCode"], record["ShippingCity"]) == ("75001", "PARIS")
    assert record["Chronopost_Label_Status__c"] == "Created"
