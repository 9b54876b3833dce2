"""SQLAlchemy 2.0 models of the store. Names follow ARCHITECTURE.md's table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.shipment_state import ShipmentState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER


# Column defaults: the system clock of domain/clock.py (a use case passes its own times).
utcnow = SYSTEM_CLOCK.now


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Shipment(Base):
    """One shipping intent of one Salesforce record (outbound label, or a return)."""

    __tablename__ = "shipment"
    __table_args__ = (
        UniqueConstraint("sf_object", "sf_id", "intent", name="uq_shipment_record_intent"),
        Index("ix_shipment_state_next_attempt", "state", "next_attempt_at"),
        Index("ix_shipment_next_poll", "next_poll_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sf_object: Mapped[str] = mapped_column(String(40))
    sf_id: Mapped[str] = mapped_column(String(18))
    intent: Mapped[str] = mapped_column(String(20), default="outbound")
    state: Mapped[str] = mapped_column(String(20), default=ShipmentState.PENDING, index=True)
    status: Mapped[str] = mapped_column(String(30), default="pending")
    order_number: Mapped[str] = mapped_column(String(80), default="", index=True)
    customer_id: Mapped[str] = mapped_column(String(80), default="")
    returns_reference: Mapped[str] = mapped_column(String(80), default="")
    shipper_ref: Mapped[str | None] = mapped_column(String(35), unique=True)
    product_code: Mapped[str] = mapped_column(String(4), default="")
    routing_reason: Mapped[str] = mapped_column(Text, default="")
    reservation_number: Mapped[str] = mapped_column(String(50), default="")
    request_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    tracking_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    sf_modstamp: Mapped[str] = mapped_column(String(40), default="")
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the mapped order
    generation: Mapped[int] = mapped_column(Integer, default=0)  # labels made so far
    last_event_code: Mapped[str] = mapped_column(String(10), default="")
    last_event_at: Mapped[dt.datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    next_poll_at: Mapped[dt.datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column()
    queued_at: Mapped[dt.datetime | None] = mapped_column()  # last put on the queue (sweeper)
    verify_at: Mapped[dt.datetime | None] = mapped_column()  # look the parcels up again then
    # A retry asked for it: read the record from Salesforce again before the next preparation.
    reread_at: Mapped[dt.datetime | None] = mapped_column()
    # A cancel asked before Chronopost's cancel window opened: sent then (pipeline/cancel.py).
    cancel_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # Proof of delivery (issue 21, pipeline/pod.py): None until delivered; then pending,
    # available, not_eligible, not_online or gave_up; asked again at pod_next_at.
    pod_status: Mapped[str | None] = mapped_column(String(20))
    pod_next_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    pod_reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pod_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Issue 23: the shipper location it left from (a `locations.sites` key) and why.
    location: Mapped[str] = mapped_column(String(40), default="", server_default="")
    location_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    # Issue 21 (delta tracking): when a trackSearch answer last covered every live parcel.
    searched_at: Mapped[dt.datetime | None] = mapped_column()

    parcels: Mapped[list[Parcel]] = relationship(
        back_populates="shipment", order_by="Parcel.position"
    )


class Parcel(Base):
    """One physical package and its label; one skybill number each."""

    __tablename__ = "parcel"
    __table_args__ = (UniqueConstraint("shipment_id", "position", "generation"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=1)
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumps when a label is re-made
    skybill_number: Mapped[str] = mapped_column(String(20), unique=True)
    weight_kg: Mapped[float] = mapped_column(Numeric(8, 3))
    label_format: Mapped[str] = mapped_column(String(10), default="PDF")
    label_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
    label_path: Mapped[str | None] = mapped_column(String(500))
    live: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    # Issue 21 (delta tracking): the last significant event a trackSearch answer showed.
    significant_code: Mapped[str] = mapped_column(String(10), default="", server_default="")
    significant_at: Mapped[dt.datetime | None] = mapped_column()

    shipment: Mapped[Shipment] = relationship(back_populates="parcels")


class Event(Base):
    """One carrier tracking event; the unique key makes ingestion idempotent."""

    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("skybill_number", "code", "event_time", name="uq_event_key"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    skybill_number: Mapped[str] = mapped_column(String(20), index=True)
    code: Mapped[str] = mapped_column(String(10))
    event_time: Mapped[dt.datetime] = mapped_column()
    label: Mapped[str] = mapped_column(String(255), default="")
    place: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    source: Mapped[str] = mapped_column(String(10), default="poll")
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ExceptionRow(Base):
    """A failure kept for review and retry (ARCHITECTURE.md, "Errors")."""

    __tablename__ = "exception"
    __table_args__ = (Index("ix_exception_state_next_retry", "state", "next_retry_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # sf_id:operation:code
    shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipment.id", ondelete="SET NULL"), index=True
    )
    sf_object: Mapped[str] = mapped_column(String(40), default="")
    sf_id: Mapped[str] = mapped_column(String(18), default="", index=True)
    operation: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(30))  # address, carrier, salesforce, timeout, …
    code: Mapped[str] = mapped_column(String(80))
    field: Mapped[str] = mapped_column(String(80), default="")
    message: Mapped[str] = mapped_column(Text)
    request_payload: Mapped[str] = mapped_column(Text, default="")
    response_payload: Mapped[str] = mapped_column(Text, default="")
    transient: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(12), default="open")  # open, retrying, resolved
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column()
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class Outbox(Base):
    """A Salesforce write waiting to be flushed; `dedup_key` keeps it from being queued twice."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_object", "state", "sf_object", "operation"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipment.id", ondelete="SET NULL"), index=True
    )
    sf_object: Mapped[str] = mapped_column(String(60))
    sf_id: Mapped[str] = mapped_column(String(18), default="")  # empty for creates
    operation: Mapped[str] = mapped_column(String(12))  # update, upsert, create, file
    external_id_field: Mapped[str] = mapped_column(String(60), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    # Issue 21: a tracking write waits until then unless a full collection of its object is
    # pending (pipeline/writeback.py due_objects); None = sent at the next flush.
    hold_until: Mapped[dt.datetime | None] = mapped_column()


class Watermark(Base):
    """Where the delta read of one source stopped; saved with the work it covers."""

    __tablename__ = "watermark"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class WebhookInbox(Base):
    """A pushed tracking event accepted by the webhook: stored before the 202, processed later.

    `event_id` is the sender's id: unique, so a replayed event is refused rather than re-applied.
    """

    __tablename__ = "webhook_inbox"
    __table_args__ = (Index("ix_webhook_inbox_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    skybill_number: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending, done
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    processed_at: Mapped[dt.datetime | None] = mapped_column()


class TrackingCase(Base):
    """The support Case tracking opened for one order; its Salesforce id once the create is sent.

    `pending` holds comments and status changes decided before the Case id was known.
    """

    __tablename__ = "tracking_case"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_key: Mapped[str] = mapped_column(String(80), unique=True)  # sf_object:sf_id
    shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipment.id", ondelete="SET NULL"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer, default=1)  # bumps when a closed Case is replaced
    case_id: Mapped[str] = mapped_column(String(18), default="")
    create_key: Mapped[str] = mapped_column(String(200), default="")  # outbox dedup_key
    state: Mapped[str] = mapped_column(String(10), default="open")  # open, closed
    status: Mapped[str] = mapped_column(String(30), default="")  # last normalized status told
    pending: Mapped[list[Any]] = mapped_column(JSON, default=list)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class RateWindow(Base):
    """Calls granted in one window of one shared limit (per account, per second or per hour)."""

    __tablename__ = "rate_window"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ClusterState(Base):
    """State every worker of a cluster shares: periodic-task leases, the carrier's circuit
    breaker, the Salesforce write pause, the last API usage seen (one row per name)."""

    __tablename__ = "cluster_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="", server_default="")
    owner: Mapped[str | None] = mapped_column(String(80))
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class ApiToken(Base):
    """An access token chronoforce issued to an API client; only its SHA-256 digest is kept."""

    __tablename__ = "api_token"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class RateCache(Base):
    """Live Chronopost rates of one (route, weight band, day), shared by every process."""

    __tablename__ = "rate_cache"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class LabelReprint(Base):
    """One label re-print (issue 21 item 5): the stored label Chronopost gave back again, same
    skybill numbers, no new parcel. `request_key` makes one request one file."""

    __tablename__ = "label_reprint"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    request_key: Mapped[str] = mapped_column(String(200), unique=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipment.id", ondelete="CASCADE"), index=True
    )
    generation: Mapped[int] = mapped_column(Integer)  # the label generation re-printed
    number: Mapped[str] = mapped_column(String(50))  # reservation (or parcel) number asked for
    skybill_numbers: Mapped[list[Any]] = mapped_column(JSON)
    label_format: Mapped[str] = mapped_column(String(10))
    label_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    requested_by: Mapped[str] = mapped_column(String(80))  # cli, api:<client>, console:<user>


class Manifest(Base):
    """One end-of-day slip (issue 21): the parcels of one account, sub-account, shipper location
    and pickup day, as the PDF the driver signs. A changed parcel list makes a new version."""

    __tablename__ = "manifest"
    __table_args__ = (
        UniqueConstraint(
            "account_number",
            "sub_account",
            "location",
            "day",
            "version",
            name="uq_manifest_group_version",
        ),
        Index("ix_manifest_day", "day"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_number: Mapped[str] = mapped_column(String(8))
    sub_account: Mapped[str] = mapped_column(String(3), default="")
    location: Mapped[str] = mapped_column(String(40), default="default")
    day: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    parcel_count: Mapped[int] = mapped_column(Integer)
    total_weight_kg: Mapped[float] = mapped_column(Numeric(10, 3))
    parcels_digest: Mapped[str] = mapped_column(String(64))  # the parcel list it was made from
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sf_id: Mapped[str] = mapped_column(String(18), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class DeliverySlot(Base):
    """Issue 23 (Chrono Precise): one slot search of a shipment, and the slot confirmed from it.

    `offered` keeps the search's slots (code, date, times, level, rank) so a choice can be
    confirmed with the search's meshCode and transactionID ([D] §3.5). `state`: offered,
    confirmed, replaced (a later confirm, e.g. a rebooking, took over). `reason`: checkout or
    rebook. Times are Paris wall-clock HH:MM.
    """

    __tablename__ = "delivery_slot"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipment.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(12), default="offered")
    reason: Mapped[str] = mapped_column(String(12), default="checkout")
    product_type: Mapped[str] = mapped_column(String(10), default="RDV")
    mesh_code: Mapped[str] = mapped_column(String(20), default="")
    transaction_id: Mapped[str] = mapped_column(String(80), default="")
    offered: Mapped[list[Any]] = mapped_column(JSON, default=list)
    slot_code: Mapped[str] = mapped_column(String(40), default="")
    slot_date: Mapped[dt.date | None] = mapped_column(Date)
    start_time: Mapped[str] = mapped_column(String(5), default="")
    end_time: Mapped[str] = mapped_column(String(5), default="")
    tariff_level: Mapped[str] = mapped_column(String(4), default="")
    rank: Mapped[int | None] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(String(4), default="")
    service_code: Mapped[str] = mapped_column(String(4), default="")
    as_code: Mapped[str] = mapped_column(String(4), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    confirmed_at: Mapped[dt.datetime | None] = mapped_column()
