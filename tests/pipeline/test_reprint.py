"""A lost label is fetched again, never made twice (issue 21 item 5), through both sandboxes over
HTTP: the same skybill number, no new parcel at Chronopost, one new file per request."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import pytest
from sqlalchemy import select

from chronoforce.domain.errors import CircuitOpenError, LabelVoidedError, NotFoundError
from chronoforce.domain.models import LabelFormat
from chronoforce.pipeline.breaker import CircuitBreaker
from chronoforce.pipeline.cancel import Cancels
from chronoforce.pipeline.reprint import Reprints
from chronoforce.store.models import LabelReprint, Shipment


def _labeled(world: dict[str, Any], count: int = 1) -> list[int]:
    runtime = world["runtime"]
    done = []
    for shipment_id in runtime.detect():
        if runtime.labels.process(shipment_id) == "labeled":
            done.append(shipment_id)
        if len(done) == count:
            break
    runtime.flush()
    assert len(done) == count
    return done


def _reprints(world: dict[str, Any]) -> Reprints:
    runtime = world["runtime"]
    return Reprints(runtime.store, runtime.carrier, runtime.labels.gates, runtime.now)


def _files(world: dict[str, Any]) -> list[dict[str, Any]]:
    return world["org"].records("ContentVersion")


def test_a_reprint_gives_the_same_label_and_makes_no_parcel_at_chronopost(
    sandbox_world: dict[str, Any],
) -> None:
    world, carrier, org = sandbox_world, sandbox_world["carrier"], sandbox_world["org"]
    [shipment_id] = _labeled(world)
    with world["runtime"].store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        skybills = [p.skybill_number for p in row.parcels]
        reservation, order_number = row.reservation_number, row.order_number
    assert reservation  # made with withReservation 1: Chronopost stored it
    parcels_before = len(carrier.parcels())
    files_before = len(_files(world))
    shipments_before = len(carrier.requests("shippingMultiParcelV5"))

    again = _reprints(world).reprint(_reprints(world).find(order_number))
    world["runtime"].flush()

    assert again.shipment_id == shipment_id and again.skybill_numbers == skybills
    assert len(carrier.parcels()) == parcels_before  # no new parcel at the sandbox
    assert len(carrier.requests("shippingMultiParcelV5")) == shipments_before
    [asked] = carrier.requests("getReservedSkybillWithTypeAndMode")
    assert f"<reservationNumber>{reservation}<" in asked.request
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(again.data)).pages)
    assert all(number in text for number in skybills)
    # One new file in Salesforce, on the order, holding exactly these bytes.
    new = [v for v in _files(world) if v["Chronoforce_Key__c"] == f"reprint:{again.reprint_id}"]
    assert len(_files(world)) == files_before + 1 and len(new) == 1
    assert new[0]["FirstPublishLocationId"] == row.sf_id
    assert org.org.version_data(new[0]["Id"]) == again.data


def test_one_request_is_one_file_and_one_carrier_call(sandbox_world: dict[str, Any]) -> None:
    world, carrier = sandbox_world, sandbox_world["carrier"]
    [shipment_id] = _labeled(world)
    reprints = _reprints(world)
    first = reprints.reprint(shipment_id, request_key="api:sf-org:abc")
    second = reprints.reprint(shipment_id, request_key="api:sf-org:abc")
    other = reprints.reprint(shipment_id, request_key="api:sf-org:def")
    world["runtime"].flush()
    assert first.created and not second.created and other.created
    assert second.reprint_id == first.reprint_id and second.data == first.data
    assert len(carrier.requests("getReservedSkybillWithTypeAndMode")) == 2
    keys = [v["Chronoforce_Key__c"] for v in _files(world)]
    assert keys.count(f"reprint:{first.reprint_id}") == 1
    assert keys.count(f"reprint:{other.reprint_id}") == 1


def test_a_shipment_is_found_by_order_number_salesforce_id_or_skybill(
    sandbox_world: dict[str, Any],
) -> None:
    world = sandbox_world
    [shipment_id] = _labeled(world)
    with world["runtime"].store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        keys = [row.order_number, row.sf_id, row.sf_id[:15], row.parcels[0].skybill_number]
    reprints = _reprints(world)
    assert [reprints.find(key) for key in keys] == [shipment_id] * 4
    with pytest.raises(NotFoundError) as caught:
        reprints.find("NO-SUCH-ORDER")
    assert "NO-SUCH-ORDER" in caught.value.message


def test_a_reprint_by_skybill_in_another_mode_is_zpl_of_the_same_parcel(
    sandbox_world: dict[str, Any],
) -> None:
    world = sandbox_world
    [shipment_id] = _labeled(world)
    with world["runtime"].store.session() as session:
        skybill = session.get_one(Shipment, shipment_id).parcels[0].skybill_number
    reprints = _reprints(world)
    again = reprints.reprint(reprints.find(skybill), label_format=LabelFormat.Z2D)
    assert again.label_format is LabelFormat.Z2D and again.filename.endswith(".zpl")
    assert again.data.startswith(b"^XA") and skybill.encode() in again.data


def test_a_cancelled_label_cannot_be_reprinted(sandbox_world: dict[str, Any]) -> None:
    world, carrier = sandbox_world, sandbox_world["carrier"]
    runtime = world["runtime"]
    [shipment_id] = _labeled(world)
    Cancels(runtime.store, runtime.carrier, runtime.labels.gates, runtime.now).cancel(shipment_id)
    calls = len(carrier.requests())
    with pytest.raises(LabelVoidedError) as caught:
        _reprints(world).reprint(shipment_id)
    assert caught.value.code == "LABEL_VOIDED" and "cancelled" in caught.value.message
    assert len(carrier.requests()) == calls  # refused before asking Chronopost


def test_a_label_chronopost_did_not_store_is_a_clear_not_found(
    sandbox_world: dict[str, Any],
) -> None:
    world = sandbox_world
    [shipment_id] = _labeled(world)
    with world["runtime"].store.session() as session:
        session.get_one(Shipment, shipment_id).reservation_number = "0000000000000000"
    with pytest.raises(NotFoundError) as caught:
        _reprints(world).reprint(shipment_id)
    assert caught.value.code == "STORED_LABEL_NOT_FOUND"
    with world["runtime"].store.session() as session:
        assert not session.scalars(select(LabelReprint)).all()  # nothing kept, no file queued


def test_while_the_breaker_is_open_nothing_reaches_chronopost(
    sandbox_world: dict[str, Any],
) -> None:
    world, carrier = sandbox_world, sandbox_world["carrier"]
    runtime = world["runtime"]
    [shipment_id] = _labeled(world)
    breaker = CircuitBreaker(runtime.store, failures_to_open=1, open_s=60, refresh_s=0)
    reprints = _reprints(world)
    reprints.gates = type(reprints.gates)(breaker=breaker)
    breaker.on_failure()
    calls = len(carrier.requests())
    with pytest.raises(CircuitOpenError):
        reprints.reprint(shipment_id)
    assert len(carrier.requests()) == calls


def test_cancelling_afterwards_takes_the_reprinted_file_off_the_order(
    sandbox_world: dict[str, Any],
) -> None:
    world, org = sandbox_world, sandbox_world["org"]
    runtime = world["runtime"]
    [shipment_id] = _labeled(world)
    again = _reprints(world).reprint(shipment_id)
    runtime.flush()
    [version] = [
        v for v in _files(world) if v["Chronoforce_Key__c"] == f"reprint:{again.reprint_id}"
    ]

    def linked() -> set[str]:
        return {
            link["LinkedEntityId"]
            for link in org.records("ContentDocumentLink")
            if link["ContentDocumentId"] == version["ContentDocumentId"]
        }

    order_id = version["FirstPublishLocationId"]
    assert order_id in linked()
    Cancels(runtime.store, runtime.carrier, runtime.labels.gates, runtime.now).cancel(shipment_id)
    runtime.flush()
    assert order_id not in linked()  # the warehouse no longer sees a voided label's copy
