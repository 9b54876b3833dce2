"""The end-of-day slip as a PDF (reportlab): header, one row per parcel, totals, two signatures.

Pure: data in, bytes out; no store, no clock. The layout follows what Chronopost's own e-commerce
modules print on their slip (the shipper's account and address, one line per skybill number with
product and destination postal code, national / international / total counts, a signature box
for the shipper and one for the Chronopost driver; SPEC-FACTS.md §11 and [D] §2.8: no web
service makes it). The table repeats its header on every page, so any number of rows fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table
from reportlab.platypus import TableStyle as Style

COLUMNS = (
    "Skybill number",
    "Order",
    "Recipient",
    "Postal code",
    "Product",
    "Weight (kg)",
    "Parcels",
)
WIDTHS = (34 * mm, 30 * mm, 48 * mm, 20 * mm, 16 * mm, 20 * mm, 14 * mm)
RECIPIENT_CHARS = 30  # one line per row: a long name is cut, never wrapped over two rows


@dataclass(frozen=True)
class SlipLine:
    """One parcel handed over: a row of the slip."""

    skybill_number: str
    order_number: str
    recipient: str
    postal_code: str
    country: str
    product_code: str
    weight_kg: Decimal
    parcels: int  # parcels of its shipment (1 of a multi-parcel shipment shows the count)


@dataclass(frozen=True)
class SlipHeader:
    shipper_name: str
    shipper_address: str
    account_number: str
    sub_account: str
    location: str
    day: dt.date
    version: int
    made_at: dt.datetime  # local time of the shipper


def kilos(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.001'))}"


def render(header: SlipHeader, lines: Sequence[SlipLine]) -> bytes:
    """The slip's PDF bytes."""
    out = BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=f"Chronopost end-of-day slip {header.day.isoformat()}",
        author="chronoforce",
    )
    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph("Chronopost end-of-day slip (bordereau)", styles["Title"]),
        _header_table(header),
        Spacer(1, 5 * mm),
        _parcel_table(lines),
        Spacer(1, 5 * mm),
        KeepTogether([_totals_table(lines), Spacer(1, 4 * mm), _statement(lines, styles)]),
        Spacer(1, 6 * mm),
        KeepTogether([_signatures()]),
    ]

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        text = (
            f"Account {header.account_number} / {header.sub_account or '-'} · "
            f"{header.location} · {header.day.isoformat()} · version {header.version} · "
            f"page {document.page}"
        )
        canvas.drawString(12 * mm, 8 * mm, text)
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _header_table(header: SlipHeader) -> Table:
    rows = [
        ("Shipper", header.shipper_name),
        ("Address", header.shipper_address),
        ("Chronopost account", header.account_number),
        ("Sub-account", header.sub_account or "-"),
        ("Location", header.location),
        ("Pickup day", header.day.isoformat()),
        ("Made at", f"{header.made_at:%Y-%m-%d %H:%M} (version {header.version})"),
    ]
    table = Table(rows, colWidths=(40 * mm, 140 * mm), hAlign="LEFT")
    table.setStyle(
        Style(
            [
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _parcel_table(lines: Sequence[SlipLine]) -> Table:
    rows: list[tuple[str, ...]] = [COLUMNS]
    for line in lines:
        rows.append(
            (
                line.skybill_number,
                line.order_number[:18],
                line.recipient[:RECIPIENT_CHARS],
                f"{line.postal_code} {line.country}".strip(),
                line.product_code,
                kilos(line.weight_kg),
                str(line.parcels),
            )
        )
    if not lines:
        rows.append(("no parcel handed over", "", "", "", "", "", ""))
    table = Table(rows, colWidths=WIDTHS, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        Style(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("ALIGN", (5, 1), (6, -1), "RIGHT"),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _totals_table(lines: Sequence[SlipLine]) -> Table:
    national = sum(1 for line in lines if line.country in ("FR", "MC", ""))
    weight = sum((line.weight_kg for line in lines), Decimal(0))
    rows = [
        ("Totals", ""),
        ("Parcels, France", str(national)),
        ("Parcels, international", str(len(lines) - national)),
        ("Parcels, total", str(len(lines))),
        ("Weight, total (kg)", kilos(weight)),
    ]
    table = Table(rows, colWidths=(50 * mm, 30 * mm), hAlign="LEFT")
    table.setStyle(
        Style(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTNAME", (0, 3), (-1, 4), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("GRID", (0, 1), (-1, -1), 0.4, colors.grey),
                ("ALIGN", (1, 1), (1, -1), "RIGHT"),
            ]
        )
    )
    return table


def _statement(lines: Sequence[SlipLine], styles: Any) -> Paragraph:
    return Paragraph(
        f"The Chronopost driver takes over {len(lines)} parcel(s) listed above.", styles["Normal"]
    )


def _signatures() -> Table:
    box = "Name: ____________________\n\nDate: ____________  Time: ________\n\nSignature:\n\n\n"
    rows = [("Shipper", "Chronopost driver"), (box, box)]
    table = Table(rows, colWidths=(90 * mm, 90 * mm), rowHeights=(7 * mm, 42 * mm))
    table.setStyle(
        Style(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("BOX", (0, 0), (0, -1), 0.8, colors.black),
                ("BOX", (1, 0), (1, -1), 0.8, colors.black),
                ("VALIGN", (0, 1), (-1, -1), "TOP"),
            ]
        )
    )
    return table
