"""Which Chronopost label modes are PDF documents: the file name, the media type and whether
several parcels' labels are merged page by page all follow from it."""

from __future__ import annotations

from chronoforce.domain.models import LabelFormat
from chronoforce.pipeline.writeback import PDF_FORMATS, label_file_row


def test_the_pdf_family_is_pdf_ppr_spd_and_every_thermal_mode_is_zpl() -> None:
    # shared/reference/chronopost/NOTES.md: PDF family vs ZPL family.
    assert sorted(PDF_FORMATS) == ["PDF", "PPR", "SPD"]
    assert not LabelFormat.THE.is_pdf, "THE is the thermal printer mode"
    assert {f.value for f in LabelFormat if not f.is_pdf} == {
        "THE", "Z2D", "THEPSG", "ZPLPSG", "ZPL300", "Z2DPSG",
    }  # fmt: skip


def test_a_label_file_is_named_after_its_family() -> None:
    def title(label_format: str) -> str:
        row = label_file_row(
            shipment_id=1, generation=1, parcels=[(1, 10)], label_format=label_format,
            title="Chronopost label 00001", name="chronopost-XP1", attach_to=["801x"],
        )  # fmt: skip
        return str(row["payload"]["filename"])

    assert title("PPR").endswith(".pdf")
    assert title("THE").endswith(".zpl")
