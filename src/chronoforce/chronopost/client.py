"""ChronopostClient: the one object the pipeline calls for labels, rates, tracking and relays.

Each method builds a request (shipping.py, tracking.py, rates.py, relay.py), sends it through
SoapTransport and decodes the answer. Every exchange becomes a CarrierCall, password masked:
given to `on_call` and kept as `last_call` (per thread), and attached to any error raised. It
must never retry (the pipeline decides) and never keep or log the password.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import httpx

from chronoforce import metrics
from chronoforce.chronopost import (
    pickups,
    pod,
    precise,
    rates,
    relay,
    shipping,
    track_search,
    tracking,
)
from chronoforce.chronopost.config import (
    MAIN,
    AccountFamily,
    ChronopostAccounts,
    ChronopostCredentials,
    ChronopostEndpoint,
    Service,
    backup_for,
)
from chronoforce.chronopost.pickups import PickupBooked
from chronoforce.chronopost.pod import PodResult
from chronoforce.chronopost.shipping import ReservedLabel
from chronoforce.chronopost.tracking import TrackedParcel
from chronoforce.chronopost.transport import (
    CarrierCall,
    HttpStatusError,
    Redactor,
    Reply,
    SoapTransport,
    attach,
)
from chronoforce.config.sections import LocationsConfig, section
from chronoforce.domain.errors import (
    CancelTooEarlyError,
    CarrierAccountError,
    CarrierValidationError,
    ChronoforceError,
)
from chronoforce.domain.models import (
    Address,
    ConfirmedSlot,
    DeliverySlot,
    LabelFormat,
    LabelResult,
    ObjectType,
    Parcel,
    Party,
    Pickup,
    Rate,
    RelayPoint,
    ShipmentRequest,
    TrackingEvent,
)

if TYPE_CHECKING:
    from chronoforce.config import Settings

T = TypeVar("T")
CallHook = Callable[[CarrierCall], None]


def _chain(redactors: list[Redactor]) -> Callable[[bytes | str], str]:
    """Every account's password masked (one Redactor per password)."""

    def redact(payload: bytes | str) -> str:
        text = redactors[0](payload)
        for redactor in redactors[1:]:
            text = redactor(text)
        return text

    return redact


class ChronopostClient:
    """Chronopost's web services for one account. Thread-safe; share one per process.

    `transport` is any httpx transport (tests: httpx.MockTransport); `on_call` receives every
    CarrierCall, successful or not, on the calling thread.
    """

    def __init__(
        self,
        endpoint: ChronopostEndpoint,
        credentials: ChronopostCredentials,
        transport: httpx.BaseTransport | None = None,
        *,
        on_call: CallHook | None = None,
        accounts: ChronopostAccounts | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        # Labels of relay products, returns and international parcels may use their own contract.
        self.accounts = accounts or ChronopostAccounts(credentials)
        self.on_call = on_call
        self._http = SoapTransport(endpoint, transport)
        redactors = [Redactor(p) for p in self.accounts.passwords] or [Redactor("")]
        self._redact: Callable[[bytes | str], str] = (
            redactors[0] if len(redactors) == 1 else _chain(redactors)
        )
        self._local = threading.local()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, on_call: CallHook | None = None
    ) -> ChronopostClient:
        config = settings.chronopost
        secret = settings.secrets.chronopost_password
        endpoint = ChronopostEndpoint(
            base_url=config.base_url,
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.read_timeout_s,
            verify=str(config.ca_file) if config.ca_file else True,
            max_connections=config.concurrency,
            backup_url=backup_for(config.base_url, config.backup_url),
        )
        credentials = ChronopostCredentials(
            config.account_number, secret.get_secret_value() if secret else "", config.sub_account
        )
        family_secrets = {
            AccountFamily.RELAY: settings.secrets.chronopost_relay_password,
            AccountFamily.RETURNS: settings.secrets.chronopost_returns_password,
            AccountFamily.INTERNATIONAL: settings.secrets.chronopost_international_password,
        }
        passwords = {f: s.get_secret_value() for f, s in family_secrets.items() if s is not None}
        accounts = ChronopostAccounts.build(credentials, config.accounts, passwords)
        located = {
            key: secret.get_secret_value()
            for key, secret in settings.secrets.chronopost_location_passwords.items()
        }
        where = section(LocationsConfig, "locations", settings.locations)  # typed, or a mapping
        accounts = accounts.with_locations(where.sites, located)  # issue 23
        return cls(endpoint, credentials, on_call=on_call, accounts=accounts)

    @property
    def last_call(self) -> CarrierCall | None:
        """The last exchange made by the current thread (None before the first)."""
        return getattr(self._local, "call", None)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChronopostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the exchange every operation goes through ---------------------------------------

    def _exchange(
        self,
        service: Service,
        operation: str,
        body: bytes,
        parse: Callable[[bytes], T],
        host: str | None = None,
    ) -> T:
        reply: Reply | None = None
        started = time.perf_counter()
        chosen = self._http.choose(host)
        try:
            reply = self._http.send(service, body, operation, chosen)
            result = parse(reply.content)
        except ChronoforceError as exc:
            if isinstance(exc, HttpStatusError):
                reply = exc.reply
            call = self._record(operation, body, reply, started, exc.code, chosen)
            raise attach(exc, call) from exc.__cause__
        self._record(operation, body, reply, started, "", chosen)
        return result

    def _record(
        self,
        operation: str,
        body: bytes,
        reply: Reply | None,
        started: float,
        error_code: str,
        host: str = MAIN,
    ) -> CarrierCall:
        call = CarrierCall(
            operation=operation,
            request_xml=self._redact(body),
            response_xml=self._redact(reply.content) if reply is not None else "",
            http_status=reply.status if reply is not None else 0,
            duration_s=reply.duration_s if reply is not None else time.perf_counter() - started,
            error_code=error_code,
            host=host,
        )
        self._local.call = call
        metrics.observe_carrier_call(call)  # latency by operation, errors by code
        if self.on_call is not None:
            self.on_call(call)
        return call

    def _main_for(self, location: str) -> ChronopostCredentials:
        """The main contract of a shipper location with its own (issue 23), else ours."""
        site = self.accounts.locations.get(location) if location else None
        return site.main if site is not None else self.credentials

    # --- shipping --------------------------------------------------------------------------

    def create_shipment(self, request: ShipmentRequest) -> LabelResult:
        """One label per parcel (shippingMultiParcelV5); pickup booked when options.pickup.

        Sent under the contract of the request's family (relay, returns, international) when
        one is configured, else the main account. A relay shipment that names its point only by
        id gets the point's name and address first (the label's recipient, [D] §3.2)."""
        if shipping.needs_relay_point(request):
            request = self._with_relay_point(request)
        credentials = self.accounts.for_location(request.location).for_family(
            shipping.account_family(request)
        )
        body = shipping.build_shipment(request, credentials)
        label_format = request.options.label_format
        return self._exchange(
            Service.SHIPPING,
            shipping.SHIPMENT_OPERATION,
            body,
            lambda content: shipping.parse_shipment(content, label_format),
        )

    def _with_relay_point(self, request: ShipmentRequest) -> ShipmentRequest:
        """The request with its relay point, found around the customer's address; a point
        Chronopost does not list there is refused, never guessed."""
        point_id = request.options.relay_point_id.strip()
        near = request.recipient.address
        heaviest = max((p.weight_kg for p in request.parcels), default=relay.DEFAULT_WEIGHT_KG)
        point = self.relay_point(
            point_id,
            near,
            weight_kg=heaviest,
            product_code=request.product_code,
            ship_date=request.ship_date,
        )
        if point is None:
            raise CarrierValidationError(
                f"relay point {point_id} is not among the Chronopost relay points near "
                f"{near.postal_code} {near.city} ({near.country}) that take {heaviest} kg",
                code="RELAY_POINT_NOT_FOUND",
                field="relay_point_id",
                operation=relay.OPERATION,
            )
        options = dataclasses.replace(request.options, relay_point=point)
        return dataclasses.replace(request, options=options)

    def reserved_label(
        self, reservation_number: str, label_format: LabelFormat = LabelFormat.PDF
    ) -> ReservedLabel:
        """The labels of an earlier reservation again, in `label_format`."""
        body = shipping.build_reserved_label(reservation_number, label_format)
        return self._exchange(
            Service.SHIPPING,
            shipping.RESERVED_OPERATION,
            body,
            lambda c: shipping.parse_reserved_label(c, reservation_number, label_format),
        )

    def book_pickup(
        self,
        shipper: Party,
        pickup: Pickup,
        parcels: tuple[Parcel, ...],
        skybill_numbers: tuple[str, ...],
        reference: str,
        *,
        location: str = "",
    ) -> PickupBooked:
        """Pickup on demand for parcels already labeled (creerEnlevementNational), under the
        contract of the shipper `location` (issue 23; "" = the main account)."""
        credentials = self._main_for(location)
        body = pickups.build_pickup(
            credentials, shipper, pickup, parcels, skybill_numbers, reference
        )
        return self._exchange(Service.SHIPPING, pickups.OPERATION, body, pickups.parse_pickup)

    def cancel_pickups(self, numbers: tuple[str, ...], *, location: str = "") -> dict[str, str]:
        """Cancel pickups on demand by ESD number (annulerEnlevements); refusals raise."""
        body = pickups.build_cancel_pickups(self._main_for(location), numbers)
        return self._exchange(
            Service.SHIPPING, pickups.CANCEL_OPERATION, body, pickups.parse_cancel_pickups
        )

    # --- tracking --------------------------------------------------------------------------

    def track(self, skybill_number: str) -> tuple[TrackingEvent, ...]:
        """Every event Chronopost shows for the parcel, in its order; () when none yet."""
        return self._exchange(
            Service.TRACKING,
            tracking.TRACK_OPERATION,
            tracking.build_track(skybill_number),
            lambda content: tracking.parse_track(content, skybill_number),
        )

    def find_by_reference(self, shipper_ref: str) -> tuple[TrackedParcel, ...]:
        """Parcels created under our shipper reference (the order number): crash recovery.

        Asks every host (main and backup) under every configured contract (relay, returns and
        international labels may have been made under their own): a label made through the
        backup while the main host was down, or under a family's contract, must be found. Any
        host failing fails the lookup: "nothing was made" is never concluded from one alone.
        """
        answers = [
            self._exchange(
                Service.TRACKING,
                tracking.BY_REFERENCE_OPERATION,
                tracking.build_by_reference(credentials, shipper_ref),
                tracking.parse_by_reference,
                host=host,
            )
            for credentials in self.accounts.every
            for host in self.endpoint.hosts
        ]
        return tracking.merge_parcels(answers)

    def track_search(
        self,
        first: dt.date,
        last: dt.date,
        state: str = "ANY",
        *,
        credentials: ChronopostCredentials | None = None,
        service_code: str | None = None,
        senders_ref: str | None = None,
        consignees_ref: str | None = None,
        consignees_zip: str | None = None,
        consignees_country: str | None = None,
    ) -> tuple[track_search.SearchedParcel, ...]:
        """trackSearch: the parcels deposited from `first` to `last` (days) under one contract
        (the main one by default), each with its significant event (issue 21)."""
        body = track_search.build_search(
            credentials or self.credentials, first, last, state, service_code,
            senders_ref=senders_ref, consignees_ref=consignees_ref,
            consignees_zip=consignees_zip, consignees_country=consignees_country,
        )  # fmt: skip
        return self._exchange(
            Service.TRACKING, track_search.OPERATION, body, track_search.parse_search
        )

    def cancel(
        self,
        skybill_number: str,
        *,
        created_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> int:
        """Cancel a parcel's label; returns Chronopost's statusCode. Refusals raise.

        With `created_at` (when the label was made), a refusal inside the cancel window is a
        CancelTooEarlyError saying when it opens; "taken over" is a CancelConflictError.
        A label made under a product family's own contract (`chronopost.accounts`) is refused
        by the main one as not its parcel (an account error): the next contract is asked.
        """
        refused: list[ChronoforceError] = []
        for credentials in self.accounts.every:
            try:
                return self._exchange(
                    Service.TRACKING,
                    tracking.CANCEL_OPERATION,
                    tracking.build_cancel(credentials, skybill_number),
                    lambda content: tracking.parse_cancel(content, created_at=created_at, now=now),
                )
            except (CarrierAccountError, CancelTooEarlyError) as exc:
                refused.append(exc)  # not this contract's parcel, or not yet: ask the next
        # Every contract refused: "too early" wins (the window will open), else the account.
        raise next((e for e in refused if isinstance(e, CancelTooEarlyError)), refused[0])

    def search_pod(self, skybill_number: str, *, pdf: bool = True) -> PodResult:
        """The parcel's proof of delivery (searchPOD): its status, and the file once available.

        Asked under each configured contract in turn, like `cancel`: a label made under a
        product family's own contract is "not in this contract" (error 2) for the main one."""
        refused: list[ChronoforceError] = []
        for credentials in self.accounts.every:
            try:
                return self._exchange(
                    Service.TRACKING,
                    pod.OPERATION,
                    pod.build_search_pod(credentials, skybill_number, pdf),
                    lambda content: pod.parse_search_pod(content, skybill_number),
                )
            except CarrierAccountError as exc:
                refused.append(exc)
        raise refused[0]

    # --- rates and relay points ------------------------------------------------------------

    def quick_cost(
        self,
        product_code: str,
        departure_postal_code: str,
        arrival_postal_code: str,
        weight_kg: Decimal,
        object_type: ObjectType = ObjectType.GOODS,
    ) -> Rate:
        body = rates.build_quick_cost(
            self.credentials,
            product_code,
            departure_postal_code,
            arrival_postal_code,
            weight_kg,
            object_type,
        )
        return self._exchange(
            Service.QUICKCOST,
            rates.QUICK_COST_OPERATION,
            body,
            lambda content: rates.parse_quick_cost(content, product_code),
        )

    def calculate_products(
        self,
        departure_postal_code: str,
        arrival_postal_code: str,
        parcel: Parcel,
        *,
        departure_country: str = "FR",
        arrival_country: str = "FR",
        arrival_city: str = "",
        ship_date: dt.date | None = None,
        object_type: ObjectType = ObjectType.GOODS,
        location: str = "",
    ) -> tuple[Rate, ...]:
        """Every product Chronopost offers for this route and parcel, with its price, under
        the contract of the shipper `location` (issue 23; "" = the main account)."""
        body = rates.build_calculate_products(
            self._main_for(location),
            (departure_country, departure_postal_code),
            (arrival_country, arrival_postal_code, arrival_city),
            parcel,
            ship_date,
            object_type,
        )
        return self._exchange(
            Service.QUICKCOST, rates.PRODUCTS_OPERATION, body, rates.parse_calculate_products
        )

    def relay_points(
        self,
        postal_code: str,
        country: str = "FR",
        city: str = "",
        *,
        address: str = "",
        limit: int = 10,
        max_distance_km: int = relay.MAX_DISTANCE_KM,
        weight_kg: Decimal = relay.DEFAULT_WEIGHT_KG,
        product_code: str = relay.RELAY_PRODUCT,
        ship_date: dt.date | None = None,
    ) -> tuple[RelayPoint, ...]:
        """Relay points near an address, nearest first as Chronopost orders them; none when
        Chronopost finds none or rates its answer unusable (quality 0)."""
        body = relay.build_search(
            self.accounts.for_family(AccountFamily.RELAY),
            postal_code,
            country,
            city,
            address,
            limit=limit,
            max_distance_km=max_distance_km,
            weight_kg=weight_kg,
            product_code=product_code,
            ship_date=ship_date,
        )
        return self._exchange(Service.RELAY, relay.OPERATION, body, relay.parse_search)

    def relay_point(
        self,
        point_id: str,
        near: Address,
        *,
        weight_kg: Decimal = relay.DEFAULT_WEIGHT_KG,
        product_code: str = relay.RELAY_PRODUCT,
        ship_date: dt.date | None = None,
    ) -> RelayPoint | None:
        """The chosen relay point's name and address, found around the customer's address
        (the documented search, [D] §2.4.2); None when it is not among the answers."""
        points = self.relay_points(
            near.postal_code,
            near.country or "FR",
            near.city,
            address=" ".join(x for x in (near.line1, near.line2) if x),
            limit=relay.MAX_POINTS,
            weight_kg=weight_kg,
            product_code=product_code,
            ship_date=ship_date,
        )
        wanted = point_id.strip().upper()
        return next((p for p in points if p.id.strip().upper() == wanted), None)

    # --- Chrono Precise slots (issue 23) -----------------------------------------------------

    def search_slots(
        self,
        shipper: Address,
        recipient: Address,
        *,
        begin: dt.datetime,
        end: dt.datetime | None = None,
        product_type: str = "RDV",
        weight_kg: Decimal = Decimal(1),
        is_delivery_date: bool = False,
        slot_type: str = "",
        closed: tuple[tuple[dt.datetime, dt.datetime], ...] = (),
        location: str = "",
    ) -> tuple[DeliverySlot, ...]:
        """The Precise slots Chronopost offers for an address (searchDeliverySlot), open and
        closed, in time order; refusals raise typed slot errors (domain/errors.py). Under the
        main contract of the shipper `location` (issue 23; "" = ours): the label is made there,
        and a slot is confirmed for the contract that asked."""
        body = precise.build_search(
            self._main_for(location),
            shipper,
            recipient,
            product_type=product_type,
            weight_kg=weight_kg,
            begin=begin,
            end=end,
            is_delivery_date=is_delivery_date,
            slot_type=slot_type,
            closed=closed,
        )
        return self._exchange(Service.CRENEAU, precise.SEARCH_OPERATION, body, precise.parse_search)

    def confirm_slot(
        self, slot: DeliverySlot, product_type: str = "RDV", location: str = ""
    ) -> ConfirmedSlot:
        """Book a slot of a search (confirmDeliverySlotV2): the label's product/service/as;
        under the contract the slots were searched with (`location`, as `search_slots`)."""
        body = precise.build_confirm(self._main_for(location), slot, product_type)
        return self._exchange(
            Service.CRENEAU,
            precise.CONFIRM_OPERATION,
            body,
            lambda content: precise.parse_confirm(content, slot),
        )
