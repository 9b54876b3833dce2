"""The pickup use case: a Chronopost driver comes for an order's parcels, once per day.

Labeled parcels get a pickup of their own (creerEnlevementNational); an order not labeled yet
gets its label made now by the label pipeline with the pickup data (`esdValue`). Asking again
for the same order and day answers the pickup booked; an explicit change cancels the booked
pickups first (annulerEnlevements), then books the new one. Every call goes through the shared
gates under the shipment's lease; the reference sent (refEsdClient, unique per day at Chronopost)
is written on the row before the call, so a retry after a lost answer is refused by Chronopost
as a duplicate rather than paid for twice. Times are Paris local; Salesforce gets instants.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from chronoforce.domain.errors import ChronoforceError, ConflictError, NotFoundError
from chronoforce.domain.models import Parcel as ParcelSpec
from chronoforce.domain.models import Party, Pickup
from chronoforce.domain.routing import RoutingFacts
from chronoforce.domain.shipment_state import LabelOutcome, ShipmentState, check_transition
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.labels import BEFORE_PICKUP, LabelPipeline
from chronoforce.pipeline.locations import Locations
from chronoforce.pipeline.pickup_times import pickup_fields, pickup_instant, pickup_plain
from chronoforce.salesforce.mapping import MappingConfig, map_record
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment
from chronoforce.store.ops import release_lease, take_lease

log = get_logger(component="pickups")

REFERENCE_MAX = 32  # refEsdClient (SPEC-FACTS §4)
DUPLICATE_REFERENCE = "CHRONOPOST_25"  # esd 25: this refEsdClient is booked for that day


@dataclass(frozen=True)
class PickupBooked:
    """The order's pickup for one day; `booked` when this ask made it."""

    shipment_id: int
    sf_id: str
    number: str
    date: dt.datetime | None  # an instant (UTC)
    skybill_numbers: list[str]
    booked: bool
    cancelled: list[str] = field(default_factory=list)  # pickups replaced by this one


@dataclass
class Pickups:
    store: Store
    carrier: Any  # ChronopostClient (book_pickup, cancel_pickups)
    gates: Gates
    labels: LabelPipeline
    shipper: Party
    now: Callable[[], dt.datetime]
    lease: dt.timedelta = dt.timedelta(minutes=5)
    owner: str = field(default_factory=lambda: f"pickup-{uuid.uuid4().hex[:8]}")
    # The shipment's shipper location (issue 23): the driver comes to its address, booked under
    # its contract. None: `shipper` and the main account always.
    locations: Locations | None = None
    mapping: MappingConfig | None = None  # reads a row's record when it has no location yet

    def book(self, shipment_id: int, pickup: Pickup, *, change: bool = False) -> PickupBooked:
        """The day's pickup for the order's outbound shipment (recorded by the caller)."""
        day = pickup.date.isoformat()
        with self.store.session() as session:
            row = session.get(Shipment, shipment_id)
            if row is None:
                raise NotFoundError(f"no shipment {shipment_id}", code="SHIPMENT_NOT_FOUND")
            self._check(row)
            booked = dict((row.source or {}).get("pickups") or {})
            live = [(p.skybill_number, Decimal(str(p.weight_kg))) for p in row.parcels if p.live]
            if day in booked and not change:
                return self._answer(row, day, booked[day], [n for n, _ in live], booked=False)
            labeled = row.state == ShipmentState.LABELED and bool(live)
            if not labeled:  # the label books the driver: the pipeline reads it from the row
                row.source = {**(row.source or {}), "pickup": pickup_plain(pickup)}
                if row.state == ShipmentState.EXCEPTION:  # asked again: a fresh try
                    row.state = check_transition(
                        row.state, ShipmentState.RETRY, record_id=row.sf_id
                    )
                row.attempts, row.next_attempt_at = 0, None
        if not labeled:
            return self._with_label(shipment_id, day)
        return self._book_alone(shipment_id, pickup, live, replace=change)

    def _facts(self, row: Shipment) -> RoutingFacts:
        """The routing facts of the row's stored record (for a location rule)."""
        source = row.source or {}
        if self.mapping is None:
            return RoutingFacts(country="")
        order = map_record(source.get("record") or {}, source.get("items") or [], self.mapping)
        return order_facts(order, order.recipient)

    def _check(self, row: Shipment) -> None:
        if row.status not in BEFORE_PICKUP:
            raise ConflictError(
                f"the order's parcels are past pickup (status {row.status})",
                code="ALREADY_PICKED_UP",
                record_id=row.sf_id,
            )
        if row.state in (ShipmentState.CALLING, ShipmentState.CHANGED):
            raise ConflictError(
                "the order's label is being made; try again", code="SHIPMENT_BUSY",
                record_id=row.sf_id,
            )  # fmt: skip

    # --- labeled parcels: a pickup of their own ------------------------------------------

    def _book_alone(
        self,
        shipment_id: int,
        pickup: Pickup,
        live: list[tuple[str, Decimal]],
        *,
        replace: bool,
    ) -> PickupBooked:
        day = pickup.date.isoformat()
        with self.store.session() as session:
            if not take_lease(
                session, shipment_id, self.owner, self.now(), self.lease, (ShipmentState.LABELED,)
            ):
                raise ConflictError("the order's shipment is busy; try again", code="SHIPMENT_BUSY")
            row = session.get_one(Shipment, shipment_id)
            site = None
            if self.locations is not None:  # where the label left from, else as it would
                site = self.locations.choose_for(
                    (row.source or {}).get("record") or {},
                    lambda: self._facts(row),
                    row.product_code or None,
                    stored=row,
                ).site
            source = dict(row.source or {})
            booked = dict(source.get("pickups") or {})
            # Written before the call: a retry after a lost answer sends the same reference.
            calling = source.get("pickup_calling") or {}
            if calling.get("day") != day:
                calling = {"day": day, "reference": _reference(row, len(booked))}
            source["pickup_calling"] = calling
            row.source = source
        cancelled: list[str] = []
        shipper, where = self.shipper, {}
        if site is not None:
            shipper, where = site.party(), {"location": site.key}
        try:
            if replace and booked:
                cancelled = self._cancel_booked(shipment_id, booked, where)
            answer = self.gates.call(
                lambda: self.carrier.book_pickup(
                    shipper,
                    pickup,
                    tuple(ParcelSpec(weight_kg=weight) for _, weight in live),
                    tuple(number for number, _ in live),
                    calling["reference"],
                    **where,
                )
            )
        except ChronoforceError as exc:
            with self.store.session() as session:
                release_lease(session, shipment_id, self.owner)
            if exc.code == DUPLICATE_REFERENCE:
                raise ConflictError(
                    f"Chronopost has a pickup under reference {calling['reference']} for {day} "
                    "already (an earlier request whose answer was lost): its ESD number is in "
                    "Chronopost's confirmation e-mail",
                    code="PICKUP_ALREADY_BOOKED",
                    operation="creerEnlevementNational",
                ) from exc
            raise
        when = pickup_instant(answer.date, pickup)
        entry = {"number": answer.number, "date": when.isoformat() if when else None}
        row_answer = self._store(shipment_id, day, entry, cancelled)
        log.info("pickup booked", shipment_id=shipment_id, esd=answer.number, replaced=cancelled)
        return row_answer

    def _cancel_booked(
        self, shipment_id: int, booked: dict[str, Any], where: dict[str, str]
    ) -> list[str]:
        """annulerEnlevements for every pickup booked; forgotten at once once cancelled."""
        numbers = tuple(str(b["number"]) for b in booked.values() if b.get("number"))
        if numbers:
            self.gates.call(lambda: self.carrier.cancel_pickups(numbers, **where))
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            row.source = {**(row.source or {}), "pickups": {}}
        return list(numbers)

    def _store(
        self, shipment_id: int, day: str, entry: dict[str, Any], cancelled: list[str]
    ) -> PickupBooked:
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            source = dict(row.source or {})
            source["pickups"] = {**(source.get("pickups") or {}), day: entry}
            source.pop("pickup_calling", None)
            row.source = source
            when = dt.datetime.fromisoformat(entry["date"]) if entry.get("date") else None
            writeback.enqueue(
                session, sf_object=row.sf_object, operation="update", sf_id=row.sf_id,
                shipment_id=shipment_id, payload=pickup_fields(entry["number"], when),
            )  # fmt: skip
            release_lease(session, shipment_id, self.owner)
            numbers = [p.skybill_number for p in row.parcels if p.live]
            return self._answer(row, day, entry, numbers, booked=True, cancelled=cancelled)

    # --- not labeled yet: the label books the driver -------------------------------------

    def _with_label(self, shipment_id: int, day: str) -> PickupBooked:
        errors: list[ChronoforceError] = []
        outcome = self.labels.process(shipment_id, errors)
        with self.store.session() as session:
            row = session.get_one(Shipment, shipment_id)
            entry = ((row.source or {}).get("pickups") or {}).get(day)
            if outcome == LabelOutcome.LABELED and entry:
                numbers = [p.skybill_number for p in row.parcels if p.live]
                return self._answer(row, day, entry, numbers, booked=True)
            sf_id = row.sf_id
        if errors:
            raise errors[-1].with_context(record_id=sf_id, operation="pickup.label")
        raise ConflictError(
            "the order's label is being made; try again", code="SHIPMENT_BUSY", record_id=sf_id
        )

    @staticmethod
    def _answer(
        row: Shipment, day: str, entry: dict[str, Any], numbers: list[str], *, booked: bool,
        cancelled: list[str] | None = None,
    ) -> PickupBooked:  # fmt: skip
        when = entry.get("date")
        return PickupBooked(
            shipment_id=row.id,
            sf_id=row.sf_id,
            number=str(entry.get("number") or ""),
            date=dt.datetime.fromisoformat(when) if when else None,
            skybill_numbers=numbers,
            booked=booked,
            cancelled=cancelled or [],
        )


def outbound_shipment(store: Store, sf_object: str, sf_id: str) -> int:
    with store.session() as session:
        shipment_id = session.scalar(
            select(Shipment.id).where(
                Shipment.sf_object == sf_object,
                Shipment.sf_id == sf_id,
                Shipment.intent == "outbound",
            )
        )
    if shipment_id is None:  # recorded just before: only a concurrent delete could race
        raise ConflictError("the order's shipment row vanished; try again", code="SHIPMENT_BUSY")
    return int(shipment_id)


def _reference(row: Shipment, booked_before: int) -> str:
    """refEsdClient: the shipment's reference; a change gets a suffix, so it is never a
    duplicate of the pickup it replaces (whether a cancelled one keeps its reference is not
    documented)."""
    base = row.shipper_ref or row.order_number or row.sf_id
    suffix = f"-{booked_before + 1}" if booked_before else ""
    return base[: REFERENCE_MAX - len(suffix)] + suffix
