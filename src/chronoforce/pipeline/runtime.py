"""Everything one chronoforce process needs, built once from the settings.

Wires the adapters (Chronopost, Salesforce, store) into the use cases: detection turns changed
Salesforce records into shipment intents; preparation turns a shipment row into a carrier request
— from the record read again from Salesforce when a retry asked for it (`reread_at`), so a fix
made in Salesforce is what the retried label uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import or_, select, update

from chronoforce.config import Settings
from chronoforce.domain.address import require_sendable
from chronoforce.domain.errors import MappingError, TransientError
from chronoforce.domain.models import (
    Address,
    Civility,
    Contact,
    LabelFormat,
    Party,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.domain.products import family_of
from chronoforce.domain.routing import RoutingFacts, RoutingRules, route
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions
from chronoforce.pipeline.cadence import Backoff
from chronoforce.pipeline.cluster import LocalSlots
from chronoforce.pipeline.facts import order_facts
from chronoforce.pipeline.gates import Gates
from chronoforce.pipeline.labels import Intent, LabelPipeline, Prepared, record_intents
from chronoforce.pipeline.returns import returns_preparation
from chronoforce.pipeline.tracking import (
    Poller,
    PollReport,
    Tracking,
    link_cases,
    process_inbox,
    tracking_config,
)
from chronoforce.pipeline.tracking import flush as flush_tracking
from chronoforce.pipeline.writeback import Flusher, FlushReport
from chronoforce.salesforce.changes import DeltaReader
from chronoforce.salesforce.fields import REQUEST_RECORD, SHIPMENT_ORDER
from chronoforce.salesforce.mapping import (
    MappedOrder,
    MappingConfig,
    fetch_items,
    items_for,
    linked_shipments_soql,
    map_record,
    soql_for_trigger,
    value_at,
)
from chronoforce.salesforce.org_shape import OrgShape, prepare_org
from chronoforce.salesforce.soql import is_record_id
from chronoforce.store.db import Store
from chronoforce.store.models import Outbox, Shipment, Watermark

log = get_logger(component="runtime")

OnIds = Callable[[list[int]], None]  # handed each page's new shipment ids as it is recorded
PUBSUB_IDLE_DELTA_S = 3600.0  # with a live subscription and nothing changing: one delta an hour


def shipper_party(settings: Settings) -> Party:
    s = settings.chronopost.shipper
    party = Party(
        Address(s.name, s.name2, s.line1, s.line2, s.postal_code, s.city, s.country),
        Contact(s.contact_name, Civility(s.civility), s.phone, "", s.email),
    )
    # The warehouse is where pickups come: the same checks as any recipient (issue 20).
    return require_sendable(party, "shipper")


@dataclass
class Preparation:
    """Shipment row → ShipmentRequest: map the stored record, check the address, route."""

    mapping: MappingConfig
    rules: RoutingRules
    shipper: Party
    label_format: LabelFormat
    now: Callable[[], dt.datetime]
    # Reads the record again and stores it (Runtime.refresh_source); None: the stored copy only.
    reread: Callable[[Shipment], dict[str, Any]] | None = None

    def __call__(self, shipment: Shipment) -> Prepared:
        if shipment.reread_at is not None and self.reread is not None:
            shipment.source = self.reread(shipment)
        source = shipment.source or {}
        order = map_record(source.get("record", {}), source.get("items", []), self.mapping)
        recipient = require_sendable(order.recipient, "recipient")
        decision = route(self._facts(order, recipient), self.now(), self.rules)
        request = ShipmentRequest(
            shipper=self.shipper,
            recipient=recipient,
            parcels=order.parcels,
            product_code=decision.product_code,
            ship_date=decision.ship_date,
            references=order.references,
            options=ShipmentOptions(
                saturday_delivery=decision.options.saturday_delivery,
                relay_point_id=decision.options.relay_point_id,
                label_format=self.label_format,
                insured_value=order.insured_value,
                declared_value=order.declared_value,
                contents=order.contents_or_default(self.mapping, family_of(decision.product_code)),
            ),
        )
        return Prepared(request=request, reason=decision.reason)

    def _facts(self, order: MappedOrder, recipient: Party) -> RoutingFacts:
        return order_facts(order, recipient)  # the one builder, shared with rates and returns


@dataclass
class Runtime:
    settings: Settings
    store: Store
    carrier: Any
    salesforce: Any
    labels: LabelPipeline
    mapping: MappingConfig
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    shape: OrgShape | None = None  # what the org has (describe at start-up); None = not read
    _reader: DeltaReader | None = None
    _pubsub: Any = None
    _delta: Backoff | None = None  # with Pub/Sub: when the safety-net SOQL delta runs next
    events_alive: bool = False  # the last Pub/Sub poll worked (the runner's cadence)
    events_idle_s: float = 0.3  # how long one detection waits on the subscription for events
    _events: Any = None  # EventFeed: the long-lived Pub/Sub subscription
    _tracking: Any = None  # Tracking, built on first use (pipeline/tracking)
    _poller: Any = None

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
            mark = session.get(Watermark, f"pubsub:{self.settings.salesforce.pubsub_topic}")
            return bytes.fromhex(mark.value) if mark and mark.value else None

    def _drop_replay(self) -> None:
        with self.store.session() as session:
            mark = session.get(Watermark, f"pubsub:{self.settings.salesforce.pubsub_topic}")
            if mark is not None:
                session.delete(mark)

    def _set_replay(self, replay: bytes | None) -> None:
        if replay is None:
            return
        source = f"pubsub:{self.settings.salesforce.pubsub_topic}"
        with self.store.session() as session:
            mark = session.get(Watermark, source)
            if mark is None:
                session.add(Watermark(source=source, value=replay.hex()))
            else:
                mark.value = replay.hex()

    def detect_delta(self, on_ids: OnIds | None = None) -> list[int]:
        """Read changed trigger records since the watermark and record their intents."""
        if self._reader is None:
            self._reader = DeltaReader(self.salesforce, self.mapping)
        with self.store.session() as session:
            mark = session.get(Watermark, self.watermark_source)
            watermark = mark.value if mark else None
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
            "record": _plain(record),
            "items": [_plain(i) for i in items_for(record, self.mapping, by_order)],
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

    def flush(self) -> FlushReport:
        flusher = Flusher(
            self.store,
            self.salesforce,
            on_failure=exceptions.on_writeback_failure,
            now=self.now,
            claim_seconds=self.settings.pipeline.lease_seconds,
        )
        return flusher.flush()

    # --- tracking (issue 7) ------------------------------------------------------------------

    @property
    def tracking(self) -> Tracking:
        """The tracking use case (one ingestion path for polled and pushed events)."""
        if self._tracking is None:
            config = tracking_config(self.settings.tracking)
            self._tracking = Tracking(self.store, config, now=self.now)
        return self._tracking  # type: ignore[no-any-return]

    def cancel_due(self) -> int:
        """Send the cancels queued until Chronopost's cancel window opened (pipeline/cancel.py)."""
        from chronoforce.pipeline.cancel import Cancels  # cancel.py imports labels, as we do

        return Cancels(self.store, self.carrier, self.labels.gates, self.now).run_due()

    def poll_once(self) -> PollReport:
        """One tracking round: link Cases created by the last flush, ingest pushed events,
        poll the due parcels within the rate limit and budget. Salesforce writes land in the
        outbox; `flush()` (or `flush_tracking()`) sends them."""
        if self._poller is None:
            account = self.settings.chronopost.account_number
            self._poller = Poller(self.tracking, self.carrier, account=account)
        link_cases(self.store)
        inbox = self.process_inbox()
        report: PollReport = self._poller.poll_once()
        report.webhook_events = inbox
        return report

    def process_inbox(self) -> int:
        """Ingest accepted webhook events until the inbox is empty; returns how many."""
        total = 0
        while done := process_inbox(self.tracking):
            total += done
        return total

    def flush_tracking(self) -> FlushReport:
        """Flush the outbox, then the Case updates that waited for a new Case's id."""
        return flush_tracking(self.store, self.salesforce, now=self.now)

    def shipments(self, sf_ids: Iterable[str]) -> list[Shipment]:
        with self.store.session() as session:
            rows = session.scalars(select(Shipment).where(Shipment.sf_id.in_(list(sf_ids))))
            return list(rows)

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()
        if self._events is not None:
            self._events.close()
        for client in (self.carrier, self.salesforce, self._pubsub, self.labels.gates):
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self.store.dispose()


def content_key(record: dict[str, Any], items: list[Any], mapping: MappingConfig) -> str:
    """What a label depends on (mapped content, not timestamps); "" when the record won't map.

    The console computes it too when it corrects a stored record, so the fix is no "change"."""
    try:
        order = map_record(record, items, mapping)
    except MappingError:
        return ""
    return hashlib.sha256(repr(replace(order, modstamp="")).encode()).hexdigest()[:32]


def _plain(record: Any) -> Any:
    """A Salesforce record as plain JSON data (no OrderedDicts, no `attributes` noise)."""
    if isinstance(record, dict):
        return {k: _plain(v) for k, v in record.items() if k != "attributes"}
    if isinstance(record, list):
        return [_plain(v) for v in record]
    return record


def build_runtime(settings: Settings, *, carrier: Any = None, salesforce: Any = None) -> Runtime:
    from chronoforce.chronopost import ChronopostClient
    from chronoforce.salesforce.client import SalesforceClient

    store = Store(settings.database_url)
    carrier = carrier or ChronopostClient.from_settings(settings)
    salesforce = salesforce or SalesforceClient.from_settings(settings)
    # The org's shape, read once: Order-only mode, mapping paths that exist, field lengths.
    shape, mapping = prepare_org(salesforce, MappingConfig.from_settings(settings.mapping))
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
    preparation = Preparation(
        mapping=mapping,
        rules=RoutingRules.from_mapping(settings.routing),
        shipper=shipper_party(settings),
        label_format=LabelFormat(settings.chronopost.label_format),
        now=now,
    )
    labels = LabelPipeline(
        store=store,
        carrier=carrier,
        prepare=preparation,
        now=now,
        lease=dt.timedelta(seconds=settings.pipeline.lease_seconds),
        # Carrier calls in flight, whatever the thread count; worker.harden shares it cluster-wide.
        # Every carrier use case (returns, cancels, pickups, rates) passes these same gates.
        gates=Gates(
            slots=LocalSlots(settings.chronopost.concurrency),
            wait_s=settings.pipeline.lease_seconds / 4,
        ),
        preparers={"return": returns_preparation(settings, mapping, now)},
    )
    runtime = Runtime(settings, store, carrier, salesforce, labels, mapping, now, shape)
    preparation.reread = runtime.refresh_source
    return runtime
