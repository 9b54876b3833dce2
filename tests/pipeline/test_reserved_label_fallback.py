"""A shipping answer without its label inline (withReservation 1 read the other way): the label
step fetches the stored label with getReservedSkybillWithTypeAndMode and never makes a second
label, never stores an empty one. Both sandboxes over HTTP; the Chronopost sandbox's fault
`withhold_reserved_label` empties `pdfEtiquette` (docs/sandbox-chronopost.md)."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pypdf
from sqlalchemy import select

from chronoforce.domain.models import Label, LabelFormat, LabelResult, ShipmentRequest
from chronoforce.store.models import ExceptionRow, Parcel, Shipment

SHIPPING = "shippingMultiParcelV5"
RESERVED = "getReservedSkybillWithTypeAndMode"


def _first(world: dict[str, Any], wanted: str, labels: Any = None) -> int:
    """The first detected order whose label step ends `wanted` (the seed has broken orders)."""
    runtime = world["runtime"]
    labels = labels or runtime.labels
    for shipment_id in runtime.detect():
        outcome = labels.process(shipment_id)
        if outcome == wanted:
            return int(shipment_id)
        assert outcome == "exception", outcome  # a deliberately broken order
    raise AssertionError(f"no order ended {wanted}")


def _at_sandbox(carrier: Any, shipper_ref: str) -> list[Any]:
    return [p for p in carrier.parcels() if p.shipper_ref == shipper_ref]


def _files_of(world: dict[str, Any], sf_id: str) -> list[dict[str, Any]]:
    versions = world["org"].records("ContentVersion")
    return [v for v in versions if v["FirstPublishLocationId"] == sf_id]


def test_a_label_withheld_from_the_answer_is_fetched_stored_and_filed_once(
    sandbox_world: dict[str, Any],
) -> None:
    world, carrier, runtime = sandbox_world, sandbox_world["carrier"], sandbox_world["runtime"]
    carrier.set_faults(withhold_reserved_label=True)
    shipment_id = _first(world, "labeled")
    runtime.flush()
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        [parcel] = row.parcels
        stored, skybill = bytes(parcel.label_bytes), parcel.skybill_number
        ref, sf_id, reservation = row.shipper_ref, row.sf_id, row.reservation_number
        label_format = parcel.label_format
    # The shipping answer really carried no label, and the label was asked for by parcel.
    [answered] = [r for r in carrier.requests(SHIPPING) if f"<shipperRef>{ref}<" in r.request]
    assert answered.error_code == 0 and reservation
    assert any(f"<reservationNumber>{skybill}<" in r.request for r in carrier.requests(RESERVED))
    # A real PDF, the very bytes Chronopost stored, of this parcel.
    assert stored.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(stored)).pages)
    assert skybill in text
    fetched = runtime.carrier.reserved_label(skybill, LabelFormat(label_format))
    assert fetched.data == stored
    assert len(_at_sandbox(carrier, ref)) == 1 and _at_sandbox(carrier, ref)[0].skybill == skybill
    [version] = _files_of(world, sf_id)
    assert world["org"].org.version_data(version["Id"]) == stored


def test_a_retrieval_that_fails_for_now_is_retried_without_a_second_label(
    sandbox_world: dict[str, Any],
) -> None:
    world, carrier, runtime = sandbox_world, sandbox_world["carrier"], sandbox_world["runtime"]
    carrier.set_faults(withhold_reserved_label=True, kind="http_503", operations=[RESERVED])
    shipment_id = _first(world, "retry")
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        ref, sf_id = row.shipper_ref, row.sf_id
        assert row.state == "calling" and row.reservation_number  # answered, label missing
        assert not row.parcels  # nothing stored, above all no empty label
    runtime.flush()
    assert _files_of(world, sf_id) == []
    assert len(_at_sandbox(carrier, ref)) == 1
    shipping_calls = len(carrier.requests(SHIPPING))
    assert any(r.injected == "http_503" for r in carrier.requests(RESERVED))

    carrier.set_faults(withhold_reserved_label=True)  # Chronopost answers again
    assert runtime.labels.process(shipment_id) == "labeled"
    runtime.flush()
    assert len(carrier.requests(SHIPPING)) == shipping_calls  # shipping was not called again
    [made] = _at_sandbox(carrier, ref)
    assert made.cancelled_at is None
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        [parcel] = row.parcels
        assert row.state == "labeled" and parcel.skybill_number == made.skybill
        assert bytes(parcel.label_bytes).startswith(b"%PDF")
        assert parcel.label_bytes == made.label
    assert len(_files_of(world, sf_id)) == 1


@dataclasses.dataclass
class _NoReservation:
    """Chronopost's answer as the documents do not describe it: the parcels made, their
    `pdfEtiquette` empty and no reservationNumber. Everything else is the real client."""

    client: Any

    def create_shipment(self, request: ShipmentRequest) -> LabelResult:
        made: LabelResult = self.client.create_shipment(request)
        labels = tuple(Label(x.skybill_number, b"", x.label_format) for x in made.labels)
        return dataclasses.replace(made, reservation_number="", labels=labels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_an_empty_label_without_a_reservation_is_an_exception_and_never_a_file(
    sandbox_world: dict[str, Any],
) -> None:
    world, carrier, runtime = sandbox_world, sandbox_world["carrier"], sandbox_world["runtime"]
    labels = dataclasses.replace(runtime.labels, carrier=_NoReservation(runtime.carrier))
    shipment_id = _first(world, "exception_empty", labels=_Named(labels))
    runtime.flush()
    with runtime.store.session() as session:
        row = session.get_one(Shipment, shipment_id)
        ref, sf_id = row.shipper_ref, row.sf_id
        assert row.state == "calling" and not row.parcels
        [problem] = session.scalars(
            select(ExceptionRow).where(
                ExceptionRow.shipment_id == shipment_id, ExceptionRow.code == "CARRIER_EMPTY_LABEL"
            )
        )
        assert f"shipment {shipment_id}" in problem.message and problem.state == "open"
        assert session.scalar(select(Parcel).where(Parcel.shipment_id == shipment_id)) is None
    assert _files_of(world, sf_id) == []
    [orphan] = _at_sandbox(carrier, ref)
    # The next try looks the parcels up by our reference: the label-less one is cancelled first.
    assert runtime.labels.process(shipment_id) == "labeled"
    runtime.flush()
    parcels = _at_sandbox(carrier, ref)
    assert [p.cancelled_at is not None for p in parcels if p.skybill == orphan.skybill] == [True]
    assert len([p for p in parcels if p.cancelled_at is None]) == 1
    assert len(_files_of(world, sf_id)) == 1


@dataclasses.dataclass
class _Named:
    """The label pipeline, telling an empty-label exception from a broken order's."""

    labels: Any

    def process(self, shipment_id: int) -> str:
        outcome = self.labels.process(shipment_id)
        if outcome != "exception":
            return str(outcome)
        with self.labels.store.session() as session:
            code = session.scalar(
                select(ExceptionRow.code).where(ExceptionRow.shipment_id == shipment_id)
            )
        return "exception_empty" if code == "CARRIER_EMPTY_LABEL" else "exception"
