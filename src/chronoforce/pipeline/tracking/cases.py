"""Support Cases: one per order, opened on an exception status, commented later, closed on delivery.

Which events open one, by Chronopost's categories (domain/data/chronopost_events.csv): refused,
address problem, customs hold, damaged, anomaly, failed delivery awaiting instructions
(`exception`), a return (`returning`, `returned`), and a parcel delivered damaged (reason
`delivered_damaged`, in `tracking.case.reasons`). Not an absent recipient (a notice is left and
the round is tried again) nor a parcel waiting at a relay point: that is the journey going on.
It only enqueues; it must never open a second Case for an order whose Case is still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import map_event
from chronoforce.logs import get_logger
from chronoforce.pipeline import writeback
from chronoforce.pipeline.tracking.config import CaseConfig
from chronoforce.pipeline.tracking.events import chunks, iso
from chronoforce.salesforce.fields import (
    CASE_ACCOUNT,
    CASE_DESCRIPTION,
    CASE_ORDER,
    CASE_ORIGIN,
    CASE_OWNER,
    CASE_PRIORITY,
    CASE_RECORD_TYPE,
    CASE_SHIPMENT,
    CASE_SUBJECT,
    COMMENT_BODY,
    COMMENT_PARENT,
    RECORD_STATUS,
    STATUS,
    TRACKING_NUMBER,
)
from chronoforce.salesforce.fit import shorten
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Shipment, TrackingCase

log = get_logger(component="tracking")


@dataclass
class Cases:
    """One Case per order: opened on an exception status, commented on later, closed on delivery.

    A Case's id is known only once its create is flushed; until then, updates wait in
    `TrackingCase.pending` and `link_cases` sends them.
    """

    session: Session
    shipment: Shipment
    config: CaseConfig
    order_id: str
    extra_codes: dict[str, str] | None = None  # tracking.extra_codes: the reason of a code

    @property
    def order_key(self) -> str:
        return f"{self.shipment.sf_object}:{self.shipment.sf_id}"

    def on_status(self, status: ShipmentStatus, last: TrackingEvent, shipment_record: str) -> None:
        row = self.session.scalar(
            select(TrackingCase).where(TrackingCase.order_key == self.order_key).with_for_update()
        )
        is_open = row is not None and row.state == "open"
        meaning = map_event(last.code, self.extra_codes)
        reason = meaning.reason if meaning.status is status else ""
        comment = (
            f"Chronopost {last.code} {last.label} — {last.place} "
            f"({iso(last.time)}, parcel {last.skybill_number}): status {status.value}"
            + (f" ({reason})" if reason and reason != status.value else "")
        ).replace("  ", " ")
        opens = status.value in self.config.statuses or reason in self.config.reasons
        if opens and not is_open:
            self._open(row, status, last, shipment_record, comment, reason)
            return
        if not is_open or row is None:
            return
        fields: dict[str, Any] = {STATUS.api: status.value}
        closes = reason not in self.config.reasons  # delivered damaged is no happy end
        if status is ShipmentStatus.DELIVERED and self.config.close_on_delivery and closes:
            fields[RECORD_STATUS.api] = self.config.closed_status
            row.state = "closed"
        elif self.config.update_status and opens:
            fields[RECORD_STATUS.api] = self.config.update_status
        row.status = status.value
        tell(self.session, row, fields, comment)

    def _open(
        self,
        row: TrackingCase | None,
        status: ShipmentStatus,
        last: TrackingEvent,
        shipment_record: str,
        comment: str,
        reason: str = "",
    ) -> None:
        if row is None:
            row = TrackingCase(order_key=self.order_key, seq=0)
            self.session.add(row)
        row.seq += 1
        row.shipment_id = self.shipment.id
        row.case_id, row.state, row.status, row.pending = "", "open", status.value, []
        row.create_key = f"case:{self.order_key}:{row.seq}"
        reference = self.shipment.order_number or self.shipment.sf_id
        why = f" ({reason.replace('_', ' ')})" if reason and reason != status.value else ""
        subject = f"Chronopost {status.value.replace('_', ' ')}{why}: order {reference}"
        payload: dict[str, Any] = {
            CASE_SUBJECT.api: subject[:255],
            CASE_DESCRIPTION.api: comment,
            RECORD_STATUS.api: self.config.new_status,
            CASE_ORIGIN.api: self.config.origin,
            CASE_PRIORITY.api: self.config.priority,
            TRACKING_NUMBER.api: last.skybill_number,
            STATUS.api: status.value,
        }
        optional = {
            CASE_RECORD_TYPE.api: self.config.record_type_id,
            CASE_OWNER.api: self.config.owner_id,
            CASE_ACCOUNT.api: str((self.shipment.source or {}).get("account_id") or ""),
            CASE_ORDER.api: self.order_id,
            CASE_SHIPMENT.api: shipment_record,
        }
        payload.update({k: v for k, v in optional.items() if v})
        writeback.enqueue(
            self.session,
            sf_object="Case",
            operation="create",
            payload=payload,
            shipment_id=self.shipment.id,
            dedup_key=row.create_key,
        )
        log.info("support case opened", shipment_id=self.shipment.id, status=status.value)


def tell(session: Session, row: TrackingCase, fields: dict[str, Any], comment: str) -> None:
    """Update the Case and add a comment, or keep both until the Case's id is known."""
    if not row.case_id:
        row.pending = [*row.pending, {"fields": fields, "comment": comment}]
        return
    writeback.enqueue(
        session,
        sf_object="Case",
        operation="update",
        sf_id=row.case_id,
        payload=fields,
        shipment_id=row.shipment_id,
    )
    writeback.enqueue(
        session,
        sf_object="CaseComment",
        operation="create",
        # 4,000 bytes of UTF-8, not characters (HELP:000382141): accents count double.
        payload={
            COMMENT_PARENT.api: row.case_id,
            COMMENT_BODY.api: shorten(comment, 4000, in_bytes=True),
        },
        shipment_id=row.shipment_id,
    )


def link_cases(store: Store) -> int:
    """After a flush: note the ids of created Cases and queue what waited for them."""
    linked = 0
    with store.session() as session:
        waiting = list(
            session.scalars(
                select(TrackingCase).where(
                    TrackingCase.case_id == "", TrackingCase.create_key != ""
                )
            )
        )
        keys = [row.create_key for row in waiting]
        sent: dict[str, str] = {}
        for part in chunks(keys):
            for key, result in session.execute(
                select(Outbox.dedup_key, Outbox.result).where(
                    Outbox.dedup_key.in_(part), Outbox.state == "sent"
                )
            ):
                if isinstance(result, dict) and result.get("id"):
                    sent[key] = str(result["id"])
        for row in waiting:
            if row.create_key not in sent:
                continue
            row.case_id = sent[row.create_key]
            pending, row.pending = list(row.pending), []
            for item in pending:
                tell(session, row, dict(item["fields"]), str(item["comment"]))
            linked += 1
    return linked
