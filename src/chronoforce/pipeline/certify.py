"""`chronoforce certify`: the sample labels Chronopost checks before it issues production
credentials — one per product of the configuration, made on the test account by default
(SPEC-FACTS §12: account 19869502; production credentials only after Chronopost has validated
requests and labels for each contracted product).

Each product gets a sample shipment that suits it (a French address, an EU or world address, a
relay point found by a relay search), one label file in the output folder, and a line in a
summary PDF (product, options, skybill numbers, request reference). A product the account cannot
label is a refusal with Chronopost's own message, never a silent gap. It never touches Salesforce
or the store; calls go one at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import (
    Address,
    Contact,
    LabelFormat,
    Parcel,
    Party,
    References,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.products import is_international, product_info
from chronoforce.domain.routing import Product, RoutingRules, Zone, next_working_day

TEST_ACCOUNT = "19869502"  # SPEC-FACTS §12 (Chronopost's documented test account)

# What an international sample declares (customs value, precise English contents: SPEC-FACTS §2.5).
SAMPLE_VALUE = Decimal("45")
SAMPLE_CONTENTS = ("Printed paper catalogues",)
# A sample recipient per zone: real-looking public addresses (town halls), never a customer's.
SAMPLE_RECIPIENTS: dict[Zone, Party] = {
    Zone.FR: Party(
        Address("Mairie de Lyon 3e", line1="18 rue François Garcin", postal_code="69003",
                city="LYON", country="FR"),
        Contact("Accueil", phone="0478951800", mobile="0612345678",
                email="certification@example.com"),
    ),
    Zone.EU: Party(
        Address("Museum fur Naturkunde", line1="Invalidenstrasse 43", postal_code="10115",
                city="BERLIN", country="DE"),
        Contact("Empfang", phone="+4930901820", mobile="+4915112345678",
                email="certification@example.com"),
    ),
    Zone.DOM: Party(
        Address("Mairie de Saint-Denis", line1="2 rue de Paris", postal_code="97400",
                city="SAINT-DENIS", country="RE"),
        Contact("Accueil", phone="0262402000", mobile="0692123456",
                email="certification@example.com"),
    ),
    Zone.WORLD: Party(
        Address("Hôtel de Ville", line1="Place de l'Hôtel-de-Ville 2", postal_code="1204",
                city="GENEVE", country="CH"),
        Contact("Accueil", phone="+41224187000", mobile="+41791234567",
                email="certification@example.com"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One product's sample: what was asked and what Chronopost answered (or why it refused)."""

    product: str
    name: str
    options: str
    reference: str
    destination: str
    skybill_numbers: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return not self.refusal


@dataclass(frozen=True)
class Certification:
    account_number: str
    folder: Path
    samples: tuple[Sample, ...]
    summary: Path
    made_at: dt.datetime = field(default_factory=SYSTEM_CLOCK.now)

    @property
    def refused(self) -> tuple[Sample, ...]:
        return tuple(s for s in self.samples if not s.ok)


def products_to_certify(rules: RoutingRules, wanted: Sequence[str] = ()) -> list[Product | str]:
    """The configuration's products, or the codes asked for (an unknown code stays a string so
    that it is refused by name rather than dropped)."""
    if not wanted:
        return list(rules.products)
    chosen: list[Product | str] = []
    for code in wanted:
        product = rules.product(code)
        chosen.append(product if product is not None else code)
    return chosen


def _zone_for(product: Product) -> Zone:
    for zone in (Zone.FR, Zone.EU, Zone.WORLD, Zone.DOM):
        if zone in product.zones:
            return zone
    return product.zones[0]


def certify(
    carrier: Any,
    shipper: Party,
    products: Sequence[Product | str],
    folder: Path,
    *,
    account_number: str,
    label_format: LabelFormat = LabelFormat.PDF,
    today: dt.date | None = None,
) -> Certification:
    """Make one sample label per product into `folder`, then the summary PDF beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    ship_date = next_working_day(today or dt.date.today())
    samples = [
        _sample(carrier, shipper, p, folder, i, label_format, ship_date)
        for i, p in enumerate(products, start=1)
    ]
    summary = folder / "certification-summary.pdf"
    result = Certification(account_number, folder, tuple(samples), summary)
    write_summary(result)
    return result


def _sample(
    carrier: Any,
    shipper: Party,
    product: Product | str,
    folder: Path,
    index: int,
    label_format: LabelFormat,
    ship_date: dt.date,
) -> Sample:
    code = product if isinstance(product, str) else product.code
    reference = f"CERT-{code}-{index:02d}"
    if isinstance(product, str):
        return Sample(code, "?", "", reference, "", refusal=f"product {code} is not configured")
    zone = _zone_for(product)
    recipient = SAMPLE_RECIPIENTS[zone]
    options: list[str] = []
    relay_id = ""
    try:
        if product.relay:
            address = recipient.address
            points = carrier.relay_points(
                address.postal_code, address.country, address.city, product_code=product.code
            )
            if not points:
                raise LookupError(f"no relay point near {address.postal_code} {address.city}")
            relay_id = str(points[0].id)
            options.append(f"relay point {relay_id}")
        info = product_info(product.code)
        returning = info is not None and info.is_return
        shipper_party, recipient_party = shipper, recipient
        extra: dict[str, Any] = {"label_format": label_format}
        if returning:
            # A return: the consumer sends the parcel to us, label mode PPR, not e-mailed
            # (SPEC-FACTS §2.5 "Returns"; pipeline/returns.py builds the real ones).
            shipper_party, recipient_party = SAMPLE_RECIPIENTS[Zone.FR], shipper
            extra = {"label_format": LabelFormat.PPR, "is_return": True, "mode_retour": "2"}
            options.append("return to us")
        if is_international(recipient_party.address.country):
            extra |= {"declared_value": SAMPLE_VALUE, "contents": SAMPLE_CONTENTS}
            options.append(f"customs value {SAMPLE_VALUE} EUR")
        weight = min(Decimal("1.5"), product.max_weight_kg)
        request = ShipmentRequest(
            shipper=shipper_party,
            recipient=recipient_party,
            parcels=(Parcel(weight_kg=weight, reference=reference),),
            product_code=product.code,
            ship_date=ship_date,
            references=References(order_number=reference, customer_id="CERTIFICATION"),
            options=ShipmentOptions(relay_point_id=relay_id, **extra),
            customer=shipper if returning else None,  # the merchant holds the account
        )
        result = carrier.create_shipment(request)
    except (ChronoforceError, LookupError) as exc:
        return Sample(
            product.code,
            product.name,
            ", ".join(options),
            reference,
            _where(recipient),
            refusal=f"{type(exc).__name__}: {exc}",
        )
    suffix = "pdf" if request.options.label_format.is_pdf else "zpl"
    files = []
    for label in result.labels:
        path = folder / f"{product.code}-{label.skybill_number}.{suffix}"
        path.write_bytes(label.data)
        files.append(path)
    return Sample(
        product.code,
        product.name,
        ", ".join(options) or "home delivery",
        reference,
        _where(recipient),
        skybill_numbers=result.skybill_numbers,
        files=tuple(files),
    )


def _where(party: Party) -> str:
    a = party.address
    return f"{a.postal_code} {a.city} {a.country}"


def write_summary(result: Certification) -> None:
    """The summary PDF Chronopost's IT contact reads: one row per product."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    doc = SimpleDocTemplate(
        str(result.summary), pagesize=landscape(A4), title="chronoforce certify"
    )
    rows: list[list[Any]] = [
        [
            "product",
            "name",
            "options",
            "destination",
            "skybill numbers",
            "request reference",
            "result",
        ],
    ]
    body = styles["BodyText"]
    for s in result.samples:
        outcome = "label made" if s.ok else f"refused: {s.refusal}"
        rows.append(
            [
                s.product,
                Paragraph(s.name, body),
                Paragraph(s.options, body),
                s.destination,
                "\n".join(s.skybill_numbers),
                s.reference,
                Paragraph(outcome, body),
            ]
        )
    table = Table(rows, repeatRows=1, colWidths=[45, 120, 120, 110, 110, 100, 180])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    made = len(result.samples) - len(result.refused)
    story = [
        Paragraph("Chronopost sample labels for validation", styles["Title"]),
        Paragraph(
            f"Account {result.account_number} · {result.made_at:%Y-%m-%d %H:%M} UTC · "
            f"{made} of {len(result.samples)} products labelled",
            styles["Normal"],
        ),
        Spacer(1, 12),
        table,
    ]
    doc.build(story)
