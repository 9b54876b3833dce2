"""The re-print use case: a lost label fetched again from Chronopost, never a second label.

Labels are made with withReservation 1, so Chronopost keeps them ([D] §2.3.2.b8, §3.1); this
asks getReservedSkybillWithTypeAndMode for the shipment's reservation number (or, when some of
its parcels were voided, each live parcel's number: [S] §2.7.6 takes both), through the same
gates as every carrier call. The answer is the same label, same skybill numbers; no parcel is
made. It is kept (`label_reprint`) and filed in Salesforce as a new file through the outbox,
once per request (`request_key`). It never re-prints a cancelled label.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select

from chronoforce.domain.errors import (
    CarrierValidationError,
    ConflictError,
    LabelVoidedError,
    NotFoundError,
)
from chronoforce.domain.models import LabelFormat, ShipmentStatus
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.gates import Gates
from chronoforce.salesforce.soql import is_record_id
from chronoforce.store.db import Store
from chronoforce.store.models import LabelReprint, Parcel, Shipment
from chronoforce.store.ops import insert_ignore

log = get_logger(component="reprint")

CANCELLED_STATE = ShipmentState.CANCELLED
NOT_STORED = "CHRONOPOST_29"  # [D] §2.3.3.b: reservation number not found or inconsistent
INTENTS = ("outbound", "return")  # which shipment of an order a key names first


@dataclass(frozen=True)
class Reprinted:
    """The label given back: the same skybill numbers as when it was made."""

    shipment_id: int
    reprint_id: int
    skybill_numbers: list[str]
    label_format: LabelFormat
    data: bytes
    filename: str
    created: bool  # False: this request was answered before; Chronopost was not asked again


@dataclass(frozen=True)
class _Label:
    """What a re-print of a shipment needs to know, read before the carrier call."""

    shipment_id: int
    sf_id: str
    order_number: str
    generation: int
    numbers: list[str]  # what to ask Chronopost for: the reservation, or each live parcel
    skybills: list[str]
    label_format: LabelFormat
    attach_to: list[str]


@dataclass
class Reprints:
    """Re-prints through the gates; `now` is the runtime's clock."""

    store: Store
    carrier: Any  # ChronopostClient (reserved_label)
    gates: Gates
    now: Callable[[], dt.datetime]

    def find(self, key: str) -> int:
        """The shipment a skybill number, a Salesforce id or an order number names (the
        outbound one first), or NotFoundError."""
        key = key.strip()
        with self.store.session() as session:
            found = session.scalar(select(Parcel.shipment_id).where(Parcel.skybill_number == key))
            if found is not None:
                return int(found)
            if is_record_id(key):  # a 15-character id is the start of the 18-character one
                named = Shipment.sf_id.like(f"{key}%") if len(key) == 15 else Shipment.sf_id == key
            else:
                named = Shipment.order_number == key
            rows = session.execute(select(Shipment.id, Shipment.intent).where(named)).all()
        if not rows:
            raise NotFoundError(
                f"no shipment has the skybill number, Salesforce id or order number {key!r}",
                code="SHIPMENT_NOT_FOUND", record_id=key if is_record_id(key) else "",
            )  # fmt: skip
        rank = {intent: i for i, intent in enumerate(INTENTS)}
        return int(min(rows, key=lambda r: (rank.get(r.intent, len(INTENTS)), -r.id)).id)

    def reprint(
        self,
        shipment_id: int,
        *,
        label_format: LabelFormat | None = None,
        request_key: str | None = None,
        requested_by: str = "cli",
        attach: bool = True,
    ) -> Reprinted:
        """The shipment's live label again, in `label_format` (default: as it was made).

        A `request_key` seen before answers its first re-print again, with no carrier call and
        no new file. LabelVoidedError for a cancelled label; ConflictError while a label is
        being made or before there is one; NotFoundError when Chronopost has not stored it."""
        key = request_key or f"{requested_by}:{uuid.uuid4().hex}"
        done = self._done(key)
        if done is not None:
            return done
        label = self._label(shipment_id, label_format)
        data = self._fetch(label)
        return self._keep(key, label, data, requested_by, attach)

    # --- steps -------------------------------------------------------------------------------

    def _done(self, key: str) -> Reprinted | None:
        with self.store.session() as session:
            row = session.scalar(select(LabelReprint).where(LabelReprint.request_key == key))
            return _reprinted(row, created=False) if row is not None else None

    def _label(self, shipment_id: int, label_format: LabelFormat | None) -> _Label:
        with self.store.session() as session:
            row = session.get(Shipment, shipment_id)
            if row is None:
                raise NotFoundError(f"no shipment {shipment_id}", code="SHIPMENT_NOT_FOUND")
            name = f"order {row.order_number or row.sf_id} (shipment {shipment_id})"
            if row.state == CANCELLED_STATE or row.status == ShipmentStatus.CANCELLED.value:
                raise LabelVoidedError(
                    f"{name}: its label was cancelled, so it cannot be re-printed; make a new "
                    "label instead",
                    record_id=row.sf_id,
                )
            if row.cancel_at is not None:  # asked inside Chronopost's cancel window: voided soon
                raise LabelVoidedError(
                    f"{name}: a cancel of its label is queued, so it cannot be re-printed",
                    record_id=row.sf_id,
                )
            if row.state == ShipmentState.CALLING:
                raise ConflictError(
                    f"{name}: a label is being made right now; try again in a minute",
                    code="SHIPMENT_BUSY", record_id=row.sf_id,
                )  # fmt: skip
            if not row.parcels:
                raise ConflictError(
                    f"{name} has no label yet: nothing to re-print",
                    code="NO_LABEL_YET", record_id=row.sf_id,
                )  # fmt: skip
            generation = max(p.generation for p in row.parcels)
            current = [p for p in row.parcels if p.generation == generation]
            live = [p for p in current if p.live]
            if not live:
                raise LabelVoidedError(
                    f"{name}: every parcel of its label was cancelled, so it cannot be re-printed",
                    record_id=row.sf_id,
                )
            # The reservation holds every parcel of the call: ask for it only while all are live.
            whole = row.reservation_number and len(live) == len(current)
            numbers = [row.reservation_number] if whole else [p.skybill_number for p in live]
            source = row.source or {}
            order_id = row.sf_id if row.sf_object == "Order" else str(source.get("order_id") or "")
            return _Label(
                shipment_id, row.sf_id, row.order_number, generation, numbers,
                [p.skybill_number for p in live],
                label_format or LabelFormat(live[0].label_format),
                [order_id, str(source.get("shipment_id") or "")],
            )  # fmt: skip

    def _fetch(self, label: _Label) -> bytes:
        parts = []
        for number in label.numbers:
            call = partial(self.carrier.reserved_label, number, label.label_format)
            try:
                parts.append(self.gates.call(call).data)
            except CarrierValidationError as exc:
                if exc.code != NOT_STORED:
                    raise
                raise NotFoundError(
                    f"Chronopost holds no stored label for {number} (order "
                    f"{label.order_number or label.sf_id}): labels made before re-printing "
                    "existed were not stored, and how long Chronopost keeps them is not "
                    "documented",
                    code="STORED_LABEL_NOT_FOUND", record_id=label.sf_id,
                    operation=exc.operation,
                ) from exc  # fmt: skip
        return writeback.merge_labels(parts)

    def _keep(
        self, key: str, label: _Label, data: bytes, requested_by: str, attach: bool
    ) -> Reprinted:
        with self.store.session() as session:
            new = insert_ignore(
                session,
                LabelReprint,
                [
                    {
                        "request_key": key,
                        "shipment_id": label.shipment_id,
                        "generation": label.generation,
                        "number": ",".join(label.numbers)[:50],
                        "skybill_numbers": label.skybills,
                        "label_format": label.label_format.value,
                        "label_bytes": data,
                        "requested_by": requested_by[:80],
                        "created_at": self.now(),
                    }
                ],
            )
            row = session.scalars(select(LabelReprint).where(LabelReprint.request_key == key)).one()
            if new and attach and any(label.attach_to):
                writeback.enqueue_rows(
                    session,
                    [
                        writeback.reprint_file_row(
                            shipment_id=label.shipment_id,
                            reprint_id=row.id,
                            size=len(data),
                            label_format=label.label_format.value,
                            title=f"Chronopost label {label.order_number or label.sf_id} "
                            f"(re-print {row.id})",
                            name=f"chronopost-{label.skybills[0]}-reprint-{row.id}",
                            attach_to=label.attach_to,
                        )
                    ],
                )
            if new:
                log.info("label re-printed", shipment_id=label.shipment_id, reprint_id=row.id,
                         skybills=label.skybills, requested_by=requested_by)  # fmt: skip
            return _reprinted(row, created=bool(new))


def _reprinted(row: LabelReprint, *, created: bool) -> Reprinted:
    label_format = LabelFormat(row.label_format)
    numbers = [str(n) for n in row.skybill_numbers]
    suffix = "pdf" if label_format.is_pdf else "zpl"
    return Reprinted(
        row.shipment_id, row.id, numbers, label_format, bytes(row.label_bytes),
        f"chronopost-{numbers[0]}.{suffix}", created,
    )  # fmt: skip
