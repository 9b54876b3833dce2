"""Label creation (shippingMultiParcelV5) and reserved-label retrieval: requests and answers.

The shipment request is the hot path: `shipment_tree()` maps a ShipmentRequest to the XSD's
elements in schema order once; `build_shipment()` writes it as text (fast path) and
`shipment_values()` hands the same tree to zeep (the yardstick). `plan()` first applies the
per-case rules of Chronopost's documents (SPEC-FACTS §2.3-§2.5: relay recipient, services,
contents and customs abroad, parcel limits, Chronofresh) and refuses, naming the field, what
they forbid. No I/O here; addresses are not reshaped (address.py has normalized them).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, TypeAlias

import pycountry

from chronoforce.chronopost.config import AccountFamily, ChronopostCredentials, Service
from chronoforce.chronopost.soap import (
    envelope,
    escape,
    fields,
    number,
    parse_envelope,
    result_of,
)
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.errors import CarrierUnavailableError, CarrierValidationError
from chronoforce.domain.models import (
    Address,
    Contact,
    Label,
    LabelFormat,
    LabelResult,
    ObjectType,
    Parcel,
    Party,
    Pickup,
    ShipmentRequest,
)
from chronoforce.domain.products import Family, ProductInfo, is_international, product_info

SHIPMENT_OPERATION = "shippingMultiParcelV5"
RESERVED_OPERATION = "getReservedSkybillWithTypeAndMode"
NAMESPACE = Service.SHIPPING.namespace

# Fixed values of the shipping request ([D] §2.3.2.b2, b7, b9; karrio sends the same).
ID_EMIT = "CHRFR"
EVENT_CODE = "DC"  # "shipment in preparation": the label-created event, else error 33
VERSION = "2.0"
WEIGHT_UNIT = "KGM"
# skybillValue.service ([D] §2.3.2.b7): 0 normal, 1 Monday delivery, 6 Saturday delivery; 1 and
# 6 are for France only ([S] §3.12.4, rev 2.5.8: 6 forbidden abroad).
SERVICE_NORMAL = "0"
SERVICE_MONDAY = "1"
SERVICE_SATURDAY = "6"
# Shop2Shop Europe: service 345 with as=A15 ([D] §3.3). Its Saturday code 346 is not used: we
# never ask for Saturday abroad.
SERVICE_SHOP2SHOP_EUROPE = "345"
AS_SHOP2SHOP_EUROPE = "A15"
SHOP2SHOP_PRODUCTS = frozenset({"5E", "5H"})
DEFAULT_SHIP_HOUR = 10  # karrio's constant; a booked pickup's ready hour replaces it
SHIPPER_PRE_ALERT = "0"  # shipper preAlert in {0, 11}; we send no shipper notification
RECIPIENT_PRE_ALERT_EMAIL = "22"  # recipient preAlert in {0, 22}: 22 when we have an e-mail
CURRENCY = "EUR"
# Parcels per call: 100, or 50 with a pickup on demand ([D] §2.3.2.b9; [S] §2.7.5).
MAX_PARCELS = 100
MAX_PARCELS_WITH_PICKUP = 50
# content1..content5: precise English descriptions, 45 characters each ([D] §2.3.2.b7, §4.8).
MAX_CONTENTS = 5
CONTENT_LENGTH = 45

# A node of the request: an element name and its text, or its children in schema order.
Node: TypeAlias = tuple[str, "str | list[Node]"]


@cache
def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    return country.name if country is not None else ""


def _party(prefix: str, party: Party, pre_alert: str, *, civility: bool) -> list[Node]:
    """shipper/customer/recipient fields, in the XSD's (alphabetical) order."""
    a, c = party.address, party.contact
    nodes: list[Node] = [
        (f"{prefix}Adress1", a.line1),
        (f"{prefix}Adress2", a.line2),
        (f"{prefix}City", a.city),
    ]
    if civility:
        nodes.append((f"{prefix}Civility", c.civility.value))
    nodes += [
        (f"{prefix}ContactName", c.name),
        (f"{prefix}Country", a.country),
        (f"{prefix}CountryName", country_name(a.country)),
        (f"{prefix}Email", c.email),
        (f"{prefix}MobilePhone", c.mobile),
        (f"{prefix}Name", a.name),
        (f"{prefix}Name2", a.name2),
        (f"{prefix}Phone", c.phone),
        (f"{prefix}PreAlert", pre_alert),
        (f"{prefix}ZipCode", a.postal_code),
    ]
    return nodes


def _esd(pickup: Pickup, parcels: tuple[Parcel, ...], order_number: str) -> list[Node]:
    """Pickup on demand: the biggest parcel's size, no label printed by Chronopost."""
    biggest = max(parcels, key=lambda p: p.weight_kg)

    def when(time: dt.time) -> str:
        return dt.datetime.combine(pickup.date, time).isoformat(timespec="seconds")

    return [
        ("closingDateTime", when(pickup.closing_time)),
        ("height", number(biggest.height_cm or 0)),
        ("length", number(biggest.length_cm or 0)),
        ("retrievalDateTime", when(pickup.ready_time)),
        ("specificInstructions", pickup.instructions),
        ("width", number(biggest.width_cm or 0)),
        ("ltAImprimerParChronopost", "false"),
        ("nombreDePassageMaximum", "1"),
        ("refEsdClient", order_number),
    ]


def cents(value: Decimal | None) -> str:
    """Money as Chronopost takes it: integer euro cents (8920 = 89.20 EUR, [D] §2.3.2.b7)."""
    if value is None:
        return ""
    return str(int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


# --- the rules of SPEC-FACTS §2.5, checked before anything is sent ---------------------------


def _refuse(message: str, field: str) -> CarrierValidationError:
    return CarrierValidationError(
        message, code="CARRIER_REQUEST_INVALID", field=field, operation=SHIPMENT_OPERATION
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the rules decided for one request: product facts, service, recipient, contents."""

    product: ProductInfo | None
    service: str
    as_code: str
    recipient: Party
    recipient_ref: str
    relay_id: str
    contents: tuple[str, ...]
    international: bool


def _service(request: ShipmentRequest, product: ProductInfo | None, abroad: bool) -> str:
    options = request.options
    if options.saturday_delivery and options.monday_delivery:
        raise _refuse("Saturday and Monday delivery cannot both be asked", "saturday_delivery")
    if options.saturday_delivery:
        if abroad:  # [S] rev 2.5.8; [D] §2.5 international
            raise _refuse(
                "Saturday delivery (service 6) is never available abroad", "saturday_delivery"
            )
        if product is not None and not product.saturday:
            raise _refuse(
                f"{product.name} ({product.code}) offers no Saturday delivery", "saturday_delivery"
            )
        return SERVICE_SATURDAY
    if options.monday_delivery:
        if abroad:  # service 1 is national only ([S] §3.12.4)
            raise _refuse("Monday delivery (service 1) is for France only", "monday_delivery")
        return SERVICE_MONDAY
    if abroad and request.product_code in SHOP2SHOP_PRODUCTS:
        return SERVICE_SHOP2SHOP_EUROPE
    return SERVICE_NORMAL


def _relay_recipient(request: ShipmentRequest) -> tuple[Party, str]:
    """Relay products ([D] §3.2, §3.3): the point's name and address, the customer as Name2."""
    options, customer = request.options, request.recipient
    point = options.relay_point
    point_id = (point.id if point is not None else options.relay_point_id).strip()
    if not point_id:
        raise _refuse(
            f"product {request.product_code} delivers to a relay point and none was chosen",
            "relay_point_id",
        )
    if point is None:
        raise _refuse(
            f"relay point {point_id}: its name and address are needed for the label",
            "relay_point_id",
        )
    if len(request.parcels) > 1:  # no multi-parcel to a relay point ([D] §2.3.1, §2.3.2)
        raise _refuse(
            f"{len(request.parcels)} parcels: a relay shipment has a single parcel", "parcels"
        )
    contact = customer.contact
    mobile = contact.mobile.strip()
    if not contact.email.strip():
        raise _refuse("a relay delivery needs the recipient's e-mail", "recipient_email")
    if not mobile:
        raise _refuse("a relay delivery needs the recipient's mobile phone", "recipient_mobile")
    collector = customer.address.name.strip() or contact.name.strip()
    a = point.address
    address = Address(point.name, collector, a.line1, a.line2, a.postal_code, a.city, a.country)
    # recipientPhone must be a mobile for relay deliveries ([D] §3.2).
    who = Contact(contact.name or collector, contact.civility, mobile, mobile, contact.email)
    return Party(address, who), point_id


def _contents(request: ShipmentRequest, abroad: bool) -> tuple[str, ...]:
    contents = tuple(c.strip() for c in request.options.contents if c.strip())
    if len(contents) > MAX_CONTENTS:
        raise _refuse(f"{len(contents)} content descriptions, at most {MAX_CONTENTS}", "contents")
    for text in contents:
        if len(text) > CONTENT_LENGTH:
            raise _refuse(
                f"content description {text!r} is over {CONTENT_LENGTH} characters", "contents"
            )
    if abroad and not contents:  # every EU and non-EU parcel ([D] §2.3.2.b7, §4.8)
        raise _refuse(
            "an international parcel needs an English description of its contents", "contents"
        )
    return contents


def plan(request: ShipmentRequest) -> _Plan:
    """Apply the per-case rules of the documents to `request`, or refuse it naming the field."""
    options = request.options
    product = product_info(request.product_code)
    if len(request.product_code.strip()) != 2:  # [D] §4.3.2: "ProductCode must be equal 2"
        raise _refuse(f"product code {request.product_code!r} is not 2 characters", "product_code")
    limit = MAX_PARCELS_WITH_PICKUP if options.pickup is not None else MAX_PARCELS
    if not 1 <= len(request.parcels) <= limit:
        raise _refuse(
            f"{len(request.parcels)} parcels in one call; 1 to {limit}"
            + (" with a pickup" if options.pickup else ""),
            "parcels",
        )
    abroad = is_international(request.recipient.address.country)
    recipient, recipient_ref, relay_id = request.recipient, request.references.customer_id, ""
    relay = product.relay if product is not None else bool(options.relay_point_id)
    if relay:
        recipient, relay_id = _relay_recipient(request)
        recipient_ref = relay_id  # [S] §3.12.4: the relay code in recipientRef too
        abroad = is_international(recipient.address.country)
    if product is not None:
        for index, parcel in enumerate(request.parcels, start=1):
            if parcel.weight_kg > product.max_weight_kg:
                raise _refuse(
                    f"parcel {index} weighs {parcel.weight_kg} kg, over the "
                    f"{product.max_weight_kg} kg of {product.name}",
                    "parcels",
                )
        if product.expiry_required and options.expiry_date is None:  # [D] §2.3.2.b10, §3.1
            raise _refuse(f"{product.name} ({product.code}) needs the use-by date", "expiry_date")
    if abroad and options.object_type is ObjectType.GOODS and options.declared_value is None:
        raise _refuse("international goods need a declared (customs) value", "declared_value")
    service = _service(request, product, abroad)
    as_code = AS_SHOP2SHOP_EUROPE if service == SERVICE_SHOP2SHOP_EUROPE else ""
    if options.slot is not None:  # Chrono Precise: the confirm's service and as ([D] §3.5)
        service, as_code = options.slot.service_code, options.slot.as_code
    contents = _contents(request, abroad)
    return _Plan(product, service, as_code, recipient, recipient_ref, relay_id, contents, abroad)


def _skybill(request: ShipmentRequest, plan_: _Plan, rank: int) -> list[Node]:
    """One parcel; money travels on the first parcel (as the official Magento module does)."""
    options, parcel, first = request.options, request.parcels[rank], rank == 0
    insured = cents(options.insured_value) if first else ""
    cod = cents(options.cod_value) if first else ""
    # customsValue: [D] types it int without a unit; sent in cents like insuredValue (unconfirmed).
    declared = cents(options.declared_value) if first and plan_.international else ""
    contents = (*plan_.contents, "", "", "", "", "")[:MAX_CONTENTS]
    ship_hour = options.pickup.ready_time.hour if options.pickup else DEFAULT_SHIP_HOUR
    return [
        # Both, always, on every parcel ([D] §2.3.2.b7, §4.7): the label shows rank/total.
        ("bulkNumber", str(len(request.parcels))),
        ("codCurrency", CURRENCY if cod else ""),
        ("codValue", cod),
        ("content1", contents[0]),
        ("content2", contents[1]),
        ("content3", contents[2]),
        ("content4", contents[3]),
        ("content5", contents[4]),
        ("customsCurrency", CURRENCY if declared else ""),
        ("customsValue", declared),
        ("evtCode", EVENT_CODE),
        ("insuredCurrency", CURRENCY if insured else ""),
        ("insuredValue", insured),
        ("objectType", options.object_type.value),
        ("productCode", options.slot.product_code if options.slot else request.product_code),
        ("service", plan_.service),
        ("shipDate", f"{request.ship_date.isoformat()}T00:00:00"),
        ("shipHour", str(ship_hour)),
        ("skybillRank", str(rank + 1)),
        ("weight", number(parcel.weight_kg)),
        ("weightUnit", WEIGHT_UNIT),
        # Required by the XSD; 0 means "not measured".
        ("height", number(parcel.height_cm or 0)),
        ("length", number(parcel.length_cm or 0)),
        ("width", number(parcel.width_cm or 0)),
        ("as", plan_.as_code),
    ]


def needs_relay_point(request: ShipmentRequest) -> bool:
    """A relay product whose point is known only by its id (the client looks it up)."""
    options = request.options
    product = product_info(request.product_code)
    relay = product.relay if product is not None else False
    return relay and options.relay_point is None and bool(options.relay_point_id.strip())


def account_family(request: ShipmentRequest) -> AccountFamily | None:
    """The product family whose contract ships `request`: returns, relay, then international."""
    return family_for(
        request.product_code, request.options.is_return, request.recipient.address.country
    )


def family_for(product_code: str, is_return: bool, country: str) -> AccountFamily | None:
    """`account_family` from the three facts it reads (the end-of-day slip groups by it)."""
    product = product_info(product_code)
    family = product.family if product is not None else None
    if is_return or family is Family.RETURN:
        return AccountFamily.RETURNS
    if family is Family.RELAY:
        return AccountFamily.RELAY
    if is_international(country) or family is Family.INTERNATIONAL:
        return AccountFamily.INTERNATIONAL
    return None


def shipment_tree(request: ShipmentRequest, credentials: ChronopostCredentials) -> list[Node]:
    """The children of shippingMultiParcelV5, in the order of ShippingServiceWS.xsd."""
    options, refs = request.options, request.references
    plan_ = plan(request)
    recipient = plan_.recipient
    recipient_alert = RECIPIENT_PRE_ALERT_EMAIL if recipient.contact.email else "0"
    tree: list[Node] = []
    if options.pickup is not None:
        tree.append(("esdValue", _esd(options.pickup, request.parcels, refs.order_number)))
    tree += [
        (
            "headerValue",
            [
                ("accountNumber", credentials.account_number.strip()),
                ("idEmit", ID_EMIT),
                # xsd:int and required: no sub-account is 0 (what PHP SoapClient sends for "").
                ("subAccount", credentials.sub_account.strip() or "0"),
            ],
        ),
        ("shipperValue", _party("shipper", request.shipper, SHIPPER_PRE_ALERT, civility=True)),
        (
            "customerValue",
            _party("customer", request.customer or request.shipper, "0", civility=True),
        ),
        # One recipientValue, also with several parcels ([D] §2.3.2.b9: multiParcel=Y).
        ("recipientValue", _party("recipient", recipient, recipient_alert, civility=False)),
        (
            "refValue",
            [
                ("customerSkybillNumber", refs.returns_reference),
                ("recipientRef", plan_.recipient_ref),
                ("shipperRef", refs.shipper_ref or refs.order_number),
                # [D] §3.2 puts the relay code here, [S] §3.12.4 in recipientRef: both are sent,
                # as every official module sends recipientRef (SPEC-FACTS §14).
                ("idRelais", plan_.relay_id),
            ],
        ),
    ]
    tree += [("skybillValue", _skybill(request, plan_, i)) for i in range(len(request.parcels))]
    tree += [
        # withReservation 1: Chronopost stores the label and answers a reservationNumber, so a
        # lost label is fetched again (getReservedSkybillWithTypeAndMode) without a second label
        # ([D] §2.3.2.b8, §2.3.3, §3.1; [S] §2.7.6). 2 would store only the first format of
        # `mode`; we send one format, so 1 is enough. That the label still comes back inline in
        # pdfEtiquette with 1 is our reading ("as 0, plus stored"): docs/sandbox-chronopost.md.
        (
            "skybillParamsValue",
            [("mode", options.label_format.value), ("withReservation", "1")],
        ),
        ("password", credentials.password),
        # How the label file is delivered, not whether it is a return ([D] §2.3.2.b9): 2 = we
        # print it ourselves (the 2017 document's "1" default e-mailed every label); a return
        # sets its own (pipeline/returns.py: e-mailed, post office, or on the Case).
        ("modeRetour", options.mode_retour or options.label_delivery.value),
        ("numberOfParcel", str(len(request.parcels))),
        ("version", VERSION),
        ("multiParcel", "Y" if len(request.parcels) > 1 else "N"),
    ]
    scheduled: list[Node] = []
    if options.slot is not None:  # Chrono Precise: the confirmed slot ([D] §2.3.2.b10, §3.5)
        booked = options.slot.slot
        scheduled.append(
            (
                "appointmentValue",
                [  # the XSD's order: end, start, level
                    ("timeSlotEndDate", booked.ends_at.isoformat(timespec="seconds")),
                    ("timeSlotStartDate", booked.starts_at.isoformat(timespec="seconds")),
                    # [D] §3.5: the chosen slot's level (§2.3.2.b10 says fixed at N1)
                    ("timeSlotTariffLevel", booked.tariff_level),
                ],
            )
        )
    if options.expiry_date is not None:
        scheduled.append(("expirationDate", f"{options.expiry_date.isoformat()}T00:00:00"))
    if scheduled:
        tree.append(("scheduledValue", scheduled))
    return tree


def render(nodes: list[Node]) -> str:
    """The XML text of a tree; empty optional values are left out."""
    parts: list[str] = []
    for name, value in nodes:
        if isinstance(value, list):
            parts.append(f"<{name}>{render(value)}</{name}>")
        elif value:
            parts.append(f"<{name}>{escape(value)}</{name}>")
    return "".join(parts)


def to_zeep(nodes: list[Node]) -> dict[str, Any]:
    """The same tree as zeep keyword values (repeated elements become lists)."""
    values: dict[str, Any] = {}
    for name, value in nodes:
        item = to_zeep(value) if isinstance(value, list) else value
        if item == "":
            continue
        if name in values:
            previous = values[name]
            values[name] = [*previous, item] if isinstance(previous, list) else [previous, item]
        else:
            values[name] = item
    return values


def build_shipment(request: ShipmentRequest, credentials: ChronopostCredentials) -> bytes:
    """The shippingMultiParcelV5 envelope, written directly (the fast path)."""
    return envelope(NAMESPACE, SHIPMENT_OPERATION, render(shipment_tree(request, credentials)))


def shipment_values(request: ShipmentRequest, credentials: ChronopostCredentials) -> dict[str, Any]:
    values = to_zeep(shipment_tree(request, credentials))
    # zeep wants a list for maxOccurs="unbounded" even with one parcel.
    if isinstance(values.get("skybillValue"), dict):
        values["skybillValue"] = [values["skybillValue"]]
    return values


def build_shipment_zeep(request: ShipmentRequest, credentials: ChronopostCredentials) -> bytes:
    """The same envelope serialized by zeep from our WSDL (yardstick and benchmark)."""
    return zeep_request(Service.SHIPPING, SHIPMENT_OPERATION, shipment_values(request, credentials))


# --- answers -----------------------------------------------------------------------------


def _label_bytes(encoded: str | bytes | None, operation: str) -> bytes:
    try:
        return base64.b64decode(encoded or b"")
    except (binascii.Error, ValueError) as exc:
        raise CarrierUnavailableError(
            f"label of {operation} is not base64", code="CARRIER_BAD_XML", operation=operation
        ) from exc


def _datetime(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None  # the pickup date is informative; a strange one must not lose the labels


def parse_shipment(content: bytes, label_format: LabelFormat) -> LabelResult:
    """LabelResult from a shippingMultiParcelV5 answer (fast path: lxml, one pass)."""
    result = result_of(parse_envelope(content, SHIPMENT_OPERATION), NAMESPACE, SHIPMENT_OPERATION)
    labels = []
    for parcel in result.iterfind("resultMultiParcelValue"):
        values = fields(parcel)
        data = _label_bytes(values.get("pdfEtiquette"), SHIPMENT_OPERATION)
        labels.append(Label(values.get("skybillNumber", "").strip(), data, label_format))
    summary = fields(result)
    return _label_result(
        summary.get("reservationNumber", "").strip(),
        tuple(labels),
        summary.get("ESDNumber", "").strip(),
        _datetime(summary.get("pickupDate", "").strip()),
    )


def _label_result(
    reservation: str, labels: tuple[Label, ...], esd: str, pickup: dt.datetime | None
) -> LabelResult:
    if not labels or any(not label.skybill_number for label in labels):
        raise CarrierUnavailableError(
            "shipment answer without a skybill number", code="CARRIER_BAD_XML",
            operation=SHIPMENT_OPERATION,
        )  # fmt: skip
    return LabelResult(reservation, labels, pickup_number=esd, pickup_date=pickup)


def parse_shipment_zeep(content: bytes, label_format: LabelFormat) -> LabelResult:
    """The same answer decoded by zeep (yardstick and benchmark)."""
    root = parse_envelope(content, SHIPMENT_OPERATION)
    result_of(root, NAMESPACE, SHIPMENT_OPERATION)  # errorCode first, like the fast path
    value = zeep_result(Service.SHIPPING, SHIPMENT_OPERATION, root)
    labels = tuple(
        Label(p.skybillNumber or "", p.pdfEtiquette or b"", label_format)
        for p in value.resultMultiParcelValue or ()
    )
    return _label_result(
        value.reservationNumber or "", labels, value.ESDNumber or "", value.pickupDate
    )


@dataclass(frozen=True, slots=True)
class ReservedLabel:
    """The label document of every parcel of one reservation, fetched again."""

    reservation_number: str
    data: bytes
    label_format: LabelFormat


def build_reserved_label(reservation_number: str, label_format: LabelFormat) -> bytes:
    values = {"reservationNumber": reservation_number, "mode": label_format.value}
    return zeep_request(Service.SHIPPING, RESERVED_OPERATION, values)


def parse_reserved_label(
    content: bytes, reservation_number: str, label_format: LabelFormat
) -> ReservedLabel:
    """The label document of a reservation (all its parcels), via zeep."""
    root = parse_envelope(content, RESERVED_OPERATION)
    result_of(root, NAMESPACE, RESERVED_OPERATION)
    value = zeep_result(Service.SHIPPING, RESERVED_OPERATION, root)
    data = _label_bytes(value.skybill, RESERVED_OPERATION)
    return ReservedLabel(reservation_number, data, label_format)
