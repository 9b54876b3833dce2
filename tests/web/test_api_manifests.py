"""GET /api/v1/manifests and the slip's PDF, over HTTP, against both sandboxes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from chronoforce.pipeline.manifest import pickup_day
from chronoforce.pipeline.pickup_times import PARIS
from chronoforce.store.models import Parcel
from tests.web.conftest import RATES_ONLY_KEY, ApiWorld, api_world_at


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    with api_world_at(tmp_path_factory.mktemp("manifests")) as world:
        yield world


def test_the_days_slips_are_listed_and_their_pdf_lists_the_parcels(world: ApiWorld) -> None:
    runtime = world.runtime
    for order_id in (world.take_order(), world.take_order()):
        [shipment_id] = runtime.record([world.service.read_order(order_id).record], None)
        assert runtime.labels.process(shipment_id) == "labeled"
    with runtime.store.session() as session:
        live = list(session.scalars(select(Parcel).where(Parcel.live)))
        day = pickup_day(live[0].shipment, live[0], PARIS)
        numbers = {p.skybill_number for p in live}
    answer = world.http.get("/api/v1/manifests", params={"date": day.isoformat()},
                            headers=world.headers())  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (slip,) = body["manifests"]
    assert slip["parcel_count"] == len(numbers) and slip["version"] == 1
    pdf = world.http.get(slip["pdf_url"], headers=world.headers())
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert all(n in text for n in numbers)
    # Asked again: the same slip.
    again = world.http.get("/api/v1/manifests", params={"date": day.isoformat()},
                           headers=world.headers()).json()  # fmt: skip
    assert [m["id"] for m in again["manifests"]] == [slip["id"]]


def test_mistakes_answer_4xx(world: ApiWorld) -> None:
    bad = world.http.get("/api/v1/manifests", params={"date": "2026-02-30"},
                         headers=world.headers())  # fmt: skip
    assert bad.status_code == 422
    missing = world.http.get("/api/v1/manifests/999999.pdf", headers=world.headers())
    assert missing.status_code == 404 and missing.json()["code"] == "MANIFEST_NOT_FOUND"
    # An id past what the store holds (found by schemathesis: a 500 from SQLite) is a 422.
    huge = world.http.get("/api/v1/manifests/358389784118492259004973056.pdf",
                          headers=world.headers())  # fmt: skip
    assert huge.status_code == 422
    assert world.http.get("/api/v1/manifests", params={"date": "2026-12-01"}).status_code == 401
    forbidden = world.http.get("/api/v1/manifests", params={"date": "2026-12-01"},
                               headers=world.headers(RATES_ONLY_KEY))  # fmt: skip
    assert forbidden.status_code == 403
