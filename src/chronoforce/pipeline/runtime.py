"""Everything one chronoforce process needs, built once from the settings.

Wires the adapters (Chronopost, Salesforce, store) into the use cases and offers them through one
facade, `Runtime`: detection (`detection.py`) turns changed Salesforce records into shipment
intents; preparation (`preparation.py`) turns a shipment row into a carrier request; the label
use case, the outbox flush and tracking run from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select

from chronoforce.config import Settings, WorkerConfig, section
from chronoforce.domain.clock import SYSTEM_CLOCK, Clock
from chronoforce.domain.models import (
    LabelFormat,
)
from chronoforce.domain.routing import RoutingRules
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions
from chronoforce.pipeline.cadence import Backoff
from chronoforce.pipeline.detection import (
    PUBSUB_IDLE_DELTA_S,
    Detection,
    Intent,
    OnIds,
    content_key,
    record_intents,
)
from chronoforce.pipeline.gates import cluster_gates, local_gates
from chronoforce.pipeline.labels import LabelPipeline
from chronoforce.pipeline.locations import Locations
from chronoforce.pipeline.precise import slot_product
from chronoforce.pipeline.preparation import Preparation, shipper_party
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
from chronoforce.pipeline.tracking.delta import tracking_round
from chronoforce.pipeline.writeback import Flusher, FlushReport
from chronoforce.salesforce.changes import DeltaReader
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.salesforce.org_shape import OrgShape, prepare_org
from chronoforce.store.db import Store
from chronoforce.store.models import Shipment

log = get_logger(component="runtime")

__all__ = ["PUBSUB_IDLE_DELTA_S", "Intent", "OnIds", "Preparation", "Runtime", "build_runtime"]
__all__ += ["content_key", "record_intents", "shipper_party"]


@dataclass
class Runtime(Detection):
    """The facade one process uses: detection (pipeline/detection.py), labels, the outbox
    flush, tracking; `build_runtime` wires it from the settings."""

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
    def locations(self) -> Locations | None:
        """The shipper locations (issue 23) the label preparation chooses from, built once."""
        return getattr(self.labels.prepare, "locations", None)

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

    @property
    def pods(self) -> Any:
        """The proof-of-delivery use case (pipeline/pod.py, issue 21)."""
        from chronoforce.pipeline.pod import Pods

        hold = tracking_config(self.settings.tracking).salesforce_hold_s
        return Pods(self.store, self.carrier, self.labels.gates, self.now, hold_s=hold)

    def pod_due(self) -> int:
        """Schedule new deliveries' PODs and ask for the due ones (the runner's sweep)."""
        return int(self.pods.run_due())

    def poll_once(self) -> PollReport:
        """One tracking round: link Cases created by the last flush, ingest pushed events,
        poll the due parcels within the rate limit and budget. Salesforce writes land in the
        outbox; `flush()` (or `flush_tracking()`) sends them."""
        if self._poller is None:
            account = self.settings.chronopost.account_number
            # Issue 21: delta tracking (trackSearch first) unless `tracking.mode: poll`.
            self._poller = tracking_round(
                Poller(self.tracking, self.carrier, account=account), self.carrier
            )
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


def build_runtime(
    settings: Settings,
    *,
    cluster: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    carrier: Any = None,
    salesforce: Any = None,
) -> Runtime:
    """The composition root: every adapter, gate and use case of one process, built once and
    never patched afterwards. The CLI, the worker, the web app, the demo, the benchmarks and
    the tests all build their runtime here.

    `cluster`: the process takes its share of the cluster's work (a worker, `run`, the demo,
    the web app): its gates are the cluster's — breaker in the database, carrier slots and
    calls per second in Redis or the database (pipeline/gates.py) — its label backoffs are
    scaled and its Salesforce pause set, all from the `worker:` section. Otherwise (a one-off
    command, a test driving one step by hand): this process's own carrier slots only.
    `clock`: the time every use case of the runtime reads (domain/clock.py)."""
    from chronoforce.chronopost import ChronopostClient
    from chronoforce.salesforce.client import SalesforceClient

    worker = section(WorkerConfig, "worker", settings.worker) if cluster else None
    store = Store(settings.database_url)
    carrier = carrier or ChronopostClient.from_settings(settings)
    pause_s = worker.salesforce_pause_s if worker is not None else None
    salesforce = salesforce or SalesforceClient.from_settings(settings, pause_s=pause_s)
    # The org's shape, read once: Order-only mode, mapping paths that exist, field lengths.
    shape, mapping = prepare_org(salesforce, MappingConfig.from_settings(settings.mapping))
    now: Callable[[], dt.datetime] = clock.now
    preparation = Preparation(
        mapping=mapping,
        rules=RoutingRules.from_mapping(settings.routing),
        shipper=shipper_party(settings),
        label_format=LabelFormat(settings.chronopost.label_format),
        now=now,
        locations=Locations.from_settings(settings, mapping),
    )
    labels = LabelPipeline(
        store=store,
        carrier=carrier,
        prepare=preparation,
        now=now,
        lease=dt.timedelta(seconds=settings.pipeline.lease_seconds),
        # Carrier calls in flight, whatever the thread count: this process's, or the cluster's.
        # Every carrier use case (returns, cancels, pickups, rates) passes these same gates.
        gates=cluster_gates(settings, store, worker) if worker else local_gates(settings),
        preparers={"return": returns_preparation(settings, mapping, now, preparation.locations)},
        retry_scale=worker.retry_scale if worker is not None else 1.0,
    )
    runtime = Runtime(settings, store, carrier, salesforce, labels, mapping, now, shape)
    preparation.reread = runtime.refresh_source
    preparation.fixed_product = partial(slot_product, store)  # a Precise slot's (issue 23)
    return runtime
