"""The end-of-day slip: the day's live parcels as a PDF, its record and file in Salesforce, made
once per group and day — through both sandboxes over HTTP."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from chronoforce.cli.common import run_until
from chronoforce.config.sections import AccountsConfig, FamilyAccountConfig
from chronoforce.pipeline.cancel import Cancels
from chronoforce.pipeline.manifest import MANIFEST_OBJECT, Manifests, pickup_day
from chronoforce.pipeline.manifest_pdf import SlipHeader, SlipLine, render
from chronoforce.store.models import Manifest, Outbox, Parcel, Shipment
from tests.pipeline.conftest import open_sandbox_world

PARIS = ZoneInfo("Europe/Paris")
INTERNATIONAL_ACCOUNT = "22222222"

# The tests that run the pipeline (`run_until`) need the cluster's gates.
CLUSTER = pytest.mark.parametrize("sandbox_world", ["cluster"], indirect=True)


def _text(pdf: bytes) -> str:
    """The PDF's text, whitespace collapsed (pypdf puts each table cell on a line of its own)."""
    pages = PdfReader(io.BytesIO(pdf)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def _labeled(runtime: Any) -> tuple[list[Shipment], list[Parcel]]:
    with runtime.store.session() as session:
        shipments = list(session.scalars(select(Shipment).where(Shipment.state == "labeled")))
        parcels = list(session.scalars(select(Parcel).where(Parcel.live)))
        session.expunge_all()
    return shipments, parcels


def _manifests(world: dict[str, Any]) -> Manifests:
    runtime = world["runtime"]
    return Manifests.from_settings(world["settings"], runtime.store, runtime.mapping, runtime.now)


@CLUSTER
def test_the_slip_lists_exactly_the_days_live_parcels_and_lands_on_its_salesforce_record(
    sandbox_world: dict[str, Any],
) -> None:
    runtime, org = sandbox_world["runtime"], sandbox_world["org"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=90)
    shipments, _ = _labeled(runtime)
    assert len(shipments) >= 3, "the seed labels most of its orders"
    cancelled = shipments[0]
    Cancels(runtime.store, runtime.carrier, runtime.labels.gates, runtime.now).cancel(cancelled.id)
    with runtime.store.session() as session:
        voided = set(
            session.scalars(select(Parcel.skybill_number).where(Parcel.shipment_id == cancelled.id))
        )
        first = session.scalars(select(Parcel).where(Parcel.live)).first()
        assert first is not None
        day = pickup_day(first.shipment, first, PARIS)
    _, live = _labeled(runtime)
    assert voided and not voided & {p.skybill_number for p in live}

    slips = _manifests(sandbox_world).build(day)

    assert len(slips) == 1 and slips[0].made_now
    slip = slips[0]
    assert slip.account_number == sandbox_world["settings"].chronopost.account_number
    assert slip.location == "main" and slip.version == 1
    assert slip.parcel_count == len(live)
    weight = sum((Decimal(str(p.weight_kg)) for p in live), Decimal(0))
    assert slip.total_weight_kg == weight
    _, pdf = _manifests(sandbox_world).pdf(slip.id)
    text = _text(pdf)
    for parcel in live:
        assert parcel.skybill_number in text
    for number in voided:
        assert number not in text
    assert f"Parcels, total {len(live)}" in text
    assert f"Weight, total (kg) {weight.quantize(Decimal('0.001'))}" in text
    assert "Shipper" in text and "Chronopost driver" in text
    with runtime.store.session() as session:
        orders = {s.order_number for s in session.scalars(select(Shipment)) if s.id != cancelled.id}
    assert any(order in text for order in orders)

    runtime.flush()
    records = org.records(MANIFEST_OBJECT)
    assert len(records) == 1
    record = records[0]
    assert record["Parcel_Count__c"] == len(live)
    assert record["Pickup_Date__c"] == day.isoformat()
    assert record["Chronoforce_Key__c"].endswith(f"|main|{day}")
    files = [
        v for v in org.records("ContentVersion") if v["FirstPublishLocationId"] == record["Id"]
    ]
    assert len(files) == 1 and files[0]["PathOnClient"].endswith("-v1.pdf")
    links = org.records("ContentDocumentLink")
    assert any(
        link["LinkedEntityId"] == record["Id"]
        and link["ContentDocumentId"] == files[0]["ContentDocumentId"]
        for link in links
    )
    # The listing knows the record Salesforce made.
    assert _manifests(sandbox_world).list(day)[0].sf_id == record["Id"]

    # Again the same day, nothing changed: nothing new, here or in Salesforce.
    with runtime.store.session() as session:
        outbox_before = session.scalar(select(func.count()).select_from(Outbox))
    again = _manifests(sandbox_world).build(day)
    assert [(s.id, s.made_now) for s in again] == [(slip.id, False)]
    runtime.flush()
    with runtime.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Manifest)) == 1
        assert session.scalar(select(func.count()).select_from(Outbox)) == outbox_before
    assert len(org.records(MANIFEST_OBJECT)) == 1
    versions = org.records("ContentVersion")
    assert len([v for v in versions if v["FirstPublishLocationId"] == record["Id"]]) == 1


@CLUSTER
def test_a_parcel_cancelled_after_the_slip_makes_a_new_version_on_the_same_record(
    sandbox_world: dict[str, Any],
) -> None:
    runtime, org = sandbox_world["runtime"], sandbox_world["org"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=90)
    shipments, live = _labeled(runtime)
    with runtime.store.session() as session:
        first = session.get_one(Parcel, live[0].id)
        day = pickup_day(first.shipment, first, PARIS)
    manifests = _manifests(sandbox_world)
    (v1,) = manifests.build(day)
    runtime.flush()
    Cancels(runtime.store, runtime.carrier, runtime.labels.gates, runtime.now).cancel(
        shipments[-1].id
    )
    (v2,) = manifests.build(day)
    assert v2.made_now and v2.version == 2 and v2.id != v1.id
    assert v2.parcel_count < v1.parcel_count
    runtime.flush()
    (record,) = org.records(MANIFEST_OBJECT)  # upserted: the same record
    assert record["Version__c"] == 2 and record["Parcel_Count__c"] == v2.parcel_count
    files = [
        v for v in org.records("ContentVersion") if v["FirstPublishLocationId"] == record["Id"]
    ]
    assert sorted(f["PathOnClient"][-7:] for f in files) == ["-v1.pdf", "-v2.pdf"]
    assert [s.version for s in manifests.list(day)] == [2, 1]


@CLUSTER
def test_a_parcel_whose_pickup_is_booked_for_another_day_is_on_that_days_slip(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=90)
    shipments, live = _labeled(runtime)
    moved = shipments[0]
    with runtime.store.session() as session:
        first = session.get_one(Parcel, live[0].id)
        today = pickup_day(first.shipment, first, PARIS)
        later = today + dt.timedelta(days=2)
        row = session.get_one(Shipment, moved.id)
        row.source = {**row.source, "pickups": {later.isoformat(): {"number": "E1", "date": None}}}
        numbers = {p.skybill_number for p in row.parcels if p.live}
    manifests = _manifests(sandbox_world)
    (on_day,) = manifests.build(today)
    (on_later,) = manifests.build(later)
    assert on_later.parcel_count == len(numbers)
    assert on_day.parcel_count == len(live) - len(numbers)
    later_text = _text(manifests.pdf(on_later.id)[1])
    assert all(n in later_text for n in numbers)
    assert not any(n in _text(manifests.pdf(on_day.id)[1]) for n in numbers)


def test_many_rows_break_over_pages_and_every_row_is_printed() -> None:
    lines = [
        SlipLine(f"XW{i:09d}FR", f"ORD-{i}", f"Recipient {i}", "75001", "FR", "01",
                 Decimal("1.250"), 1)
        for i in range(120)
    ]  # fmt: skip
    header = SlipHeader("Shop", "1 rue X, 75001 Paris, FR", "19869502", "", "default",
                        dt.date(2026, 12, 3), 1, dt.datetime(2026, 12, 3, 18, 0))  # fmt: skip
    pdf = render(header, lines)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 3
    text = _text(pdf)
    assert all(line.skybill_number in text for line in lines)
    assert "Parcels, total 120" in text and "Weight, total (kg) 150.000" in text
    # The column names head every page.
    assert all("Skybill number" in page.extract_text() for page in reader.pages[:-1])


def test_parcels_shipped_under_another_contract_get_a_slip_of_their_own(
    tmp_path: Path,
) -> None:
    """International products ship under `chronopost.accounts.international` (its account and
    sub-account): their parcels are on that contract's slip, the others on the main one's."""
    from chronoforce.sandbox.chronopost import DEMO_PASSWORD

    accounts = AccountsConfig(
        international=FamilyAccountConfig(account_number=INTERNATIONAL_ACCOUNT, sub_account="7")
    )
    world = open_sandbox_world(
        tmp_path,
        cluster=True,
        carrier_accounts={INTERNATIONAL_ACCOUNT: DEMO_PASSWORD},
        chronopost_update={"accounts": accounts},
    )
    sandbox = next(world)
    try:
        runtime = sandbox["runtime"]
        run_until(runtime, workers=2, until_idle=True, max_seconds=90)
        sent = {
            r.request.split("<accountNumber>")[1].split("<")[0]
            for r in sandbox["carrier"].requests("shippingMultiParcelV5")
        }
        assert sent == {sandbox["settings"].chronopost.account_number, INTERNATIONAL_ACCOUNT}
        with runtime.store.session() as session:
            rows = list(session.execute(select(Parcel, Shipment).join(Shipment).where(Parcel.live)))
            day = pickup_day(rows[0][1], rows[0][0], PARIS)
            abroad = {p.skybill_number for p, s in rows if s.product_code in ("17", "44")}
            home = {p.skybill_number for p, _ in rows} - abroad
        assert abroad and home, "the seed ships at home and abroad"
        manifests = _manifests(sandbox)
        slips = {(s.account_number, s.sub_account): s for s in manifests.build(day)}
        main = sandbox["settings"].chronopost.account_number
        assert set(slips) == {(main, ""), (INTERNATIONAL_ACCOUNT, "7")}
        for key, numbers in (((main, ""), home), ((INTERNATIONAL_ACCOUNT, "7"), abroad)):
            text = _text(manifests.pdf(slips[key].id)[1])
            assert slips[key].parcel_count == len(numbers)
            assert all(n in text for n in numbers)
            assert not any(n in text for n in (home | abroad) - numbers)
        runtime.flush()
        keys = sorted(r["Chronoforce_Key__c"] for r in sandbox["org"].records(MANIFEST_OBJECT))
        assert keys == sorted([f"{main}|-|main|{day}", f"{INTERNATIONAL_ACCOUNT}|7|main|{day}"])
    finally:
        world.close()


@CLUSTER
def test_the_slips_file_waits_for_its_record_and_follows_it(sandbox_world: dict[str, Any]) -> None:
    """The record's upsert is refused for a while (UNABLE_TO_LOCK_ROW on every write): the file,
    filed on that record, is held back, not sent nowhere; once the record is in, the file is."""
    from chronoforce.pipeline.writeback import Flusher

    runtime, org = sandbox_world["runtime"], sandbox_world["org"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=90)
    _, live = _labeled(runtime)
    with runtime.store.session() as session:
        first = session.get_one(Parcel, live[0].id)
        day = pickup_day(first.shipment, first, PARIS)
    (slip,) = _manifests(sandbox_world).build(day)
    files_before = len(org.records("ContentVersion"))
    org.set_faults(lock_row_share=1.0)
    report = runtime.flush()
    assert report.sent == 0 and report.retried == 2
    assert org.records(MANIFEST_OBJECT) == []
    assert len(org.records("ContentVersion")) == files_before
    org.set_faults(lock_row_share=0.0)
    later = runtime.now() + dt.timedelta(hours=2)  # past both rows' backoff
    Flusher(runtime.store, runtime.salesforce, now=lambda: later).flush()
    (record,) = org.records(MANIFEST_OBJECT)
    (file,) = [
        v for v in org.records("ContentVersion") if v["FirstPublishLocationId"] == record["Id"]
    ]
    assert file["Chronoforce_Key__c"] == f"manifest:{slip.id}"


@CLUSTER
def test_a_file_whose_record_cannot_be_looked_up_fails_alone(
    sandbox_world: dict[str, Any],
) -> None:
    """The record a slip's file is filed on cannot be queried (here: an object the org does not
    have, INVALID_TYPE): that file fails with the reason, and the other files of the same flush
    still go up — the flush is not stopped round after round."""
    from chronoforce.pipeline import writeback

    runtime, org = sandbox_world["runtime"], sandbox_world["org"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=90)
    shipments, _ = _labeled(runtime)
    order = shipments[0]
    lost = writeback.pod_file_row(
        shipment_id=order.id, dedup_key="test:lost", data=b"%PDF-1.4 lost", title="lost",
        filename="lost.pdf", attach_to=["x"],
    )  # fmt: skip
    lost["payload"] = {
        **lost["payload"],
        "first_publish_location_id": "",
        "first_publish_location": {"sf_object": "Nope__c", "key_field": "Key__c", "key": "k"},
    }
    other = writeback.pod_file_row(
        shipment_id=order.id, dedup_key="test:other", data=b"%PDF-1.4 other", title="other",
        filename="other.pdf", attach_to=[order.sf_id],
    )  # fmt: skip
    with runtime.store.session() as session:
        writeback.enqueue_rows(session, [lost, other])
    files_before = len(org.records("ContentVersion"))

    report = runtime.flush()

    assert report.failed == 1 and report.sent >= 1
    assert len(org.records("ContentVersion")) == files_before + 1
    with runtime.store.session() as session:
        states = dict(
            session.execute(
                select(Outbox.dedup_key, Outbox.state).where(Outbox.dedup_key.like("test:%"))
            ).all()
        )
    assert states == {"test:lost": "failed", "test:other": "sent"}
