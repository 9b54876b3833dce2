"""Proof of delivery in the sandbox: searchPOD and searchPODWithSenderRef as documented.

statusCode ([D] §2.6.2.b; [S] §3.18.5; SPEC-FACTS §8): 1 = not eligible (no signature is
required), 2 = no signature or slip available online, 3 = not ready yet (the image is available
one working day after delivery, D+1), 5 = available (`podPresente` true, `pod` the file). The
file is a PDF when `pdf` is true, else a PNG ([D]: PNG; [S]: PNG or JPG). Errors ([S] §3.18.5):
1 = system error (fault injection), 2 = parcel not in this contract. searchPODWithSenderRef
returns at most 10 PODs ([S] §2.10.3).

What the documents leave open is the sandbox's choice (docs/sandbox-chronopost.md, "searchPOD"):
which deliveries need no signature, what a parcel not delivered yet answers (3), and that the
D+1 day starts at midnight, Paris time, of the next French working day on the sandbox clock. It
must never show a POD before that moment.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from functools import lru_cache

import holidays
from lxml import etree
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A5
from reportlab.pdfgen.canvas import Canvas

from chronoforce.sandbox.chronopost.context import PARIS, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.store import Parcel, StoredEvent
from chronoforce.sandbox.chronopost.tables import DELIVERED_CODES, PRODUCTS
from chronoforce.sandbox.chronopost.tracking import _account, _consignee, _own_parcel

NOT_ELIGIBLE = 1
NOT_ONLINE = 2
NOT_READY = 3
AVAILABLE = 5
MAX_BY_REFERENCE = 10  # [S] §2.10.3: at most 10 PODs
# Sandbox choices (unconfirmed): deliveries where nobody signs by their nature (letterbox,
# doorstep, QR code, PIN code) and relay-point products are "not eligible" (1); a parcel
# delivered without the recipient's signature (VC) has "no signature online" (2), as has a
# parcel that will never be delivered (cancelled AN, returned R / Q).
NO_SIGNATURE_CODES = frozenset({"D1", "D2", "D6", "D7"})
UNSIGNED_CODES = frozenset({"VC"})
NEVER_DELIVERED_CODES = frozenset({"AN", "R", "Q"})


@lru_cache(maxsize=16)
def _french_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("FR", years=year).keys())


def available_from(delivered_at: float) -> dt.datetime:
    """Midnight (Paris) of the first French working day after the delivery day: Monday to
    Friday and not a national public holiday (`holidays` package)."""
    day = dt.datetime.fromtimestamp(delivered_at, PARIS).date() + dt.timedelta(days=1)
    while day.weekday() >= 5 or day in _french_holidays(day.year):
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=PARIS)


def _delivery(events: list[StoredEvent]) -> StoredEvent | None:
    return next((e for e in reversed(events) if e.code in DELIVERED_CODES), None)


def status_of(ctx: Context, parcel: Parcel) -> tuple[int, StoredEvent | None]:
    """The statusCode of the parcel's POD now (sandbox clock), and its delivery event."""
    now = ctx.clock.timestamp()
    events = ctx.store.events(parcel.skybill, now)
    delivered = _delivery(events)
    if delivered is None:
        if parcel.cancelled_at is not None or any(e.code in NEVER_DELIVERED_CODES for e in events):
            return NOT_ONLINE, None
        return NOT_READY, None  # sandbox choice: not delivered yet reads as "not ready yet"
    product = PRODUCTS.get(parcel.product)
    if delivered.code in NO_SIGNATURE_CODES or (product is not None and product.relay):
        return NOT_ELIGIBLE, delivered
    if delivered.code in UNSIGNED_CODES:
        return NOT_ONLINE, delivered
    if now < available_from(delivered.at).timestamp():
        return NOT_READY, delivered
    return AVAILABLE, delivered


def _lines(ctx: Context, parcel: Parcel, delivered: StoredEvent) -> list[str]:
    return [
        f"Skybill number: {parcel.skybill}",
        f"Delivered: {ctx.local(delivered.at):%Y-%m-%d %H:%M} ({delivered.code})",
        f"Consignee: {_consignee(parcel)}",
        "Signature: (sandbox)",
    ]


def pod_pdf(ctx: Context, parcel: Parcel, delivered: StoredEvent) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A5, invariant=1)
    canvas.setFont("Helvetica-Bold", 14)
    canvas.drawString(40, 540, "Chronopost - proof of delivery (sandbox)")
    canvas.setFont("Helvetica", 11)
    for i, line in enumerate(_lines(ctx, parcel, delivered)):
        canvas.drawString(40, 500 - 18 * i, line)
    canvas.save()
    return buffer.getvalue()


def pod_png(ctx: Context, parcel: Parcel, delivered: StoredEvent) -> bytes:
    image = Image.new("L", (600, 220), 255)
    draw = ImageDraw.Draw(image)
    draw.text((20, 20), "Chronopost - proof of delivery (sandbox)", fill=0)
    for i, line in enumerate(_lines(ctx, parcel, delivered)):
        draw.text((20, 60 + 24 * i), line, fill=0)
    draw.line((20, 200, 300, 180), fill=0, width=2)  # the "signature"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _fields(ctx: Context, op: etree._Element, parcel: Parcel) -> dict[str, object]:
    status, delivered = status_of(ctx, parcel)
    if status != AVAILABLE or delivered is None:
        return {"formatPOD": None, "pod": None, "podPresente": False, "statusCode": status}
    want_pdf = (op.findtext("pdf") or "").strip() in ("true", "1")
    data = pod_pdf(ctx, parcel, delivered) if want_pdf else pod_png(ctx, parcel, delivered)
    return {
        "formatPOD": "PDF" if want_pdf else "PNG",
        "pod": base64.b64encode(data),
        "podPresente": True,  # [D] §2.6.2.b: podPresente = true means statusCode 5
        "statusCode": AVAILABLE,
    }


def search_pod(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    parcel = _own_parcel(ctx, op, _account(ctx, op))  # error 2: not in this contract
    fields = _fields(ctx, op, parcel)
    add_all(result, [("errorCode", 0), *fields.items()])


def search_pod_with_sender_ref(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    account = _account(ctx, op)
    reference = (op.findtext("sendersRef") or "").strip()
    add(result, "errorCode", 0)
    parcels = ctx.store.parcels_by_ref(account, reference) if reference else []
    for parcel in parcels[:MAX_BY_REFERENCE]:  # the first ten, in creation order (sandbox)
        fields = _fields(ctx, op, parcel)
        entry = add(result, "listParcelPOD")
        add_all(
            entry,
            [
                ("formatPOD", fields["formatPOD"]),
                ("pod", fields["pod"]),
                ("podPresente", fields["podPresente"]),
                ("skybillNumber", parcel.skybill),
                ("statusCode", fields["statusCode"]),
            ],
        )
