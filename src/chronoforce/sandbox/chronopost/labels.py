"""Label files for sandbox parcels: a one-page PDF with a Code 128 barcode, or ZPL text.

Labels are built from a plain dict (stored with the parcel) so they can be rebuilt in another
mode later. It must stay fast (a few ms a label) and never embed a password.
"""

from __future__ import annotations

import io
from typing import Any

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from chronoforce.sandbox.chronopost.tables import PDF_MODES, ZPL_MODES

PAGE = (100 * mm, 150 * mm)  # the 10 x 15 cm thermal label size


class UnsupportedLabelMode(ValueError):
    """A skybillParamsValue.mode the sandbox cannot render."""


def label_kind(mode: str) -> str:
    """'pdf' or 'zpl' for a Chronopost label mode."""
    upper = (mode or "PDF").upper()
    if upper in PDF_MODES:
        return "pdf"
    if upper in ZPL_MODES or upper.startswith("Z"):
        return "zpl"
    raise UnsupportedLabelMode(mode)


def render(mode: str, labels: list[dict[str, Any]]) -> bytes:
    """One document holding one label (page or ZPL block) per parcel, in order."""
    if label_kind(mode) == "pdf":
        return _pdf(labels)
    return "".join(_zpl(label) for label in labels).encode("utf-8")


def _address_lines(party: dict[str, Any]) -> list[str]:
    lines = [party.get("name"), party.get("name2"), party.get("address1"), party.get("address2")]
    lines.append(f"{party.get('zip', '')} {party.get('city', '')} {party.get('country', '')}")
    return [str(line) for line in lines if line]


def _summary_lines(label: dict[str, Any]) -> list[str]:
    lines = [
        f"{label['product_name']} ({label['product']})  {label['weight']:.2f} kg",
        f"Ref: {label.get('shipper_ref') or '-'}",
        f"Recipient ref: {label.get('recipient_ref') or '-'}",
    ]
    if label.get("total"):
        lines.append(f"Parcel {label.get('rank', 1)}/{label['total']}")
    if label.get("id_relais"):
        lines.append(f"Relay point: {label['id_relais']}")
    if label.get("service") in ("1", "6"):
        lines.append("MONDAY DELIVERY" if label["service"] == "1" else "SATURDAY DELIVERY")
    if label.get("insured_cents"):
        lines.append(f"Insured value: {label['insured_cents'] / 100:.2f} EUR")
    if label.get("cod_cents"):
        lines.append(f"Cash on delivery: {label['cod_cents'] / 100:.2f} EUR")
    if label.get("slot_start"):  # the Precise box ([D] §4.7)
        lines.append(f"PRECISE {label['slot_start']}-{label['slot_end']} {label['slot_level']}")
    if label.get("expiration_date"):
        lines.append(f"Use by: {str(label['expiration_date'])[:10]}")
    if label.get("is_return"):
        lines.append("RETURN / RETOUR")
    return lines


def _pdf_page(canvas: Canvas, label: dict[str, Any]) -> None:
    width, height = PAGE
    y = height - 10 * mm
    canvas.setFont("Helvetica-Bold", 14)
    canvas.drawString(6 * mm, y, f"CHRONOPOST  {label['signaletique']}")
    for title, party in (("FROM", label["shipper"]), ("TO", label["recipient"])):
        y -= 8 * mm
        canvas.setFont("Helvetica-Bold", 9)
        canvas.drawString(6 * mm, y, title)
        canvas.setFont("Helvetica", 9)
        for line in _address_lines(party):
            y -= 4.2 * mm
            canvas.drawString(10 * mm, y, line[:60])
    y -= 4 * mm
    for line in _summary_lines(label):
        y -= 4.5 * mm
        canvas.drawString(6 * mm, y, line[:70])
    barcode = Code128(label["skybill"], barHeight=22 * mm, barWidth=0.42 * mm, quiet=True)
    barcode.drawOn(canvas, (width - barcode.width) / 2, 22 * mm)
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawCentredString(width / 2, 13 * mm, label["skybill"])
    canvas.showPage()


def _pdf(labels: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    # invariant=1: no timestamps or random ids, so the same parcel gives the same bytes.
    canvas = Canvas(buffer, pagesize=PAGE, invariant=1, pageCompression=0)
    canvas.setTitle("Chronopost label (chronoforce sandbox)")
    for label in labels:
        _pdf_page(canvas, label)
    canvas.save()
    return buffer.getvalue()


def _zpl_field(text: str) -> str:
    # ^ and ~ start ZPL commands; they must not appear inside field data.
    return text.replace("^", " ").replace("~", " ")


def _zpl(label: dict[str, Any]) -> str:
    parts = ["^XA", "^CI28", "^PW799", "^LL1199"]
    parts.append(f"^FO40,30^A0N,40,40^FDCHRONOPOST {_zpl_field(label['signaletique'])}^FS")
    y = 90
    for title, party in (("FROM", label["shipper"]), ("TO", label["recipient"])):
        parts.append(f"^FO40,{y}^A0N,28,28^FD{title}^FS")
        for line in _address_lines(party):
            y += 32
            parts.append(f"^FO60,{y}^A0N,26,26^FD{_zpl_field(line[:60])}^FS")
        y += 50
    for line in _summary_lines(label):
        parts.append(f"^FO40,{y}^A0N,26,26^FD{_zpl_field(line[:70])}^FS")
        y += 32
    parts.append(f"^FO80,{max(y + 40, 820)}^BY3^BCN,200,Y,N,N^FD{label['skybill']}^FS")
    parts.append("^XZ")
    return "\n".join(parts) + "\n"
