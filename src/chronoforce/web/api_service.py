"""The API's use cases over the process's runtime: each endpoint's pipeline use case, wired once.

One `ApiService` per app. The pipeline does the work (rates, relay search, returns, cancels,
pickups: pipeline/), every carrier call through the runtime's shared gates; this module reads
the order from Salesforce, hands it over and turns the answer into the API's models. It never
calls the Chronopost client, the outbox flusher or the store's tables itself. Built lazily, so
health and webhooks serve without Salesforce credentials: rates and relay points need only the
carrier side; orders, returns, cancels and pickups the full runtime.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from chronoforce.config import Settings
from chronoforce.domain.address import normalize_party, require_sendable
from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import NotFoundError, PermanentError, RefusedError
from chronoforce.domain.models import LabelFormat, Parcel, Pickup
from chronoforce.domain.routing import RoutingFacts, RoutingRules
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.pipeline.cancel import Cancels
from chronoforce.pipeline.detection import plain_record
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.gates import Gates, carrier_side
from chronoforce.pipeline.locations import routed_product
from chronoforce.pipeline.pickups import Pickups, outbound_shipment
from chronoforce.pipeline.precise import Precise, SlotBooked, SlotOffer, shipment_of_case
from chronoforce.pipeline.preparation import shipper_party
from chronoforce.pipeline.rates import Place as Arrival
from chronoforce.pipeline.rates import Quote, Quoter, RateCacheTable, RateWriter, Route
from chronoforce.pipeline.relays import RelaySearch
from chronoforce.pipeline.reprint import Reprinted, Reprints
from chronoforce.pipeline.returns import Returns
from chronoforce.salesforce.fields import CASE_ORDER, CASE_TYPE
from chronoforce.salesforce.mapping import (
    MappedOrder,
    case_soql,
    fetch_items,
    items_for,
    map_record,
    soql_for_record,
)
from chronoforce.web.api_config import ApiConfig
from chronoforce.web.api_models import (
    CancelAnswer,
    PickupAnswer,
    PickupRequest,
    PointAddress,
    RateChoice,
    RatesAnswer,
    RatesRequest,
    RateWritten,
    RelayPointOut,
    RelayPointsAnswer,
    ReturnAnswer,
    ReturnRequest,
    SlotBookedAnswer,
    SlotChoice,
    SlotOut,
    SlotsAnswer,
)

# How long a request waits for the cluster's carrier capacity before answering 503 CARRIER_BUSY
# (Retry-After 1): a caller such as an Apex callout gives up after 10 s by default.
API_WAIT_S = 5.0


@dataclass(frozen=True)
class OrderRead:
    record: dict[str, Any]
    items: list[Any]
    order: MappedOrder


class ApiService:
    """The API's use cases over one runtime (shared by every request; thread-safe).

    A runtime handed in (`chronoforce run`, tests) is used as it is, gates included; one built
    here gets the cluster's shared gates, as a worker's does.
    """

    def __init__(self, settings: Settings, config: ApiConfig, runtime: Any = None) -> None:
        self.settings = settings
        self.config = config
        self._runtime = runtime if getattr(runtime, "carrier", None) is not None else None
        self._side: tuple[Any, Any, Gates] | None = None
        self._runtime_built = False
        self._lock = threading.Lock()
        self._quoter: Quoter | None = None

    # --- wiring --------------------------------------------------------------------------

    @property
    def runtime(self) -> Any:
        with self._lock:
            if self._runtime is None:
                from chronoforce.pipeline.runtime import build_runtime

                carrier = self._side[0] if self._side is not None else None
                runtime = build_runtime(self.settings, cluster=True, carrier=carrier)
                self._runtime, self._runtime_built = runtime, True
            return self._runtime

    def _carrier_side(self) -> tuple[Any, Any, Gates]:
        """(carrier, store, gates): the runtime's when there is one, else opened here; the
        gates are the shared ones, waited for at most API_WAIT_S."""
        if self._runtime is not None:
            side = (self._runtime.carrier, self._runtime.store, self._runtime.labels.gates)
        else:
            with self._lock:
                if self._side is None:
                    from chronoforce.worker import worker_config

                    config = worker_config(self.settings.worker)
                    self._side = carrier_side(self.settings, config)
                side = self._side
        return side[0], side[1], replace(side[2], wait_s=min(side[2].wait_s, API_WAIT_S))

    def now(self) -> dt.datetime:
        if self._runtime is not None:
            now: dt.datetime = self._runtime.now()
            return now
        return SYSTEM_CLOCK.now()

    @property
    def rules(self) -> RoutingRules:
        """The label preparation's rules when there is a runtime (one copy), else the settings'."""
        prepare = getattr(getattr(self._runtime, "labels", None), "prepare", None)
        rules = getattr(prepare, "rules", None)
        if isinstance(rules, RoutingRules):
            return rules
        return RoutingRules.from_mapping(self.settings.routing)

    @property
    def quoter(self) -> Quoter:
        if self._quoter is None:
            carrier, store, gates = self._carrier_side()
            self._quoter = Quoter(
                carrier=carrier,
                cache=RateCacheTable(store, self.config.rate_cache_ttl_s),
                rules=self.rules,
                band_kg=self.config.weight_band_kg,
                now=self.now,
                gates=gates,
            )
        return self._quoter

    def flush_own_writes(self) -> None:
        """A one-shot caller (the CLI) with no runner beside it: send the Salesforce writes its
        use cases queued, through the outbox (a runtime handed in is flushed by its runner)."""
        if self._runtime_built and self._runtime is not None:
            self._runtime.flush()

    def close(self) -> None:
        """Close what this service opened itself (a runtime handed in is its owner's)."""
        if self._runtime_built and self._runtime is not None:
            self._runtime.close()  # with the carrier it was given
        elif self._side is not None:
            self._side[0].close()
        if self._side is not None:
            _, store, gates = self._side
            gates.close()
            store.dispose()

    def _cancels(self) -> Cancels:
        runtime = self.runtime
        carrier, store, gates = self._carrier_side()
        return Cancels(store, carrier, gates, runtime.now, lease=runtime.labels.lease)

    # --- orders --------------------------------------------------------------------------

    def read_order(self, order_id: str) -> OrderRead:
        """The order as the label pipeline reads it; NotFoundError when Salesforce lacks it."""
        runtime = self.runtime
        mapping = runtime.mapping
        records = list(runtime.salesforce.query_iter(soql_for_record(mapping, order_id)))
        if not records:
            raise NotFoundError(
                f"no {mapping.trigger_object} {order_id} in Salesforce",
                code="ORDER_NOT_FOUND",
                record_id=order_id,
            )
        by_order = fetch_items(runtime.salesforce.query_iter, mapping, records)
        record = plain_record(dict(records[0]))
        items = [plain_record(i) for i in items_for(records[0], mapping, by_order)]
        return OrderRead(record, items, map_record(record, items, mapping))

    def case_order(self, case_id: str) -> str:
        """The order a Case of the configured type is about (for its return label)."""
        found = list(self.runtime.salesforce.query_iter(case_soql(case_id)))
        if not found:
            raise NotFoundError(
                f"no Case {case_id} in Salesforce", code="CASE_NOT_FOUND", record_id=case_id
            )
        case = found[0]
        wanted = self.config.return_case_type
        if (case.get(CASE_TYPE.api) or "") != wanted:
            raise PermanentError(
                f"Case {case_id} is of type {case.get('Type')!r}, not {wanted!r}",
                code="CASE_TYPE", record_id=case_id, field=CASE_TYPE.api,
            )  # fmt: skip
        order_id = str(case.get(CASE_ORDER.api) or "")
        if not order_id:
            raise PermanentError(
                f"Case {case_id} names no order", code="CASE_WITHOUT_ORDER",
                record_id=case_id, field=CASE_ORDER.api,
            )  # fmt: skip
        return order_id

    # --- rates ---------------------------------------------------------------------------

    def _departure(self) -> tuple[str, str]:
        address = shipper_party(self.settings).address
        return address.country or "FR", address.postal_code

    def _quote(self, request: RatesRequest) -> Quote:
        dep_country, dep_postal = self._departure()
        if request.order_id:
            read = self.read_order(request.order_id)
            # The address as the label would carry it (country codes, postal code, city).
            recipient = normalize_party(read.order.recipient, "recipient").party
            address = recipient.address
            facts = order_facts(read.order, recipient)
            locations = self.runtime.locations
            if locations is not None:  # from the order's shipper locations (issue 23)
                arrival = Arrival(address.country.upper(), address.postal_code, address.city)
                stored = self._outbound(read.order.sf_id)
                return self.quoter.quote_located(
                    locations, read.record, facts, arrival, read.order.sf_id, stored=stored
                )
            where = Route(
                dep_country, dep_postal, address.country.upper(), address.postal_code, address.city
            )
            return self.quoter.quote(where, facts, read.order.sf_id)
        assert request.to is not None and request.parcels
        to = request.to
        parcels = tuple(
            Parcel(p.weight_kg, p.length_cm, p.width_cm, p.height_cm) for p in request.parcels
        )
        where = Route(dep_country, dep_postal, to.country.upper(), to.postal_code.strip(), to.city)
        facts = RoutingFacts(
            country=where.country,
            postal_code=where.postal_code,
            parcels=parcels,
            relay_point_id=request.relay_point_id,
            priority=request.priority,
            saturday_delivery=request.saturday_delivery,
        )
        return self.quoter.quote(where, facts)

    def _outbound(self, sf_id: str) -> Any:
        """The order's outbound row when its label was made there (a re-quote from there)."""
        rows = self.runtime.shipments([sf_id])
        made = [s for s in rows if s.intent == "outbound" and s.generation > 0]
        return next((s for s in made if s.state != ShipmentState.CANCELLED), None)

    def rates(self, request: RatesRequest) -> RatesAnswer:
        return RatesAnswer.model_validate(asdict(self._quote(request)))

    def write_rate(self, order_id: str, choice: RateChoice) -> RateWritten:
        """Quote the order (the cache usually answers), then one update of the Order record."""
        quote = self._quote(RatesRequest(order_id=order_id))
        runtime = self.runtime
        writer = RateWriter(
            runtime.salesforce, runtime.mapping.trigger_object, self.config.cost_includes_vat
        )
        target = ""
        if runtime.mapping.trigger_object != "Order":
            # A Shipment trigger: the rate fields are the Order's (Shipment has none of them).
            target = runtime.order_of(self.read_order(order_id).record)
            if not target:
                raise RefusedError(
                    f"{runtime.mapping.trigger_object} {order_id} reaches no Order to write the "
                    "rate to",
                    code="NO_ORDER",
                    record_id=order_id,
                    field="order_id",
                )
        return RateWritten.model_validate(
            asdict(writer.write(quote, order_id, choice.product_code, target))
        )

    # --- relay points --------------------------------------------------------------------

    def relay_points(
        self, postal_code: str | None, country: str, city: str, near_order: str | None, limit: int
    ) -> RelayPointsAnswer:
        if near_order:
            order = self.read_order(near_order).order
            address = require_sendable(order.recipient, "recipient").address  # issue 20
            postal_code, country, city = address.postal_code, address.country, address.city
        if not postal_code:
            raise PermanentError(
                f"order {near_order} has no shipping postal code",
                code="POSTAL_CODE_MISSING",
                record_id=near_order or "",
                field="postal_code",
            )
        carrier, _, gates = self._carrier_side()
        points = RelaySearch(carrier, gates).near(postal_code, country, city, limit)
        return RelayPointsAnswer(
            postal_code=postal_code,
            country=country.upper(),
            points=[
                RelayPointOut(
                    id=p.id,
                    name=p.name,
                    address=PointAddress(
                        line1=p.address.line1,
                        line2=p.address.line2,
                        postal_code=p.address.postal_code,
                        city=p.address.city,
                        country=p.address.country,
                    ),
                    opening_hours=list(p.opening_hours),
                    distance_m=p.distance_m,
                )
                for p in points
            ],
        )

    # --- returns, cancels, pickups -------------------------------------------------------

    def return_label(self, order_id: str, ask: ReturnRequest) -> ReturnAnswer:
        read = self.read_order(order_id)
        runtime = self.runtime
        made = Returns(runtime.store, runtime.labels, runtime.now).ask(
            read.order, read.record, read.items, case_id=ask.case_id or "",
            returns_reference=ask.returns_reference, order_id=runtime.order_of(read.record),
        )  # fmt: skip
        return ReturnAnswer(
            order_id=made.sf_id,
            case_id=made.case_id or None,
            shipment_id=made.shipment_id,
            skybill_numbers=made.skybill_numbers,
            returns_reference=made.returns_reference,
            status=made.status,
            created=made.created,
        )

    def cancel(self, shipment_id: int) -> CancelAnswer:
        done = self._cancels().cancel(shipment_id)
        return CancelAnswer(
            shipment_id=done.shipment_id,
            cancelled=done.cancelled,
            status=done.status,
            opens_at=done.opens_at,
        )

    def cancel_order(self, order_id: str, intent: str) -> CancelAnswer:
        cancels = self._cancels()
        shipment_id = cancels.shipment_of(self.runtime.mapping.trigger_object, order_id, intent)
        return self.cancel(shipment_id)

    def _pickup_window(self, ask: PickupRequest, read: OrderRead, shipment_id: int) -> Pickup:
        """The window asked for; a time left out comes from the order's location defaults."""
        if ask.ready_time is not None and ask.closing_time is not None:
            return Pickup(ask.date, ask.ready_time, ask.closing_time, ask.instructions)
        locations = self.runtime.locations
        if locations is None:
            return _window_of(ask, None, "")
        stored = next((s for s in self.runtime.shipments([read.order.sf_id])
                       if s.id == shipment_id), None)  # fmt: skip
        recipient = normalize_party(read.order.recipient, "recipient").party
        facts = order_facts(read.order, recipient)
        # Where its label was made, else where it will be (the label's product, issue 23).
        product = routed_product(facts, self.runtime.now(), self.rules)
        site = locations.choose_for(read.record, facts, product, stored=stored).site
        return _window_of(ask, site.pickup, site.key)

    def book_pickup(self, order_id: str, ask: PickupRequest) -> PickupAnswer:
        runtime = self.runtime
        read = self.read_order(order_id)
        runtime.record([read.record], None)
        shipment_id = outbound_shipment(
            runtime.store, runtime.mapping.trigger_object, read.order.sf_id
        )
        carrier, store, gates = self._carrier_side()
        pickups = Pickups(
            store, carrier, gates, runtime.labels, shipper_party(self.settings), runtime.now,
            lease=runtime.labels.lease,
            locations=runtime.locations, mapping=runtime.mapping,  # issue 23
        )  # fmt: skip
        pickup = self._pickup_window(ask, read, shipment_id)
        booked = pickups.book(shipment_id, pickup, change=ask.change)
        return PickupAnswer(
            order_id=booked.sf_id,
            shipment_id=booked.shipment_id,
            pickup_number=booked.number,
            pickup_date=booked.date,
            skybill_numbers=booked.skybill_numbers,
            relabeled=False,
            booked=booked.booked,
            cancelled_pickups=booked.cancelled,
        )

    # --- label re-print (issue 21 item 5) -------------------------------------------------

    def reprints(self) -> Reprints:
        """The re-print use case over the carrier side and the shared gates (console too)."""
        carrier, store, gates = self._carrier_side()
        return Reprints(store, carrier, gates, self.now)

    def reprint(
        self, shipment_id: int, mode: LabelFormat | None, key: str | None, asker: str
    ) -> Reprinted:
        """`key`: the asker's own request id (Idempotency-Key): asked again, the same answer."""
        request_key = f"api:{asker}:{key}" if key else None
        return self.reprints().reprint(
            shipment_id, label_format=mode, request_key=request_key, requested_by=f"api:{asker}"
        )

    # --- Chrono Precise slots (issue 23) -------------------------------------------------

    def _precise(self) -> Precise:
        runtime = self.runtime
        carrier, store, gates = self._carrier_side()
        locations = runtime.locations  # issue 23
        return Precise(
            store,
            carrier,
            gates,
            shipper_party(self.settings),
            runtime.now,
            runtime.mapping,
            locations,
        )

    def _order_shipment(self, order_id: str) -> int:
        runtime = self.runtime
        read = self.read_order(order_id)
        runtime.record([read.record], None)
        return outbound_shipment(runtime.store, runtime.mapping.trigger_object, read.order.sf_id)

    def order_slots(self, order_id: str, product_type: str) -> SlotsAnswer:
        return _slots_answer(self._precise().offer(self._order_shipment(order_id), product_type))

    def choose_slot(self, order_id: str, choice: SlotChoice) -> SlotBookedAnswer:
        shipment_id = self._order_shipment(order_id)
        return _booked_answer(self._precise().confirm(shipment_id, choice.date, choice.code))

    def shipment_slots(self, shipment_id: int, product_type: str) -> SlotsAnswer:
        return _slots_answer(self._precise().offer(shipment_id, product_type))

    def rebook(self, shipment_id: int, choice: SlotChoice, case_id: str = "") -> SlotBookedAnswer:
        precise = self._precise()
        return _booked_answer(
            precise.confirm(shipment_id, choice.date, choice.code, case_id=case_id)
        )

    def case_shipment(self, case_id: str) -> int:
        """The shipment a Case is about: the one whose tracking opened it, else the outbound
        shipment of the order the Case names (Chronopost_Order__c)."""
        _, store, _ = self._carrier_side()
        found = shipment_of_case(store, case_id)
        if found is not None:
            return found
        cases = list(self.runtime.salesforce.query_iter(case_soql(case_id)))
        order_id = str((cases[0].get(CASE_ORDER.api) if cases else "") or "")
        if not order_id:
            raise NotFoundError(
                f"Case {case_id} is not in Salesforce or names no order",
                code="CASE_NOT_FOUND", record_id=case_id, field=CASE_ORDER.api,
            )  # fmt: skip
        runtime = self.runtime
        return outbound_shipment(runtime.store, runtime.mapping.trigger_object, order_id)


def _window_of(ask: PickupRequest, defaults: Any, location: str) -> Pickup:
    """The pickup asked for, its missing times from the location's defaults (issue 23)."""
    ready = ask.ready_time or (defaults.ready_time if defaults else None)
    closing = ask.closing_time or (defaults.closing_time if defaults else None)
    missing = "ready_time" if ready is None else "closing_time" if closing is None else ""
    if missing or ready is None or closing is None:
        raise RefusedError(
            f"{missing} is needed: location {location} has no pickup defaults",
            code="PICKUP_TIME_MISSING", field=missing,
        )  # fmt: skip
    if closing <= ready:
        raise RefusedError(
            f"closing_time {closing} must be after ready_time {ready}",
            code="PICKUP_WINDOW", field="closing_time",
        )  # fmt: skip
    instructions = ask.instructions or (defaults.instructions if defaults else "")
    return Pickup(ask.date, ready, closing, instructions)


def _slots_answer(offer: SlotOffer) -> SlotsAnswer:
    return SlotsAnswer(
        order_id=offer.sf_id,
        shipment_id=offer.shipment_id,
        mesh_code=offer.mesh_code,
        product_type=offer.product_type,
        rebooking=offer.rebooking,
        slots=[
            SlotOut(
                code=s.code,
                date=s.date,
                start=s.start,
                end=s.end,
                tariff_level=s.tariff_level,
                open=s.open,
                rank=s.rank,
                closed_reason=s.closed_reason,
            )
            for s in offer.slots
        ],
    )


def _booked_answer(booked: SlotBooked) -> SlotBookedAnswer:
    slot = booked.confirmed.slot
    return SlotBookedAnswer(
        order_id=booked.sf_id,
        shipment_id=booked.shipment_id,
        date=slot.date,
        start=slot.start,
        end=slot.end,
        tariff_level=slot.tariff_level,
        product_code=booked.confirmed.product_code,
        service_code=booked.confirmed.service_code,
        as_code=booked.confirmed.as_code,
        rebooked=booked.rebooked,
        skybill_numbers=booked.skybill_numbers,
    )
