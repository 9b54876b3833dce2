"""The console's end-of-day slips page: the day's slips with a download link, over real HTTP."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import httpx
from pypdf import PdfReader

from chronoforce.store.db import Store
from chronoforce.store.models import Parcel, Shipment
from tests.web.test_console import login, serve, store  # noqa: F401 - the console's fixtures

PARIS = ZoneInfo("Europe/Paris")


def test_the_slips_page_lists_the_days_slip_and_its_pdf_downloads(
    serve, store: Store  # noqa: F811
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
    client: httpx.Client = serve()
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
    empty = client.get("/manifests", params={"date": "2026-12-04"})
    assert "no slip" in empty.text
