"""ChronopostClient: the one object the pipeline calls for labels, rates, tracking and relays.

Each method builds a request (shipping.py, tracking.py, rates.py, relay.py), sends it through
SoapTransport and decodes the answer. Every exchange becomes a CarrierCall, password masked:
given to `on_call` and kept as `last_call` (per thread), and attached to any error raised. It
must never retry (the pipeline decides) and never keep or log the password.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import httpx

from chronoforce import metrics
from chronoforce.chronopost import pickups, rates, relay, shipping, tracking
from chronoforce.chronopost.config import (
    MAIN,
    ChronopostCredentials,
    ChronopostEndpoint,
    Service,
    backup_for,
)
from chronoforce.chronopost.pickups import PickupBooked
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
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import (
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
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.on_call = on_call
        self._http = SoapTransport(endpoint, transport)
        self._redact = Redactor(credentials.password)
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
        return cls(endpoint, credentials, on_call=on_call)

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

    # --- shipping --------------------------------------------------------------------------

    def create_shipment(self, request: ShipmentRequest) -> LabelResult:
        """One label per parcel (shippingMultiParcelV5); pickup booked when options.pickup."""
        body = shipping.build_shipment(request, self.credentials)
        label_format = request.options.label_format
        return self._exchange(
            Service.SHIPPING,
            shipping.SHIPMENT_OPERATION,
            body,
            lambda content: shipping.parse_shipment(content, label_format),
        )

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
    ) -> PickupBooked:
        """Pickup on demand for parcels already labeled (creerEnlevementNational)."""
        body = pickups.build_pickup(
            self.credentials, shipper, pickup, parcels, skybill_numbers, reference
        )
        return self._exchange(Service.SHIPPING, pickups.OPERATION, body, pickups.parse_pickup)

    def cancel_pickups(self, numbers: tuple[str, ...]) -> dict[str, str]:
        """Cancel pickups on demand by ESD number (annulerEnlevements); refusals raise."""
        body = pickups.build_cancel_pickups(self.credentials, numbers)
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

        Asks every host (main and backup): a label made through the backup while the main
        host was down must be found, whichever host answers now. Any host failing fails the
        lookup: "nothing was made" is never concluded from one host alone.
        """
        body = tracking.build_by_reference(self.credentials, shipper_ref)
        answers = [
            self._exchange(
                Service.TRACKING,
                tracking.BY_REFERENCE_OPERATION,
                body,
                tracking.parse_by_reference,
                host=host,
            )
            for host in self.endpoint.hosts
        ]
        return tracking.merge_parcels(answers)

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
        """
        return self._exchange(
            Service.TRACKING,
            tracking.CANCEL_OPERATION,
            tracking.build_cancel(self.credentials, skybill_number),
            lambda content: tracking.parse_cancel(content, created_at=created_at, now=now),
        )

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
    ) -> tuple[Rate, ...]:
        """Every product Chronopost offers for this route and parcel, with its price."""
        body = rates.build_calculate_products(
            self.credentials,
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
        max_distance_km: int = 40,
    ) -> tuple[RelayPoint, ...]:
        """Relay points near a postal code, nearest first as Chronopost orders them."""
        body = relay.build_search(
            self.credentials,
            postal_code,
            country,
            city,
            address,
            limit=limit,
            max_distance_km=max_distance_km,
        )
        return self._exchange(Service.RELAY, relay.OPERATION, body, relay.parse_search)
