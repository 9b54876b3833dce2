"""The end-of-day slip use case: the day's parcels per account, sub-account, location, as a PDF.

Chronopost has no web service for it (SPEC-FACTS.md §11; [D] §2.8 shows a template): the driver
signs a list the shipper prints. `Manifests.build(day)` groups every live parcel of an outbound
shipment by the Chronopost contract that shipped it (chronopost/shipping.py `family_for` over
the configured accounts), the shipper location (`location_key`) and its pickup day, stores one
`manifest` row per group with the PDF, and queues its Salesforce record (upserted on
Chronoforce_Key__c) and the PDF as a file on it through the outbox. A group whose parcel list is
unchanged since its last slip makes nothing; a changed list makes a new version. It never calls
Chronopost and never writes to Salesforce directly.

Pickup day (docs/operations.md, "End-of-day slip"): the day of the pickup booked for the
shipment when there is one (`source["pickups"]`, the latest), else the day its label was made,
in the shipper's time zone (`routing.timezone`). Returns are left out: the consumer drops them
at a relay point (SPEC-FACTS §2.5), no driver collects them from the shipper.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from chronoforce.chronopost.config import ChronopostAccounts, ChronopostCredentials
from chronoforce.chronopost.shipping import family_for
from chronoforce.config import Settings
from chronoforce.config.sections import MAIN_LOCATION, LocationsConfig, section
from chronoforce.domain.address import normalize_party
from chronoforce.domain.errors import MappingError, NotFoundError
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.manifest_pdf import SlipHeader, SlipLine, render
from chronoforce.salesforce import fields
from chronoforce.salesforce.mapping import MappingConfig, map_record
from chronoforce.store.db import Store
from chronoforce.store.models import Manifest, Outbox, Parcel, Shipment

log = get_logger(component="manifest")

MANIFEST_OBJECT = fields.MANIFEST
MANIFEST_KEY_FIELD = fields.MANIFEST_KEY.api
DEFAULT_LOCATION = MAIN_LOCATION  # a setup without `locations.sites` has this one location
CANCELLED_STATE = ShipmentState.CANCELLED
# How far back a label may have been made for a pickup booked on the day asked (a pickup on
# demand is booked for the next days; [D] §4 documents no limit: an UNCONFIRMED CHOICE).
LOOKBACK = dt.timedelta(days=14)


def location_key(shipment: Shipment, default: str = DEFAULT_LOCATION) -> str:
    """The shipper location a shipment left from (`shipment.location`, issue 23); a row made
    before locations existed is on the default location's slip."""
    return str(shipment.location or default)


@dataclass(frozen=True)
class Group:
    account_number: str
    sub_account: str
    location: str
    day: dt.date

    @property
    def key(self) -> str:
        """Chronoforce_Key__c of the group's Salesforce record: one record per group and day."""
        return f"{self.account_number}|{self.sub_account or '-'}|{self.location}|{self.day}"


@dataclass(frozen=True)
class Slip:
    """A stored slip, as callers see it (no bytes)."""

    id: int
    account_number: str
    sub_account: str
    location: str
    day: dt.date
    version: int
    parcel_count: int
    total_weight_kg: Decimal
    pdf_sha256: str
    sf_id: str
    created_at: dt.datetime
    made_now: bool = False  # this build made it

    @property
    def filename(self) -> str:
        sub = f"-{self.sub_account}" if self.sub_account else ""
        return (
            f"chronopost-slip-{self.day}-{self.account_number}{sub}-{self.location}"
            f"-v{self.version}.pdf"
        )


@dataclass
class Manifests:
    """Builds, lists and hands out the slips; `accounts` maps a family (None: main) to
    (account number, sub-account)."""

    store: Store
    mapping: MappingConfig
    accounts: Callable[[Any, str], tuple[str, str]]
    shipper_name: str
    shipper_address: str
    zone: ZoneInfo
    now: Callable[[], dt.datetime]
    # Issue 23: each location's (name, address) for its slip's header, and the location of a
    # row made before locations existed (the configured default).
    sites: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    default_location: str = DEFAULT_LOCATION

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        mapping: MappingConfig | None = None,
        now: Callable[[], dt.datetime] | None = None,
    ) -> Manifests:
        config = settings.chronopost
        # The contracts as the client builds them, each location's own included (issue 23);
        # only numbers are read here, so no password is needed.
        main = ChronopostCredentials(config.account_number, "", config.sub_account)
        where = section(LocationsConfig, "locations", settings.locations)
        contracts = ChronopostAccounts.build(main, config.accounts).with_locations(where.sites)

        def accounts(family: Any, location: str = "") -> tuple[str, str]:
            own = contracts.for_location(location).for_family(family)
            return own.account_number.strip(), own.sub_account.strip()

        def header(s: Any) -> tuple[str, str]:
            name = " ".join(p for p in (s.name, s.name2) if p)
            lines = (s.line1, s.line2, f"{s.postal_code} {s.city}", s.country)
            return name, ", ".join(p for p in lines if p)

        name, address = header(config.shipper)
        return cls(
            store=store,
            mapping=mapping or MappingConfig.from_settings(settings.mapping),
            accounts=accounts,
            shipper_name=name,
            shipper_address=address,
            zone=ZoneInfo(settings.routing.timezone),
            now=now or (lambda: dt.datetime.now(dt.UTC)),
            sites={key: header(site) for key, site in where.sites.items()},
            default_location=where.default_key,
        )

    # --- build ---------------------------------------------------------------------------

    def build(self, day: dt.date, account: str | None = None) -> list[Slip]:
        """The day's slips, made where missing or out of date; every group of the day.

        Two processes making the same version at once: the unique key keeps one, and the
        other's second look finds it (and its digest) made."""
        try:
            return self._build(day, account)
        except IntegrityError:
            log.info("slip made by another process meanwhile", day=day.isoformat())
            return self._build(day, account)

    def _build(self, day: dt.date, account: str | None) -> list[Slip]:
        groups = self._groups(day)
        slips: list[Slip] = []
        with self.store.session() as session:
            latest = self._latest(session, day)
            for group in sorted(set(groups) | set(latest), key=lambda g: g.key):
                if account and group.account_number != account.strip():
                    continue
                lines = sorted(groups.get(group, []), key=lambda line: line.skybill_number)
                digest = _digest(lines)
                last = latest.get(group)
                if last is not None and last.parcels_digest == digest:
                    slips.append(_slip(last))
                    continue
                if last is None and not lines:
                    continue
                row = self._make(session, group, lines, digest, (last.version if last else 0) + 1)
                slips.append(_slip(row, made_now=True))
        return slips

    def _groups(self, day: dt.date) -> dict[Group, list[SlipLine]]:
        start = dt.datetime.combine(day, dt.time(), self.zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.zone).astimezone(
            dt.UTC
        )
        statement = (
            select(Parcel, Shipment)
            .join(Shipment, Parcel.shipment_id == Shipment.id)
            .where(
                Parcel.live,
                Shipment.intent == "outbound",
                Shipment.state != CANCELLED_STATE,
                Parcel.created_at >= start - LOOKBACK,
                Parcel.created_at < end,
            )
        )
        groups: dict[Group, list[SlipLine]] = defaultdict(list)
        with self.store.session() as session:
            rows = [(p, s) for p, s in session.execute(statement)]
            live_count: dict[int, int] = defaultdict(int)
            for _, shipment in rows:
                live_count[shipment.id] += 1
            recipients: dict[int, tuple[str, str, str]] = {}
            for parcel, shipment in rows:
                if pickup_day(shipment, parcel, self.zone) != day:
                    continue
                if shipment.id not in recipients:  # mapped once per shipment, not per parcel
                    recipients[shipment.id] = self._recipient(shipment)
                name, postal_code, country = recipients[shipment.id]
                family = family_for(shipment.product_code, False, country or "FR")
                location = location_key(shipment, self.default_location)
                number, sub = self.accounts(family, location)
                group = Group(number, sub, location, day)
                groups[group].append(
                    SlipLine(
                        skybill_number=parcel.skybill_number,
                        order_number=shipment.order_number,
                        recipient=name,
                        postal_code=postal_code,
                        country=country,
                        product_code=shipment.product_code,
                        weight_kg=Decimal(str(parcel.weight_kg)),
                        parcels=live_count[shipment.id],
                    )
                )
        return groups

    def _recipient(self, shipment: Shipment) -> tuple[str, str, str]:
        source = shipment.source or {}
        try:
            order = map_record(source.get("record", {}), source.get("items", []), self.mapping)
        except MappingError:
            return "", "", ""
        # As the label request had it: normalized (country as ISO code, postal code cleaned).
        address = normalize_party(order.recipient, "recipient").party.address
        return address.name, address.postal_code, address.country

    def _latest(self, session: Any, day: dt.date) -> dict[Group, Manifest]:
        newest = (
            select(
                Manifest.account_number,
                Manifest.sub_account,
                Manifest.location,
                func.max(Manifest.version).label("version"),
            )
            .where(Manifest.day == day)
            .group_by(Manifest.account_number, Manifest.sub_account, Manifest.location)
            .subquery()
        )
        statement = (
            select(Manifest)
            .join(
                newest,
                (Manifest.account_number == newest.c.account_number)
                & (Manifest.sub_account == newest.c.sub_account)
                & (Manifest.location == newest.c.location)
                & (Manifest.version == newest.c.version),
            )
            .where(Manifest.day == day)
        )
        return {
            Group(m.account_number, m.sub_account, m.location, m.day): m
            for m in session.scalars(statement)
        }

    def _make(
        self, session: Any, group: Group, lines: list[SlipLine], digest: str, version: int
    ) -> Manifest:
        now = self.now()
        name, address = self.sites.get(group.location, (self.shipper_name, self.shipper_address))
        header = SlipHeader(
            shipper_name=name,
            shipper_address=address,
            account_number=group.account_number,
            sub_account=group.sub_account,
            location=group.location,
            day=group.day,
            version=version,
            made_at=now.astimezone(self.zone),
        )
        pdf = render(header, lines)
        weight = sum((line.weight_kg for line in lines), Decimal(0))
        row = Manifest(
            account_number=group.account_number,
            sub_account=group.sub_account,
            location=group.location,
            day=group.day,
            version=version,
            parcel_count=len(lines),
            total_weight_kg=weight,
            parcels_digest=digest,
            pdf_sha256=hashlib.sha256(pdf).hexdigest(),
            pdf=pdf,
            created_at=now,
        )
        session.add(row)
        session.flush()
        writeback.enqueue_rows(session, salesforce_rows(row, group))
        log.info(
            "slip made", manifest_id=row.id, key=group.key, version=version, parcels=len(lines)
        )
        return row

    # --- read ----------------------------------------------------------------------------

    def list(self, day: dt.date, account: str | None = None) -> list[Slip]:
        """The stored slips of a day, every version, newest version first per group."""
        with self.store.session() as session:
            statement = select(Manifest).where(Manifest.day == day)
            if account:
                statement = statement.where(Manifest.account_number == account.strip())
            rows = list(session.scalars(statement))
            _learn_salesforce_ids(session, rows)
            rows.sort(key=lambda m: (m.account_number, m.sub_account, m.location, -m.version))
            return [_slip(m) for m in rows]

    def pdf(self, manifest_id: int) -> tuple[Slip, bytes]:
        with self.store.session() as session:
            row = session.get(Manifest, manifest_id)
            if row is None:
                raise NotFoundError(f"no slip {manifest_id}", code="MANIFEST_NOT_FOUND")
            return _slip(row), bytes(row.pdf)


def pickup_day(shipment: Shipment, parcel: Parcel, zone: ZoneInfo) -> dt.date:
    """The day the parcel is handed over: its booked pickup's, else its label's local day."""
    booked = (shipment.source or {}).get("pickups") or {}
    if booked:
        return dt.date.fromisoformat(max(booked))
    made = parcel.created_at
    if made.tzinfo is None:  # SQLite hands back naive UTC
        made = made.replace(tzinfo=dt.UTC)
    return made.astimezone(zone).date()


def salesforce_rows(row: Manifest, group: Group) -> list[dict[str, Any]]:
    """The record (upsert on the group's key: one per group and day) and the PDF as a file on
    it (found by that key when the flusher sends it; writeback.py `first_publish_location`)."""
    sub = f"/{group.sub_account}" if group.sub_account else ""
    record = writeback.outbox_row(
        sf_object=MANIFEST_OBJECT,
        operation="upsert",
        external_id_field=MANIFEST_KEY_FIELD,
        payload={
            MANIFEST_KEY_FIELD: group.key,
            "Name": f"Slip {group.day} {group.account_number}{sub} {group.location}"[:80],
            fields.MANIFEST_DAY.api: group.day.isoformat(),
            fields.MANIFEST_ACCOUNT.api: group.account_number,
            fields.MANIFEST_SUB_ACCOUNT.api: group.sub_account or None,
            fields.MANIFEST_LOCATION.api: group.location[:40],
            fields.MANIFEST_PARCELS.api: row.parcel_count,
            fields.MANIFEST_WEIGHT.api: float(row.total_weight_kg),
            fields.MANIFEST_VERSION.api: row.version,
        },
        dedup_key=record_key(row.id),
    )
    file = writeback.outbox_row(
        sf_object="ContentVersion",
        operation="file",
        dedup_key=f"manifest:{row.id}",
        payload={
            "manifest_id": row.id,
            "size": len(row.pdf),
            "title": f"Chronopost end-of-day slip {group.day} v{row.version}",
            "filename": _slip(row).filename,
            "first_publish_location_id": "",
            "first_publish_location": {
                "sf_object": MANIFEST_OBJECT,
                "key_field": MANIFEST_KEY_FIELD,
                "key": group.key,
            },
            "link_to": [],
        },
    )
    return [record, file]


def record_key(manifest_id: int) -> str:
    return f"manifest-record:{manifest_id}"


def _learn_salesforce_ids(session: Any, rows: Iterable[Manifest]) -> None:
    """The record id Salesforce answered the upsert with, once it was sent."""
    missing = {record_key(m.id): m for m in rows if not m.sf_id}
    if not missing:
        return
    statement = select(Outbox.dedup_key, Outbox.result).where(
        Outbox.dedup_key.in_(sorted(missing)), Outbox.state == "sent"
    )
    for key, result in session.execute(statement):
        record_id = str((result or {}).get("id") or "")
        if record_id:
            missing[key].sf_id = record_id[:18]


def _digest(lines: Iterable[SlipLine]) -> str:
    text = "\n".join(
        "|".join(
            (
                line.skybill_number,
                line.order_number,
                line.recipient,
                line.postal_code,
                line.country,
                line.product_code,
                str(line.weight_kg),
                str(line.parcels),
            )
        )
        for line in lines
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _slip(row: Manifest, *, made_now: bool = False) -> Slip:
    created = row.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    return Slip(
        id=row.id,
        account_number=row.account_number,
        sub_account=row.sub_account,
        location=row.location,
        day=row.day,
        version=row.version,
        parcel_count=row.parcel_count,
        total_weight_kg=Decimal(str(row.total_weight_kg)),
        pdf_sha256=row.pdf_sha256,
        sf_id=row.sf_id,
        created_at=created,
        made_now=made_now,
    )
