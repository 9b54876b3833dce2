"""Typed, immutable models of what chronoforce ships: parties, parcels, requests, labels, events.

Pure data: no I/O and no carrier or Salesforce specifics beyond Chronopost's vocabulary
(product codes, label modes). Validation lives in `address.py` and `routing.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class ShipmentStatus(StrEnum):
    """chronoforce's normalized status of a shipment (mapping from carrier codes: status.py)."""

    PENDING = "pending"
    LABEL_CREATED = "label_created"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class LabelFormat(StrEnum):
    """Chronopost label modes (`skybillParamsValue.mode`): PDF documents and ZPL text."""

    PDF = "PDF"
    PPR = "PPR"
    SPD = "SPD"
    THE = "THE"
    THE1015 = "THE1015"
    THEPSG = "THEPSG"
    Z2D = "Z2D"
    Z2DPSG = "Z2DPSG"
    ZPLPSG = "ZPLPSG"
    ZPL300 = "ZPL300"

    @property
    def is_pdf(self) -> bool:
        """PDF, PPR, SPD and the thermal PDF modes THE, THE1015, THEPSG are PDF documents
        ([D] §2.3.2.b8, §4.4; SPEC-FACTS §2.6); Z2D, Z2DPSG, ZPLPSG, ZPL300 are ZPL."""
        return self.value in _PDF_MODES


_PDF_MODES = frozenset({"PDF", "PPR", "SPD", "THE", "THE1015", "THEPSG"})


class LabelDelivery(StrEnum):
    """`modeRetour`: how Chronopost delivers the label file ([D] §2.3.2.b9, §4.5). It does not
    make a return: a return is a return product with the consumer as shipper ([D] §3.6)."""

    EMAIL_TO_SHIPPER = "1"  # e-mailed to shipperEmail
    NOT_SENT = "2"  # we print it ourselves
    POST_OFFICE = "3"  # printable at a post-office machine, code sent by SMS
    SHOP2SHOP_EMAIL = "4"  # Shop2Shop e-mail ([D] only)


class Civility(StrEnum):
    """Chronopost civility codes: E = Madame, L = Mademoiselle, M = Monsieur."""

    MADAME = "E"
    MADEMOISELLE = "L"
    MONSIEUR = "M"


class ObjectType(StrEnum):
    DOCUMENTS = "DOC"
    GOODS = "MAR"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as Chronopost takes it: two name lines, two street lines."""

    name: str
    name2: str = ""
    line1: str = ""
    line2: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""  # ISO 3166 alpha-2 once normalized
    state: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """Who to reach about a parcel; phones and e-mail are only passed where needed."""

    name: str = ""
    civility: Civility = Civility.MONSIEUR
    phone: str = ""
    mobile: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """A shipper, recipient or customer: where, and whom to call."""

    address: Address
    contact: Contact = field(default_factory=Contact)


@dataclass(frozen=True, slots=True)
class Parcel:
    """One physical package; weight in kg, dimensions in cm."""

    weight_kg: Decimal
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    reference: str = ""


@dataclass(frozen=True, slots=True)
class References:
    """Our references carried by the label. `shipper_ref` is the shipment's own reference at
    Chronopost (one per intent: the order number, `R-<order number>` for its return), the one
    a recovery looks parcels up by; empty means the order number."""

    order_number: str
    customer_id: str = ""
    returns_reference: str = ""
    shipper_ref: str = ""


@dataclass(frozen=True, slots=True)
class Pickup:
    """Pickup on demand (Chronopost `esdValue`): when the parcels are ready, until when."""

    date: dt.date
    ready_time: dt.time
    closing_time: dt.time
    instructions: str = ""


@dataclass(frozen=True, slots=True)
class ShipmentOptions:
    """How to ship: service, relay point, pickup, money (EUR; sent in cents), contents.

    `relay_point` carries the chosen point's name and address (the label's recipient);
    `contents` are the precise English descriptions international parcels need (up to 5).
    """

    saturday_delivery: bool = False
    relay_point_id: str = ""
    pickup: Pickup | None = None
    is_return: bool = False
    mode_retour: str = ""  # how Chronopost hands the label over (1, 2, 3); "" = the default
    declared_value: Decimal | None = None
    insured_value: Decimal | None = None
    label_format: LabelFormat = LabelFormat.PDF
    object_type: ObjectType = ObjectType.GOODS
    monday_delivery: bool = False
    relay_point: RelayPoint | None = None
    cod_value: Decimal | None = None
    contents: tuple[str, ...] = ()
    expiry_date: dt.date | None = None
    label_delivery: LabelDelivery = LabelDelivery.NOT_SENT
    # Chrono Precise: the confirmed slot (issue 23); its codes replace product/service/as.
    slot: ConfirmedSlot | None = None


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """Everything Chronopost needs to create the label(s) of one shipment."""

    shipper: Party
    recipient: Party
    parcels: tuple[Parcel, ...]
    product_code: str
    ship_date: dt.date
    references: References
    options: ShipmentOptions = field(default_factory=ShipmentOptions)
    customer: Party | None = None  # the account holder, when not the shipper
    # The shipper location whose Chronopost contract ships it (issue 23, `locations:`); "" or
    # a location without a contract of its own: the main account.
    location: str = ""

    @property
    def total_weight_kg(self) -> Decimal:
        return sum((p.weight_kg for p in self.parcels), Decimal(0))


@dataclass(frozen=True, slots=True)
class Label:
    """The label of one parcel: its skybill number and the file in the requested format."""

    skybill_number: str
    data: bytes
    label_format: LabelFormat


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What Chronopost answered to a shipment creation: one label per parcel."""

    reservation_number: str
    labels: tuple[Label, ...]
    pickup_number: str = ""  # ESD number when a pickup on demand was booked
    pickup_date: dt.datetime | None = None

    @property
    def skybill_numbers(self) -> tuple[str, ...]:
        return tuple(label.skybill_number for label in self.labels)


@dataclass(frozen=True, slots=True)
class Rate:
    """A live price for one product; amounts in EUR."""

    product_code: str
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal
    vat: Decimal
    product_name: str = ""
    zone: str = ""
    promised_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One carrier event of one parcel; `time` is timezone-aware."""

    skybill_number: str
    code: str
    label: str
    time: dt.datetime
    place: str = ""
    postal_code: str = ""
    high_priority: bool = False


@dataclass(frozen=True, slots=True)
class RelayPoint:
    """A Chronopost relay point (Pickup point) a recipient can collect from."""

    id: str
    name: str
    address: Address
    opening_hours: tuple[str, ...] = ()
    distance_m: int | None = None


# --- Chrono Precise (issue 23; SPEC-FACTS.md §6) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliverySlot:
    """One slot searchDeliverySlot offered: a two-hour window on a day at a tariff level.

    `rank` (open slots only) and the search's `mesh_code` / `transaction_id` are what
    confirmDeliverySlotV2 needs back ([D] §3.5). Times are Paris wall-clock times.
    """

    code: str
    date: dt.date
    start: dt.time
    end: dt.time
    tariff_level: str  # N1..N4
    open: bool
    rank: int | None
    raw_rank: int
    closed_reason: str = ""  # codeStatus: 1 Chronopost, 2 shipper, 3 full, 4 holiday
    mesh_code: str = ""
    transaction_id: str = ""

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.start)

    @property
    def ends_at(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.end)


@dataclass(frozen=True, slots=True)
class ConfirmedSlot:
    """A booked slot and the codes the label must carry ([D] §2.5.3, §3.5)."""

    slot: DeliverySlot
    product_code: str
    service_code: str
    as_code: str = ""
