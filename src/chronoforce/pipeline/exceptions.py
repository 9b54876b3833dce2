"""Exceptions: failures kept for review and retry, mirrored as integration errors in Salesforce.

One row per (record, operation, code): a repeated failure bumps `attempts` and `last_seen` rather
than piling up rows; a retried one that fails otherwise is superseded (resolved, naming the new
row). A retry reads the record from Salesforce again before preparing (`Shipment.reread_at`), so
"fix it in Salesforce, then retry" works; so does setting the order back to `Requested`
(`rerequested`). Payloads are stored redacted and bounded; nothing here ever raises on a bad
payload, because losing the error would lose the order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import (
    AddressError,
    CarrierAccountError,
    CarrierTimeoutError,
    CarrierUnavailableError,
    CarrierValidationError,
    ChronoforceError,
    MappingError,
    RoutingError,
)
from chronoforce.domain.shipment_state import ShipmentState as S
from chronoforce.domain.shipment_state import check_transition
from chronoforce.pipeline import writeback
from chronoforce.pipeline.cluster import utc
from chronoforce.redaction import redact_text
from chronoforce.salesforce.fields import (
    ERROR_ATTEMPTS,
    ERROR_CODE,
    ERROR_FIELD,
    ERROR_FIRST_SEEN,
    ERROR_KEY,
    ERROR_LAST_SEEN,
    ERROR_MESSAGE,
    ERROR_OPERATION,
    ERROR_ORDER,
    ERROR_RECORD,
    ERROR_REQUEST,
    ERROR_RESPONSE,
    ERROR_SHIPMENT,
    ERROR_STATE,
    INTEGRATION_ERROR,
    LABEL_STATUS,
    LAST_ERROR,
)
from chronoforce.store.models import ExceptionRow, Outbox, Shipment

PAYLOAD_LIMIT = 120_000  # below Salesforce's 131,072-character long text area
ERROR_OBJECT = INTEGRATION_ERROR


_KINDS: Sequence[tuple[type[ChronoforceError], str]] = (
    (AddressError, "address"),
    (MappingError, "mapping"),
    (RoutingError, "routing"),
    (CarrierTimeoutError, "timeout"),
    (CarrierUnavailableError, "carrier_unavailable"),
    (CarrierValidationError, "carrier_validation"),
    (CarrierAccountError, "carrier_account"),
)
KINDS: tuple[str, ...] = (*(name for _, name in _KINDS), "salesforce", "other")


def kind_of(error: ChronoforceError) -> str:
    """The review queue's filter: address, mapping, routing, carrier, timeout, salesforce."""
    for cls, name in _KINDS:
        if isinstance(error, cls):
            return name
    return "salesforce" if "alesforce" in type(error).__name__ else "other"


def _bounded(text: str) -> str:
    text = redact_text(text or "")
    return text if len(text) <= PAYLOAD_LIMIT else text[:PAYLOAD_LIMIT] + "\n…[truncated]"


def record(
    session: Session,
    error: ChronoforceError,
    *,
    operation: str,
    shipment: Shipment | None = None,
    sf_object: str = "",
    sf_id: str = "",
    now: dt.datetime | None = None,
    write_to_salesforce: bool = True,
) -> ExceptionRow:
    """Store (or bump) the exception row and queue its mirror in Salesforce."""
    now = now or SYSTEM_CLOCK.now()
    sf_object = sf_object or (shipment.sf_object if shipment else "")
    sf_id = sf_id or error.record_id or (shipment.sf_id if shipment else "")
    key = f"{sf_id}:{operation}:{error.code}"[:200]
    row = session.scalar(select(ExceptionRow).where(ExceptionRow.key == key))
    if row is None:
        row = ExceptionRow(key=key, attempts=0, first_seen=now)
        session.add(row)
    row.shipment_id = shipment.id if shipment else row.shipment_id
    row.sf_object, row.sf_id, row.operation = sf_object, sf_id, operation
    row.kind, row.code, row.field = kind_of(error), error.code[:80], error.field[:80]
    row.message = redact_text(error.message)
    row.request_payload = _bounded(error.request_payload)
    row.response_payload = _bounded(error.response_payload)
    row.transient = error.transient
    row.state = "open"
    row.attempts += 1
    row.last_seen = now
    row.next_retry_at = None
    session.flush()
    if write_to_salesforce and sf_id:
        _mirror(session, row, shipment)
    if shipment is not None:
        _supersede(session, row, shipment.id, mirror=write_to_salesforce)
    return row


def _supersede(session: Session, row: ExceptionRow, shipment_id: int, *, mirror: bool) -> None:
    """The retry of an older exception of this shipment failed otherwise: that one is over.

    Only one of the same kind of work (a label's, or a write's): a refused write says nothing
    about a label still being retried."""
    family = re.split(r"[.:]", row.operation, maxsplit=1)[0]
    older = session.scalars(
        select(ExceptionRow).where(
            ExceptionRow.shipment_id == shipment_id,
            ExceptionRow.state == "retrying",
            ExceptionRow.id != row.id,
            ExceptionRow.operation.startswith(family),
        )
    ).all()
    for stale in older:
        stale.state = "resolved"
        stale.resolution_note = f"superseded by exception {row.id} ({row.code})"
        if mirror and stale.sf_id:
            writeback.enqueue(
                session,
                sf_object=ERROR_OBJECT,
                operation="upsert",
                external_id_field=ERROR_KEY.api,
                payload={ERROR_KEY.api: f"cf-{stale.id}", ERROR_STATE.api: "Resolved"},
                shipment_id=shipment_id,
            )


def _mirror(session: Session, row: ExceptionRow, shipment: Shipment | None) -> None:
    order_id = shipment.sf_id if shipment and shipment.sf_object == "Order" else ""
    source = shipment.source if shipment else {}
    shipment_record = str(source.get("shipment_id") or "") if isinstance(source, dict) else ""
    payload: dict[str, Any] = {
        ERROR_KEY.api: f"cf-{row.id}",
        ERROR_RECORD.api: row.sf_id,
        ERROR_OPERATION.api: row.operation[:40],
        ERROR_CODE.api: row.code,
        ERROR_FIELD.api: row.field,
        ERROR_MESSAGE.api: row.message[:32000],
        ERROR_REQUEST.api: row.request_payload,
        ERROR_RESPONSE.api: row.response_payload,
        ERROR_ATTEMPTS.api: row.attempts,
        ERROR_STATE.api: "Open",
        ERROR_FIRST_SEEN.api: _iso(row.first_seen),
        ERROR_LAST_SEEN.api: _iso(row.last_seen),
    }
    if order_id:
        payload[ERROR_ORDER.api] = order_id
    if shipment_record:
        payload[ERROR_SHIPMENT.api] = shipment_record
    writeback.enqueue(
        session,
        sf_object=ERROR_OBJECT,
        operation="upsert",
        external_id_field=ERROR_KEY.api,
        payload=payload,
        shipment_id=shipment.id if shipment else None,
    )
    if order_id and row.operation.startswith("label"):
        writeback.enqueue(
            session,
            sf_object="Order",
            operation="update",
            sf_id=order_id,
            payload={
                LABEL_STATUS.api: "Error",
                LAST_ERROR.api: f"{row.code}: {row.message}"[:255],
            },
            shipment_id=shipment.id if shipment else None,
        )


def on_writeback_failure(session: Session, row: Outbox, error: ChronoforceError) -> None:
    """A Salesforce write was refused: an exception row, not mirrored (the org said no)."""
    shipment = session.get(Shipment, row.shipment_id) if row.shipment_id else None
    record(
        session,
        error,
        operation=f"writeback:{row.sf_object}",
        shipment=shipment,
        sf_object=row.sf_object,
        sf_id=row.sf_id or (shipment.sf_id if shipment else ""),
        write_to_salesforce=row.sf_object != ERROR_OBJECT and row.sf_object != "Order",
    )


def _iso(value: dt.datetime) -> str:
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def resolve(session: Session, exception_id: int, note: str) -> ExceptionRow:
    row = session.get(ExceptionRow, exception_id)
    if row is None:
        raise LookupError(f"no exception {exception_id}")
    row.state, row.resolution_note = "resolved", note
    return row


def retry(session: Session, exception_id: int, now: dt.datetime | None = None) -> int | None:
    """Put the failed work back in line; returns the shipment id to enqueue, if any.

    A label is prepared from the record as Salesforce has it *then*, not from the copy taken at
    detection: `reread_at` asks the next preparation to read it (and its items) again."""
    row = session.get(ExceptionRow, exception_id)
    if row is None:
        raise LookupError(f"no exception {exception_id}")
    now = now or SYSTEM_CLOCK.now()
    row.state, row.next_retry_at = "retrying", now
    if row.operation.startswith("writeback:"):
        for outbox in session.scalars(
            select(Outbox).where(Outbox.shipment_id == row.shipment_id, Outbox.state == "failed")
        ):
            outbox.state, outbox.next_attempt_at = "pending", None
        return None
    shipment = session.get(Shipment, row.shipment_id) if row.shipment_id else None
    if shipment is None or shipment.state not in (S.EXCEPTION, S.RETRY, S.CALLING):
        return None
    if shipment.state == S.CALLING:
        # Its tries ran out with the last call's outcome unknown: it stays `calling`, so the
        # try asked for here looks its parcels up first. Not while a worker holds it.
        lease = utc(shipment.lease_expires_at)
        if lease is not None and lease > now:
            return None
    else:
        shipment.state = check_transition(shipment.state, S.PENDING, record_id=shipment.sf_id)
    shipment.attempts = 0
    shipment.next_attempt_at = None
    shipment.reread_at = now
    return shipment.id


def rerequested(
    session: Session, shipment: Shipment, source: dict[str, Any], now: dt.datetime | None = None
) -> bool:
    """A new version of an order without a live label was detected (set back to `Requested`,
    or changed before its label was made): work from that version; True if put back in line.

    An order whose label failed is tried again with the new record, its open exceptions then
    `retrying` (resolved by the label, superseded by another failure). A pending or backing-off
    one just takes the new content. `calling` keeps its state: its parcels are looked up first.
    """
    if shipment.state not in (S.EXCEPTION, S.PENDING, S.RETRY, S.CALLING):
        return False
    if source.get("key") and source.get("key") != (shipment.source or {}).get("key"):
        shipment.source = source
    if shipment.state == S.CALLING:
        # Tries ran out with the last call's outcome unknown (one slow try an hour): asked
        # again, it is due now, still looking its parcels up first. Not while a worker holds it.
        lease = utc(shipment.lease_expires_at)
        if shipment.next_attempt_at is None or (
            lease is not None and lease > (now or SYSTEM_CLOCK.now())
        ):
            return False
        shipment.next_attempt_at, shipment.attempts = None, 0
        _retrying(session, shipment.id)
        return False
    if shipment.state != S.EXCEPTION:
        return False
    shipment.source = source
    shipment.state = check_transition(shipment.state, S.PENDING, record_id=shipment.sf_id)
    shipment.attempts = 0
    shipment.next_attempt_at = None
    shipment.reread_at = None  # the copy just read is the current one
    _retrying(session, shipment.id)
    return True


def _retrying(session: Session, shipment_id: int) -> None:
    for row in session.scalars(
        select(ExceptionRow).where(
            ExceptionRow.shipment_id == shipment_id, ExceptionRow.state == "open"
        )
    ):
        row.state = "retrying"


def open_rows(session: Session, kind: str | None = None, state: str = "open") -> list[ExceptionRow]:
    statement = select(ExceptionRow).order_by(ExceptionRow.last_seen.desc())
    if state != "all":
        statement = statement.where(ExceptionRow.state == state)
    if kind:
        statement = statement.where(ExceptionRow.kind == kind)
    return list(session.scalars(statement))
