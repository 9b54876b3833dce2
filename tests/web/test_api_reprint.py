"""Re-printing a label from the API and the console (issue 21 item 5), over HTTP through both
sandboxes: the stored label again, same skybill number, no new parcel at Chronopost."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pypdf
import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr

from chronoforce.pipeline.breaker import CircuitBreaker
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.store.models import Shipment
from chronoforce.web.app import create_app
from tests.web.conftest import RATES_ONLY_KEY, ApiWorld, api_world_at
from tests.web.test_api_gates import own_app

RESERVED = "getReservedSkybillWithTypeAndMode"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("reprint")) as world:
        yield world


def _labeled(world: ApiWorld) -> tuple[int, list[str]]:
    read = world.service.read_order(world.take_order())
    [shipment_id] = world.runtime.record([read.record], None)
    assert world.runtime.labels.process(shipment_id) == "labeled"
    with world.runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        return shipment_id, [p.skybill_number for p in row.parcels]


def _pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_api_answers_the_same_label_as_a_pdf_and_makes_no_parcel(world: ApiWorld) -> None:
    shipment_id, skybills = _labeled(world)
    parcels, asked = len(world.carrier.parcels()), len(world.carrier.requests(RESERVED))
    headers = {**world.headers(), "Idempotency-Key": "sf-reprint-0001"}
    answer = world.http.post(f"/api/v1/shipments/{shipment_id}/reprint", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["X-Skybill-Numbers"].split(",") == skybills
    assert all(number in _pdf_text(answer.content) for number in skybills)
    assert len(world.carrier.parcels()) == parcels  # the same label, no new parcel
    # The same request again: the same re-print, not a second carrier call or file.
    again = world.http.post(f"/api/v1/shipments/{shipment_id}/reprint", headers=headers)
    assert again.status_code == 200 and again.content == answer.content
    assert again.headers["X-Reprint-Id"] == answer.headers["X-Reprint-Id"]
    assert len(world.carrier.requests(RESERVED)) == asked + 1
    world.runtime.flush()
    key = f"reprint:{answer.headers['X-Reprint-Id']}"
    files = [v for v in world.org.records("ContentVersion") if v["Chronoforce_Key__c"] == key]
    assert len(files) == 1


def test_another_mode_gives_zpl_of_the_same_parcel(world: ApiWorld) -> None:
    shipment_id, skybills = _labeled(world)
    answer = world.http.post(
        f"/api/v1/shipments/{shipment_id}/reprint?mode=Z2D", headers=world.headers()
    )
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(b"^XA") and skybills[0].encode() in answer.content
    assert answer.headers["content-disposition"].endswith('.zpl"')
    bad = world.http.post(
        f"/api/v1/shipments/{shipment_id}/reprint?mode=GIF", headers=world.headers()
    )
    assert bad.status_code == 422


def test_a_cancelled_label_is_409_and_an_unknown_shipment_404(world: ApiWorld) -> None:
    shipment_id, _ = _labeled(world)
    world.http.post(f"/api/v1/shipments/{shipment_id}/cancel", headers=world.headers())
    asked = len(world.carrier.requests(RESERVED))
    voided = world.http.post(f"/api/v1/shipments/{shipment_id}/reprint", headers=world.headers())
    assert voided.status_code == 409 and voided.json()["code"] == "LABEL_VOIDED"
    assert "cancelled" in voided.json()["message"]
    unknown = world.http.post("/api/v1/shipments/999999/reprint", headers=world.headers())
    assert unknown.status_code == 404
    assert len(world.carrier.requests(RESERVED)) == asked


def test_reprinting_needs_the_labels_scope(world: ApiWorld) -> None:
    shipment_id, _ = _labeled(world)
    refused = world.http.post(
        f"/api/v1/shipments/{shipment_id}/reprint", headers=world.headers(RATES_ONLY_KEY)
    )
    assert refused.status_code == 403


def test_while_the_breaker_is_open_the_api_answers_503_and_calls_nobody(world: ApiWorld) -> None:
    shipment_id, _ = _labeled(world)
    other = CircuitBreaker(world.runtime.store, failures_to_open=1, open_s=60, refresh_s=0)
    # The web app served on its own (`chronoforce web`), sharing the workers' database.
    with own_app(world) as http:
        other.on_failure()  # another worker saw Chronopost fail: open for the whole cluster
        before = len(world.carrier.requests())
        try:
            answer = http.post(f"/api/v1/shipments/{shipment_id}/reprint")
            after = len(world.carrier.requests())
        finally:
            other.on_success()
    assert answer.status_code == 503 and answer.json()["code"] == "CIRCUIT_OPEN"
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert after == before


@pytest.fixture(scope="module")
def console(world: ApiWorld) -> Iterator[httpx.Client]:
    """The app with a console user, over the world's runtime."""
    hashed = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    base = world.runtime.settings
    settings = base.model_copy(
        update={
            "console": {"users": [{"username": "ops", "hash": hashed}]},
            "secrets": base.secrets.model_copy(
                update={"console_session_key": SecretStr("reprint-console-key-0123")}
            ),
        }
    )
    app = create_app(settings, world.runtime, drain_inbox=False)
    server = BackgroundServer(app, options={"timeout_graceful_shutdown": 1}).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        client.post(
            "/login",
            data={"username": "ops", "password": PASSWORD, "csrf": token.group(1), "next": "/"},
        )
        yield client
    server.stop()


def _form(page: str) -> dict[str, str]:
    form = page[page.index('action="/shipments/') :]
    fields = dict(re.findall(r'name="(csrf|ask)" value="([^"]*)"', form))
    assert set(fields) == {"csrf", "ask"}, "the re-print form carries its CSRF token and ask id"
    return fields


def test_the_console_button_downloads_the_same_label_once_per_click(
    world: ApiWorld, console: httpx.Client
) -> None:
    shipment_id, skybills = _labeled(world)
    page = console.get(f"/shipments/{shipment_id}")
    assert "Re-print label" in page.text
    fields = _form(page.text)
    parcels, asked = len(world.carrier.parcels()), len(world.carrier.requests(RESERVED))
    forged = console.post(f"/shipments/{shipment_id}/reprint", data={**fields, "csrf": "forged"})
    assert forged.status_code == 403
    answers = [console.post(f"/shipments/{shipment_id}/reprint", data=fields) for _ in range(2)]
    for answer in answers:  # a double click: one re-print, one carrier call
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        assert skybills[0] in _pdf_text(answer.content)
    assert len(world.carrier.requests(RESERVED)) == asked + 1
    assert len(world.carrier.parcels()) == parcels


def test_the_console_says_why_a_cancelled_label_is_not_reprinted(
    world: ApiWorld, console: httpx.Client
) -> None:
    shipment_id, _ = _labeled(world)
    fields = _form(console.get(f"/shipments/{shipment_id}").text)
    world.http.post(f"/api/v1/shipments/{shipment_id}/cancel", headers=world.headers())
    assert "Re-print label" not in console.get(f"/shipments/{shipment_id}").text
    refused = console.post(f"/shipments/{shipment_id}/reprint", data=fields, follow_redirects=True)
    assert refused.status_code == 200  # followed back to the shipment page
    assert "cancelled, so it cannot be re-printed" in refused.text
