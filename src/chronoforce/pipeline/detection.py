"""Detection: changed Salesforce records become shipment intents, recorded with the watermark.

Two sources: the SOQL delta on the trigger's modstamp since the stored watermark
(`salesforce/changes.py` `DeltaReader`), and, when `salesforce.pubsub_endpoint` is set, Pub/Sub
events (`salesforce/pubsub.py` `EventFeed`) with the delta as a safety net that slows down while
nothing changes (PUBSUB_IDLE_DELTA_S). Every page of records becomes `pending` shipment rows in
one transaction with its watermark (`record_intents`); a record read again for a retry
(`refresh_source`) is stored the same way. It must never move a watermark past records whose
intents are not committed, nor put a value that is no record id into a query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import or_, select, update

from chronoforce.config import Settings
from chronoforce.domain.errors import CarrierValidationError, MappingError, TransientError
from chronoforce.domain.models import ShipmentStatus
from chronoforce.domain.shipment_state import DUE, check_transition
from chronoforce.domain.shipment_state import ShipmentState as S
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.cadence import Backoff
from chronoforce.pipeline.labels import BEFORE_PICKUP, shipper_ref
from chronoforce.salesforce.changes import DeltaReader
from chronoforce.salesforce.fields import REQUEST_RECORD, SHIPMENT_ORDER
from chronoforce.salesforce.mapping import (
    MappingConfig,
    fetch_items,
    items_for,
    linked_shipments_soql,
    map_record,
    soql_for_trigger,
    value_at,
)
from chronoforce.salesforce.org_shape import OrgShape
from chronoforce.salesforce.soql import is_record_id
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Shipment
from chronoforce.store.ops import (
    advance_watermark,
    drop_watermark,
    insert_ignore,
    read_watermark,
    set_watermark,
)

log = get_logger(component="runtime")

OnIds = Callable[[list[int]], None]  # handed each page's new shipment ids as it is recorded
PUBSUB_IDLE_DELTA_S = 3600.0  # with a live subscription and nothing changing: one delta an hour


@dataclass(frozen=True)
class Intent:
    """A detected order to ship: its Salesforce identity and the raw record it was read from."""

    sf_object: str
    sf_id: str
    order_number: str
    source: dict[str, Any]
    modstamp: str = ""
    intent: str = "outbound"


def record_intents(
    store: Store, intents: Iterable[Intent], watermark: tuple[str, str] | None = None
) -> list[int]:
    """Write `pending` shipment rows (once per record + intent) with the watermark, atomically."""
    rows: list[dict[str, Any]] = [
        {
            "sf_object": i.sf_object,
            "sf_id": i.sf_id,
            "intent": i.intent,
            "order_number": i.order_number,
            "source": i.source,
            "sf_modstamp": i.modstamp,
            "shipper_ref": shipper_ref(i.order_number, i.intent, i.sf_id),
            "state": S.PENDING,
            "status": ShipmentStatus.PENDING.value,
        }
        for i in intents
    ]
    with store.session() as session:
        insert_ignore(session, Shipment, rows)
        if watermark is not None:
            advance_watermark(session, *watermark)
        # The rows of the page in one query per chunk, not one per record.
        found: dict[tuple[str, str, str], Shipment] = {}
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            statement = select(Shipment).where(
                Shipment.sf_id.in_({r["sf_id"] for r in chunk}),
                Shipment.sf_object.in_({r["sf_object"] for r in chunk}),
            )
            for loaded in session.scalars(statement):
                found[(loaded.sf_object, loaded.sf_id, loaded.intent)] = loaded
        ids: list[int] = []
        for row_values in rows:
            key = (row_values["sf_object"], row_values["sf_id"], row_values["intent"])
            shipment = found.get(key)
            if shipment is None:
                continue
            if row_values["sf_modstamp"] and shipment.sf_modstamp != row_values["sf_modstamp"]:
                shipment.sf_modstamp = row_values["sf_modstamp"]  # this version is recorded
            _notice_change(session, shipment, row_values["source"])
            if shipment.state in DUE:
                ids.append(shipment.id)
    return ids


def _notice_change(session: Any, shipment: Shipment, source: dict[str, Any]) -> None:
    """A new version of a recorded order: without a live label it is worked from that version
    (`exceptions.rerequested`); labeled and unchanged, its label status is set back to
    `Created`; changed before pickup, it is relabeled; after pickup, an exception says so."""
    new_key, old_key = source.get("key", ""), (shipment.source or {}).get("key", "")
    if shipment.state != S.LABELED:
        exceptions.rerequested(session, shipment, source)
        return
    if new_key and new_key == old_key:
        # Set to `Requested` again without a change: the label stands, and the record says so.
        version = str(shipment.sf_modstamp or (source.get("record") or {}).get("SystemModstamp"))
        row = writeback.label_status_row(
            shipment_id=shipment.id,
            sf_object=shipment.sf_object,
            sf_id=shipment.sf_id,
            status="Created",
            version=version,
        )
        writeback.enqueue_rows(session, [row])
        return
    if not new_key or not old_key:
        return
    shipment.source = source
    if shipment.status in BEFORE_PICKUP:
        # The worker cancels the label and makes a new one.
        shipment.state = check_transition(shipment.state, S.CHANGED, record_id=shipment.sf_id)
        shipment.attempts = 0
        return
    exceptions.record(
        session,
        CarrierValidationError(
            f"the order changed after pickup (status {shipment.status}): the label stands; "
            "ship the difference by hand or as a new order",
            code="ORDER_CHANGED_AFTER_PICKUP",
            record_id=shipment.sf_id,
        ),
        operation="label.change",
        shipment=shipment,
    )


class Detection:
    """Detection's half of `Runtime` (pipeline/runtime.py), which holds the state below: the
    delta reader, the Pub/Sub subscription and the safety net's schedule."""

    settings: Settings
    store: Store
    salesforce: Any
    mapping: MappingConfig
    now: Callable[[], dt.datetime]
    shape: OrgShape | None
    _reader: DeltaReader | None
    _pubsub: Any
    _delta: Backoff | None
    events_alive: bool
    events_idle_s: float
    _events: Any

    @property
    def watermark_source(self) -> str:
        return f"delta:{self.mapping.trigger_object}"

    def detect(self, on_ids: OnIds | None = None) -> list[int]:
        """Events first when the Pub/Sub API is configured; the SOQL delta read as fallback.

        `on_ids` gets each page's workable shipment ids as soon as that page is recorded, so
        labelling starts while later pages are still being read (a burst of thousands)."""
        config = self.settings.salesforce
        ids: list[int] = []
        if not config.pubsub_endpoint:
            return self.detect_delta(on_ids)
        from chronoforce.salesforce.pubsub import ReplayGapError

        delta = self._delta_schedule()
        try:
            ids.extend(self.detect_events(on_ids))
            self.events_alive = True
        except ReplayGapError as gap:
            # Expired or corrupted: dropped, the SOQL delta reads from the stored watermark now
            # and the next subscription starts at LATEST, once (salesforce/pubsub.py EventFeed).
            log.warning("pubsub gap: falling back to the SOQL delta", reason=gap.reason)
            self._set_replay(self._feed().recover(gap))
            delta.wake()
        except TransientError as exc:
            # No live subscription: the SOQL delta is the detection now (the runner's pace).
            log.warning("pubsub unavailable: reading the SOQL delta", code=exc.code)
            self.events_alive = False
            delta.wake()
        if not delta.due():
            if ids:
                delta.hurry()  # orders are coming in: the safety net runs soon, then slows
            return ids
        found = self.detect_delta(on_ids)
        # A live subscription finds every change: the delta only guards against what it may
        # miss, so while nothing happens it runs ever more rarely (up to PUBSUB_IDLE_DELTA_S).
        delta.ran(bool(ids or found))
        return ids + found

    def _seconds(self) -> float:
        return self.now().timestamp()

    def _delta_schedule(self) -> Backoff:
        if self._delta is None:
            every = self.settings.salesforce.delta_every_s
            self._delta = Backoff(every, max(every, PUBSUB_IDLE_DELTA_S), clock=self._seconds)
        return self._delta

    def detect_events(self, on_ids: OnIds | None = None) -> list[int]:
        """The ship-request / change events that came since the last call, on one long-lived
        subscription (opened again only when it ended or fell silent beyond the keepalives)."""
        feed = self._feed()
        events = feed.poll(wait=self.events_idle_s)
        record_ids: list[str] = []
        last: bytes | None = None
        for event in events:
            found = event.record_ids or (str(event.fields.get(REQUEST_RECORD.api) or ""),)
            # Whoever may publish the event picks Record_Id__c: a value that is no id would
            # make Salesforce refuse the whole query, on every try (detection stuck).
            forged = [i for i in found if i and not is_record_id(i)]
            if forged:
                log.warning("event ignored: not a record id", replay=event.replay_id.hex())
            record_ids.extend(i for i in found if i and is_record_id(i))
            last = event.replay_id
        # The stream's position (from the last message, keepalives included) once every event
        # received is handled; stored as opaque bytes after each batch.
        last = feed.position or last
        ids: list[int] = []
        for start in range(0, len(record_ids), 200):
            batch = sorted(set(record_ids[start : start + 200]))
            soql = soql_for_trigger(self.mapping, ids=batch)
            recorded = self.record(list(self.salesforce.query_iter(soql)), None)
            if on_ids is not None and recorded:
                on_ids(recorded)
            ids.extend(recorded)
        self._set_replay(last)  # after the intents are recorded: at least once, never lost
        return ids

    def _feed(self) -> Any:
        """The long-lived Pub/Sub subscription (salesforce/pubsub.py `EventFeed`)."""
        from chronoforce.salesforce.pubsub import EventFeed, PubSubClient, PubSubCredentials

        if self._events is None:
            config = self.settings.salesforce
            connection = self.salesforce.connection

            def credentials() -> PubSubCredentials:
                token = connection.token
                return PubSubCredentials(token.access_token, token.instance_url, token.org_id)

            self._pubsub = PubSubClient(config.pubsub_endpoint, credentials, ca_file=config.ca_file)
            self._events = EventFeed(
                self._pubsub, config.pubsub_topic, self._stored_replay, self._drop_replay
            )
        return self._events

    def _stored_replay(self) -> bytes | None:
        with self.store.session() as session:
            value = read_watermark(session, f"pubsub:{self.settings.salesforce.pubsub_topic}")
            return bytes.fromhex(value) if value else None

    def _drop_replay(self) -> None:
        with self.store.session() as session:
            drop_watermark(session, f"pubsub:{self.settings.salesforce.pubsub_topic}")

    def _set_replay(self, replay: bytes | None) -> None:
        if replay is None:
            return
        source = f"pubsub:{self.settings.salesforce.pubsub_topic}"
        with self.store.session() as session:
            set_watermark(session, source, replay.hex())

    def detect_delta(self, on_ids: OnIds | None = None) -> list[int]:
        """Read changed trigger records since the watermark and record their intents."""
        if self._reader is None:
            self._reader = DeltaReader(self.salesforce, self.mapping)
        with self.store.session() as session:
            watermark = read_watermark(session, self.watermark_source)
        ids: list[int] = []
        for page in self._reader.read(watermark):
            recorded = self.record(page.records, page.watermark)
            if on_ids is not None and recorded:
                on_ids(recorded)
            ids.extend(recorded)
        return ids

    def record(self, records: list[dict[str, Any]], watermark: str | None) -> list[int]:
        """Intents for a page of raw records (items and linked Shipment fetched in batch)."""
        records = self._unrecorded(records)
        if not records:
            if watermark:
                record_intents(self.store, [], (self.watermark_source, watermark))
            return []
        by_order = fetch_items(self.salesforce.query_iter, self.mapping, records)
        linked = self._linked_shipments([str(r["Id"]) for r in records])
        orders = self._linked_orders(records)
        intents = [
            Intent(
                sf_object=self.mapping.trigger_object,
                sf_id=str(r["Id"]),
                order_number=str(r.get("OrderNumber") or r.get("ShipmentNumber") or r["Id"]),
                modstamp=str(r.get("SystemModstamp") or ""),
                source=self._source(r, by_order, linked, orders),
            )
            for r in records
        ]
        mark = (self.watermark_source, watermark) if watermark else None
        return record_intents(self.store, intents, mark)

    def _source(
        self,
        record: dict[str, Any],
        by_order: Any,
        linked: dict[str, str],
        orders: dict[str, str],
    ) -> dict[str, Any]:
        """What a shipment row keeps of its record: the record, its items, its Shipment, and
        the Order it reaches (itself, or through the Shipment / Order Management links)."""
        return {
            "key": self._content_key(record, by_order),
            "record": plain_record(record),
            "items": [plain_record(i) for i in items_for(record, self.mapping, by_order)],
            "shipment_id": linked.get(str(record["Id"]), ""),
            "order_id": orders.get(str(record["Id"]), ""),
        }

    def refresh_source(self, shipment: Shipment) -> dict[str, Any]:
        """Read the shipment's record (items, linked Shipment) from Salesforce again and store
        it as the row's source: what a retry prepares from. Writes of ours still queued for
        the record are laid over what was read (the console's address fix, not sent yet).

        The trigger condition is left out: a failed order no longer says `Requested`."""
        started = self.now()
        soql = soql_for_trigger(self.mapping, ids=[shipment.sf_id], condition=False)
        found = [dict(r) for r in self.salesforce.query_iter(soql)]
        if not found:
            raise MappingError(
                f"{shipment.sf_object} {shipment.sf_id} is no longer in Salesforce (deleted, "
                "or not visible to the integration user)",
                field="Id",
                record_id=shipment.sf_id,
            )
        record = self._with_queued_writes(shipment, found[0], started)
        by_order = fetch_items(self.salesforce.query_iter, self.mapping, [record])
        source = self._source(
            record,
            by_order,
            self._linked_shipments([shipment.sf_id]),
            self._linked_orders([record]),
        )
        modstamp = str(record.get("SystemModstamp") or "")
        with self.store.session() as session:
            session.execute(
                update(Shipment)
                .where(Shipment.id == shipment.id, Shipment.reread_at == shipment.reread_at)
                .values(source=source, reread_at=None, sf_modstamp=modstamp)
                .execution_options(synchronize_session=False)
            )
        shipment.reread_at = None
        log.info("record read again for a retry", shipment_id=shipment.id, sf_id=shipment.sf_id)
        return source

    def _with_queued_writes(
        self, shipment: Shipment, record: dict[str, Any], started: dt.datetime
    ) -> dict[str, Any]:
        """Our updates of the record not yet sent (or sent while it was read) win."""
        with self.store.session() as session:
            rows = session.scalars(
                select(Outbox)
                .where(
                    Outbox.sf_object == shipment.sf_object,
                    Outbox.sf_id == shipment.sf_id,
                    Outbox.operation == "update",
                    or_(Outbox.state == "pending", Outbox.sent_at >= started),
                )
                .order_by(Outbox.id)
            ).all()
            for row in rows:
                record.update({k: v for k, v in row.payload.items() if k in record})
        return record

    def _unrecorded(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop the records whose version (SystemModstamp) is recorded already: the overlap
        window reads them again, and so does every other worker whose detection turn follows
        (each one's memory of what it delivered is its own). Their items and linked shipments
        are then never fetched again."""
        stamps = {str(r.get("Id")): str(r.get("SystemModstamp") or "") for r in records}
        if not all(stamps.values()):
            return records
        with self.store.session() as session:
            statement = select(Shipment.sf_id, Shipment.sf_modstamp).where(
                Shipment.sf_object == self.mapping.trigger_object,
                Shipment.sf_id.in_(list(stamps)),
                Shipment.intent == "outbound",
            )
            known = {sf_id: stamp for sf_id, stamp in session.execute(statement)}
        return [r for r in records if known.get(str(r.get("Id"))) != stamps[str(r.get("Id"))]]

    def _content_key(self, record: dict[str, Any], by_order: Any) -> str:
        """What the label depends on (mapped content, not timestamps): a change means re-ship."""
        return content_key(record, items_for(record, self.mapping, by_order), self.mapping)

    def order_of(self, record: dict[str, Any]) -> str:
        """The Order a triggering record's write-backs go on: itself for an Order trigger, the
        Order it reaches for a Shipment ("" when it reaches none)."""
        if self.mapping.trigger_object == "Order":
            return str(record["Id"])
        return self._linked_orders([record]).get(str(record["Id"]), "")

    def _linked_orders(self, records: list[dict[str, Any]]) -> dict[str, str]:
        """A Shipment trigger: the Order each record reaches (`order_id` paths: the package's
        lookup, or Order Management's OrderSummary / FulfillmentOrder), for the write-backs."""
        if self.mapping.trigger_object != "Shipment":
            return {}
        found = {}
        for record in records:
            order_id = next((v for p in self.mapping.order_id if (v := value_at(record, p))), "")
            found[str(record["Id"])] = str(order_id or "")
        return found

    def _linked_shipments(self, order_ids: list[str]) -> dict[str, str]:
        if self.mapping.trigger_object == "Shipment":
            return {i: i for i in order_ids}  # the record is the Shipment itself
        if self.mapping.trigger_object != "Order" or not order_ids:
            return {}
        if self.shape is not None and self.shape.order_only:
            return {}  # Order-only org: Shipment does not exist, never name it in a query
        link = SHIPMENT_ORDER.api
        soql = linked_shipments_soql(order_ids)
        return {r[link]: r["Id"] for r in self.salesforce.query_iter(soql)}


def content_key(record: dict[str, Any], items: list[Any], mapping: MappingConfig) -> str:
    """What a label depends on (mapped content, not timestamps); "" when the record won't map.

    The console computes it too when it corrects a stored record, so the fix is no "change"."""
    try:
        order = map_record(record, items, mapping)
    except MappingError:
        return ""
    content = repr(replace(order, modstamp=""))
    # The location the order names is content too (issue 23); unmapped, the key is as before.
    where = next((str(v) for p in mapping.location if (v := value_at(record, p))), "")
    content += f"|location={where}" if where else ""
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def plain_record(record: Any) -> Any:
    """A Salesforce record as plain JSON data (no OrderedDicts, no `attributes` noise)."""
    if isinstance(record, dict):
        return {k: plain_record(v) for k, v in record.items() if k != "attributes"}
    if isinstance(record, list):
        return [plain_record(v) for v in record]
    return record
