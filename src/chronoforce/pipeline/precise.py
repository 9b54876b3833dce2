"""The Chrono Precise use case: slots offered for an order, a chosen slot confirmed and printed,
and a rebooking after a failed delivery (issue 23; SPEC-FACTS.md §6, [D] §2.5, §3.5).

`offer` searches the slots for the shipment's ship-to address, weight and product type
(searchDeliverySlot) and keeps the offer (meshCode, transactionID, ranks) in `delivery_slot`.
`confirm` books one of those slots (confirmDeliverySlotV2); its product, service and as codes
then go on the label: the label pipeline reads the shipment's confirmed slot
(`confirmed_slot`) and sends appointmentValue with them. Before the label, a confirm is a
checkout choice; after a failed delivery (status delivery_attempted or exception) it is a
rebooking: recorded, written to the Order and told to the order's Case, and no new label is
made (the parcel is already in Chronopost's hands; docs/precise.md, UNCONFIRMED). Every
carrier call passes the shared gates. Refusals are typed slot errors (domain/errors.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from chronoforce.chronopost.precise import PRODUCT_TYPE_OF, PRODUCT_TYPES
from chronoforce.domain.address import require_sendable
from chronoforce.domain.errors import ConflictError, NoSlotError, NotFoundError, SlotExpiredError
from chronoforce.domain.models import ConfirmedSlot, DeliverySlot, Party, ShipmentStatus
from chronoforce.domain.shipment_state import FRESH
from chronoforce.domain.shipment_state import ShipmentState as S
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.locations import Choice, Locations
from chronoforce.salesforce.fields import SLOT_END, SLOT_LEVEL, SLOT_START
from chronoforce.salesforce.mapping import map_record
from chronoforce.store.db import Store
from chronoforce.store.models import DeliverySlot as SlotRow
from chronoforce.store.models import Shipment, TrackingCase

log = get_logger(component="precise")

PARIS = ZoneInfo("Europe/Paris")
# A rebooking is for a parcel whose delivery failed (SPEC-FACTS §6: "rebook an appointment
# after a failed delivery attempt"); before the label, a slot is a checkout choice.
REBOOKABLE = frozenset({ShipmentStatus.DELIVERY_ATTEMPTED.value, ShipmentStatus.EXCEPTION.value})
BEFORE_LABEL = frozenset({*FRESH, S.EXCEPTION})  # shipment states before any label
SEARCH_DAYS = 7  # the window asked for; Chronopost caps it at today + 14 ([D] §2.5.2.a)
# Slots offered at checkout hold the order's label back this long, so the label waits for the
# customer's choice (the confirm lets it go at once); unchosen, it is made without a slot.
# UNCONFIRMED CHOICE: the documents give the search transaction no lifetime (docs/precise.md).
CHECKOUT_HOLD = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class SlotOffer:
    shipment_id: int
    sf_id: str
    search_id: int
    mesh_code: str
    product_type: str
    slots: tuple[DeliverySlot, ...]
    rebooking: bool = False


@dataclass(frozen=True)
class SlotBooked:
    shipment_id: int
    sf_id: str
    confirmed: ConfirmedSlot
    rebooked: bool
    skybill_numbers: list[str]


# The Precise product code of each productType (chronopost/precise.py's table, reversed).
PRECISE_PRODUCT_OF = {kind: code for code, kind in PRODUCT_TYPE_OF.items()}


def product_type_for(product_code: str, asked: str = "") -> str:
    """The productType to search with: the one asked, else the order's Precise product's."""
    wanted = (asked or PRODUCT_TYPE_OF.get(product_code.strip().upper(), "RDV")).upper()
    if wanted not in PRODUCT_TYPES:
        raise NoSlotError(
            f"unknown Precise product type {asked!r}; one of {', '.join(PRODUCT_TYPES)}",
            code="SLOT_PRODUCT_TYPE",
            field="product_type",
        )
    return wanted


def _plain(slot: DeliverySlot) -> dict[str, Any]:
    return {
        "code": slot.code,
        "date": slot.date.isoformat(),
        "start": slot.start.strftime("%H:%M"),
        "end": slot.end.strftime("%H:%M"),
        "level": slot.tariff_level,
        "open": slot.open,
        "rank": slot.rank,
        "raw_rank": slot.raw_rank,
        "closed_reason": slot.closed_reason,
    }


def _slot(plain: dict[str, Any], mesh: str, transaction: str) -> DeliverySlot:
    return DeliverySlot(
        code=str(plain["code"]),
        date=dt.date.fromisoformat(plain["date"]),
        start=dt.time.fromisoformat(plain["start"]),
        end=dt.time.fromisoformat(plain["end"]),
        tariff_level=str(plain["level"]),
        open=bool(plain["open"]),
        rank=plain.get("rank"),
        raw_rank=int(plain.get("raw_rank") or 0),
        closed_reason=str(plain.get("closed_reason") or ""),
        mesh_code=mesh,
        transaction_id=transaction,
    )


def shipment_of_case(store: Store, case_id: str) -> int | None:
    """The shipment whose tracking opened the Case (the failed delivery's Case), if any."""
    with store.session() as session:
        shipment_id = session.scalar(
            select(TrackingCase.shipment_id).where(TrackingCase.case_id == case_id)
        )
    return int(shipment_id) if shipment_id is not None else None


def confirmed_slot(store: Store, shipment_id: int) -> ConfirmedSlot | None:
    """The shipment's confirmed slot (its latest confirm), None when it has none."""
    with store.session() as session:
        row = session.scalar(
            select(SlotRow)
            .where(SlotRow.shipment_id == shipment_id, SlotRow.state == "confirmed")
            .order_by(SlotRow.id.desc())
            .limit(1)
        )
        return _confirmed(row) if row is not None else None


def slot_product(store: Store, shipment: Shipment) -> str | None:
    """The product of the shipment's confirmed slot (its label carries it), else None: where
    the label's location is chosen, as the slots were searched (issue 23)."""
    slot = confirmed_slot(store, shipment.id)
    return slot.product_code if slot is not None else None


def _confirmed(row: SlotRow) -> ConfirmedSlot:
    assert row.slot_date is not None
    slot = DeliverySlot(
        code=row.slot_code,
        date=row.slot_date,
        start=dt.time.fromisoformat(row.start_time),
        end=dt.time.fromisoformat(row.end_time),
        tariff_level=row.tariff_level,
        open=True,
        rank=row.rank,
        raw_rank=0,
        mesh_code=row.mesh_code,
        transaction_id=row.transaction_id,
    )
    return ConfirmedSlot(slot, row.product_code, row.service_code, row.as_code)


@dataclass
class Precise:
    store: Store
    carrier: Any  # ChronopostClient (search_slots, confirm_slot)
    gates: Gates
    shipper: Party
    now: Callable[[], dt.datetime]
    mapping: Any  # MappingConfig: how the shipment row's record reads (ship-to, weight)
    # The shipper locations (issue 23): slots are searched from the order's own location.
    locations: Locations | None = None

    # --- offer -----------------------------------------------------------------------------

    def offer(self, shipment_id: int, product_type: str = "") -> SlotOffer:
        """The slots Chronopost offers for the shipment's address, open and closed, kept for
        the confirm. NoSlotError when none is open; OutOfZoneError outside Precise's zone."""
        with self.store.session() as session:
            row = self._shipment(session, shipment_id)
            rebook = self._rebooking(row)
            order = map_record(
                (row.source or {}).get("record") or {},
                (row.source or {}).get("items") or [],
                self.mapping,
            )
            recipient_party = require_sendable(order.recipient, "recipient")
            recipient = recipient_party.address  # ISO country
            weight = sum((p.weight_kg for p in order.parcels), Decimal(0)) or Decimal(1)
            kind = product_type_for(row.product_code or order.product_override, product_type)
            origin = self._origin(row, order, recipient_party, kind)
            shipper = self.shipper if origin is None else origin.site.party()
            location = "" if origin is None else origin.key
            sf_id = row.sf_id
        begin = self.now().astimezone(PARIS).replace(tzinfo=None, microsecond=0)
        slots = self.gates.call(
            lambda: self.carrier.search_slots(
                shipper.address,
                recipient,
                begin=begin,
                end=begin + dt.timedelta(days=SEARCH_DAYS),
                product_type=kind,
                weight_kg=weight,
                # the parcel is already with Chronopost when rebooking: any delivery day
                is_delivery_date=rebook,
                location=location,
            )
        )
        if not any(s.open for s in slots):
            raise NoSlotError(
                f"Chronopost offers no open Precise slot for {recipient.postal_code} "
                f"{recipient.city}",
                record_id=sf_id,
                field="slot",
            )
        mesh = slots[0].mesh_code
        transaction = slots[0].transaction_id
        with self.store.session() as session:
            if not rebook:  # the label waits for the choice (CHECKOUT_HOLD)
                session.get_one(Shipment, shipment_id).next_attempt_at = self.now() + CHECKOUT_HOLD
            search = SlotRow(
                shipment_id=shipment_id,
                state="offered",
                reason="rebook" if rebook else "checkout",
                product_type=kind,
                mesh_code=mesh,
                transaction_id=transaction,
                offered=[_plain(s) for s in slots],
                created_at=self.now(),
            )
            session.add(search)
            session.flush()
            search_id = search.id
        log.info("slots offered", shipment_id=shipment_id, open=sum(s.open for s in slots))
        return SlotOffer(shipment_id, sf_id, search_id, mesh, kind, slots, rebook)

    # --- confirm ---------------------------------------------------------------------------

    def confirm(
        self, shipment_id: int, day: dt.date, code: str, *, case_id: str = ""
    ) -> SlotBooked:
        """Book the slot `code` on `day` from the shipment's latest offer; the slot and its
        codes are stored, written to Salesforce, and (before the label) printed on it. A
        rebooking is told to `case_id` (the Case that asked), else to the tracking Case."""
        with self.store.session() as session:
            row = self._shipment(session, shipment_id)
            rebook = self._rebooking(row)
            search = session.scalar(
                select(SlotRow)
                .where(SlotRow.shipment_id == shipment_id, SlotRow.state == "offered")
                .order_by(SlotRow.id.desc())
                .limit(1)
            )
            if search is None:
                raise SlotExpiredError(
                    "no slot offer for this shipment: ask for the slots first",
                    code="SLOT_NOT_OFFERED",
                    record_id=row.sf_id,
                )
            wanted = next(
                (s for s in search.offered if s["date"] == day.isoformat() and s["code"] == code),
                None,
            )
            if wanted is None:
                raise NotFoundError(
                    f"slot {code} on {day} was not offered; choose one of the last offer",
                    code="SLOT_NOT_FOUND",
                    record_id=row.sf_id,
                    field="slot",
                )
            slot = _slot(wanted, search.mesh_code, search.transaction_id)
            kind, search_id, sf_id = search.product_type, search.id, row.sf_id
            location = self._contract(row, kind)
        confirmed: ConfirmedSlot = self.gates.call(
            lambda: self.carrier.confirm_slot(slot, kind, location=location)
        )
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            for previous in session.scalars(
                select(SlotRow).where(
                    SlotRow.shipment_id == shipment_id, SlotRow.state == "confirmed"
                )
            ):
                previous.state = "replaced"
            search = session.get_one(SlotRow, search_id)
            search.state = "confirmed"
            search.slot_code, search.slot_date = slot.code, slot.date
            search.start_time = slot.start.strftime("%H:%M")
            search.end_time = slot.end.strftime("%H:%M")
            search.tariff_level, search.rank = slot.tariff_level, slot.rank
            search.product_code = confirmed.product_code
            search.service_code = confirmed.service_code
            search.as_code = confirmed.as_code
            search.confirmed_at = self.now()
            skybills = [p.skybill_number for p in row.parcels if p.live]
            if not rebook:  # chosen at checkout: the label may go now, and carries the slot
                row.next_attempt_at = None
            self._write_back(session, row, confirmed, rebook, case_id)
        log.info("slot confirmed", shipment_id=shipment_id, rebook=rebook, level=slot.tariff_level)
        return SlotBooked(shipment_id, sf_id, confirmed, rebook, skybills)

    # --- helpers ---------------------------------------------------------------------------

    def _shipment(self, session: Any, shipment_id: int) -> Shipment:
        row: Shipment | None = session.get(Shipment, shipment_id)
        if row is None:
            raise NotFoundError(f"no shipment {shipment_id}", code="SHIPMENT_NOT_FOUND")
        if row.intent != "outbound":
            raise ConflictError(
                "Precise slots are for outbound deliveries", code="SLOT_NOT_OUTBOUND",
                record_id=row.sf_id,
            )  # fmt: skip
        return row

    def _origin(self, row: Shipment, order: Any, recipient: Party, kind: str) -> Choice | None:
        """The location its label was made at, else the one the order chooses (its field, a
        rule, the default) for its Precise product: the one of the searched `kind` (2O, 2E,
        2F), else (AMBIENT) the row's or the order's product code. None: no locations."""
        if self.locations is None:
            return None
        code = PRECISE_PRODUCT_OF.get(kind) or row.product_code or order.product_override
        record = (row.source or {}).get("record") or {}
        facts = order_facts(order, recipient)
        return self.locations.choose_for(record, facts, code or None, stored=row)

    def _contract(self, row: Shipment, kind: str) -> str:
        """The location whose contract searches and confirms the slots (the label's)."""
        order = map_record(
            (row.source or {}).get("record") or {},
            (row.source or {}).get("items") or [],
            self.mapping,
        )
        origin = self._origin(row, order, require_sendable(order.recipient, "recipient"), kind)
        return "" if origin is None else origin.key

    def _rebooking(self, row: Shipment) -> bool:
        """False before the label (a checkout choice), True after a failed delivery; any other
        moment is refused: the label is made, and no delivery failed."""
        if row.state in BEFORE_LABEL and not any(p.live for p in row.parcels):
            return False
        if row.status in REBOOKABLE:
            return True
        raise ConflictError(
            f"the order's label is made (status {row.status}): a slot can be chosen before the "
            "label, or rebooked after a failed delivery",
            code="SLOT_NOT_NOW",
            record_id=row.sf_id,
        )

    def _write_back(
        self, session: Any, row: Shipment, confirmed: ConfirmedSlot, rebook: bool, case_id: str
    ) -> None:
        order_id = row.sf_id if row.sf_object == "Order" else str(row.source.get("order_id") or "")
        slot = confirmed.slot
        start = slot.starts_at.replace(tzinfo=PARIS).astimezone(dt.UTC)
        end = slot.ends_at.replace(tzinfo=PARIS).astimezone(dt.UTC)
        rows = []
        if order_id:
            rows.append(
                writeback.outbox_row(
                    sf_object="Order",
                    operation="update",
                    sf_id=order_id,
                    shipment_id=row.id,
                    payload={
                        SLOT_START.api: start.isoformat().replace("+00:00", "Z"),
                        SLOT_END.api: end.isoformat().replace("+00:00", "Z"),
                        SLOT_LEVEL.api: slot.tariff_level,
                    },
                )
            )
        writeback.enqueue_rows(session, rows)
        if rebook:
            case = session.scalar(select(TrackingCase).where(TrackingCase.shipment_id == row.id))
            case_id = case_id or (case.case_id if case is not None else "")
            if case_id:  # the Case that asked, or the one the failed delivery opened
                when = f"{slot.date:%d/%m/%Y} {slot.start:%H:%M}-{slot.end:%H:%M}"
                writeback.enqueue(
                    session,
                    sf_object="CaseComment",
                    operation="create",
                    payload={
                        "ParentId": case_id,
                        "CommentBody": f"Chrono Precise delivery rebooked: {when} (Paris time)",
                    },
                    shipment_id=row.id,
                )
