"""Which Chronopost label modes are PDF documents: the file name, the media type and whether
several parcels' labels are merged page by page all follow from it."""

from __future__ import annotations

from chronoforce.domain.models import LabelFormat
from chronoforce.pipeline.writeback import PDF_FORMATS, label_file_row


def test_the_thermal_the_modes_are_pdf_and_the_z_modes_are_zpl() -> None:
    # [D] §2.3.2.b8, §4.4 (SPEC-FACTS §2.6): THE, THE1015, THEPSG print PDF on a thermal
    # printer; Z2D, Z2DPSG, ZPL300 (and [S]'s ZPLPSG) are ZPL.
    assert sorted(PDF_FORMATS) == ["PDF", "PPR", "SPD", "THE", "THE1015", "THEPSG"]
    assert LabelFormat.THE.is_pdf, "THE is a PDF for a thermal printer"
    assert {f.value for f in LabelFormat if not f.is_pdf} == {
        "Z2D", "Z2DPSG", "ZPLPSG", "ZPL300",
    }  # fmt: skip


def test_a_label_file_is_named_after_its_family() -> None:
    def title(label_format: str) -> str:
        row = label_file_row(
            shipment_id=1, generation=1, parcels=[(1, 10)], label_format=label_format,
            title="Chronopost label 00001", name="chronopost-XP1", attach_to=["801x"],
        )  # fmt: skip
        return str(row["payload"]["filename"])

    assert title("PPR").endswith(".pdf")
    assert title("THE").endswith(".pdf")
    assert title("THEPSG").endswith(".pdf")
    assert title("Z2D").endswith(".zpl")
