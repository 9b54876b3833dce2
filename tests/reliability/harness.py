"""A chronoforce cluster for the kill and faults scenarios: both sandboxes as servers in the test
process (they outlive every worker kill), `chronoforce worker` subprocesses on PostgreSQL +
Redis, and the end-state check every scenario shares (one label or one exception per order).

Loaded by path from the test modules (tests are not a package).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, update

from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.db import Store
from chronoforce.store.models import Event, ExceptionRow, Outbox, Parcel, Shipment

TERMINAL = ("labeled", "exception")


def wait_for(predicate: Callable[[], Any], deadline_s: float, every: float = 0.5) -> Any:
    """Poll `predicate` until it is truthy or the deadline passes (then its last value)."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(every)


def steady(predicate: Callable[[], Any], hold_s: float) -> Callable[[], bool]:
    """A predicate that is true once `predicate` has stayed true for `hold_s` (a poll round
    claims its parcels before it queues their writes: one true reading is not the end)."""
    since: list[float] = []

    def check() -> bool:
        if not predicate():
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= hold_s

    return check


@dataclass
class Cluster:
    tmp: Path
    database_url: str
    queue_url: str
    queue_name: str
    orders: int
    worker_settings: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=lambda: {"lease_seconds": 3.0})
    chronopost: dict[str, Any] = field(
        # Thermal labels (ZPL): the PDF path is tested end to end elsewhere; here the CPU of
        # this two-core machine goes to the workers rather than to drawing PDFs.
        default_factory=lambda: {
            "connect_timeout_s": 0.5,
            "read_timeout_s": 2.0,
            "label_format": "Z2D",
        }
    )
    seed: int = 11
    carrier_latency_s: float | None = None  # seconds per Chronopost answer
    carrier: ChronopostSandbox = field(init=False)
    org: SalesforceSandbox = field(init=False)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: int = 0
    _servers: list[Any] = field(default_factory=list)
    _store: Store | None = None
    _logs: int = 0

    def start(self) -> Cluster:
        tls = ensure_tls(self.tmp / "tls")
        # Not about the cancel window: recovered orphans are cancelled at once, as before.
        self.carrier = ChronopostSandbox(
            db_path=":memory:", latency=self.carrier_latency_s, cancel_window=dt.timedelta(0)
        )
        self.org = SalesforceSandbox(db_path=":memory:")
        self.org.seed(orders=self.orders, seed=self.seed)
        cp = self.carrier.start()
        sf = BackgroundServer(
            self.org.app, tls=tls, options={"timeout_graceful_shutdown": 1}
        ).start()
        self._servers = [sf, cp]
        self.config = self.tmp / "chronoforce.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "database_url": self.database_url,
                    "queue_url": self.queue_url,
                    "chronopost": {
                        "base_url": cp.url,
                        "account_number": DEMO_ACCOUNT,
                        **self.chronopost,
                    },
                    "salesforce": {
                        "instance_url": sf.url,
                        "login_url": sf.url,
                        "client_id": DEMO_CLIENT_ID,
                        "ca_file": str(tls.ca_cert),
                    },
                    "pipeline": self.pipeline,
                    # The scenarios steer per-parcel polls (make_due_for_tracking) and judge
                    # the end by an empty outbox: the poller alone, not delta tracking's
                    # five-minute searches, whose late answers would queue writes after the
                    # end (delta tracking: tests/pipeline/test_tracking_delta.py).
                    "tracking": {"calls_per_second": 200, "min_poll_minutes": 1, "mode": "poll"},
                    "worker": {
                        "queue_name": self.queue_name,
                        "detect_every_s": 1.0,
                        "flush_every_s": 1.0,
                        "sweep_every_s": 1.0,
                        "poll_every_s": 2.0,
                        "requeue_after_s": 8.0,
                        "shutdown_grace_s": 5.0,
                        **self.worker_settings,
                    },
                    "logging": {"level": "warning", "format": "json"},
                }
            )
        )
        self.env = {
            **os.environ,
            "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
            "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }
        return self

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.database_url)
        return self._store

    # --- workers -----------------------------------------------------------------------------

    def spawn(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        self._logs += 1
        log = (self.tmp / f"worker-{self._logs}.log").open("wb")
        command = [sys.executable, "-m", "chronoforce.cli", "--config", str(self.config)]
        worker = subprocess.Popen(
            [*command, "worker", "--concurrency", str(concurrency)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            self.kills += 1
        worker.wait(timeout=30)
        self.workers.remove(worker)

    def terminate_all(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM every worker and wait: their exit codes (0 = graceful)."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = []
        for worker in self.workers:
            try:
                codes.append(worker.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                worker.kill()
                codes.append(None)
        self.workers.clear()
        return codes

    def stop(self) -> None:
        for worker in list(self.workers):
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=30)
        self.workers.clear()
        if self._store is not None:
            self._store.dispose()
        for server in self._servers:
            server.stop()
        if self.queue_url:
            import redis
            from huey import RedisHuey

            RedisHuey(self.queue_name, url=self.queue_url).flush()  # only this run's keys
            redis.Redis.from_url(self.queue_url).delete(
                f"chronoforce:slots:{self.queue_name}:chronopost"
            )

    def worker_log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log"))
        )

    # --- progress ----------------------------------------------------------------------------

    def states(self) -> dict[str, int]:
        with self.store.session() as session:
            return dict(
                session.execute(select(Shipment.state, func.count()).group_by(Shipment.state)).all()
            )

    def settled(self) -> bool:
        """Every order recorded and terminal, every Salesforce write sent."""
        states = self.states()
        print(f"{time.strftime('%H:%M:%S')} kills={self.kills} {states}", flush=True)
        if sum(states.values()) < self.orders:
            return False
        if set(states) - set(TERMINAL):
            self.retry_parked()
            return False
        with self.store.session() as session:
            pending = session.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.state == "pending")
            )
            verifying = session.scalar(
                select(func.count()).select_from(Shipment).where(Shipment.verify_at.is_not(None))
            )
        return not pending and not verifying

    def retry_parked(self) -> list[int]:
        """What an operator does with an exception for review: retry it. A shipment whose tries
        all failed with the last call's outcome unknown waits `calling` for an hour, with an
        open exception row; the retry makes it due now (looking its parcels up first)."""
        from chronoforce.pipeline import exceptions

        now = dt.datetime.now(dt.UTC)
        with self.store.session() as session:
            parked = session.scalars(
                select(ExceptionRow)
                .join(Shipment, Shipment.id == ExceptionRow.shipment_id)
                .where(
                    ExceptionRow.state == "open",
                    Shipment.state == "calling",
                    Shipment.lease_owner.is_(None),
                    Shipment.next_attempt_at > now + dt.timedelta(minutes=10),
                )
            ).all()
            retried = [exceptions.retry(session, row.id, now) for row in parked]
        done = [i for i in retried if i is not None]
        if done:
            print(f"{time.strftime('%H:%M:%S')} operator retries parked shipments {done}")
        return done

    def progress(self) -> dict[str, Any]:
        """What is left, for a failure message."""
        with self.store.session() as session:
            outbox = dict(
                session.execute(
                    select(Outbox.sf_object, func.count())
                    .where(Outbox.state == "pending")
                    .group_by(Outbox.sf_object)
                ).all()
            )
            stuck = [
                (s.id, s.state, s.attempts, str(s.next_attempt_at), s.last_error[:80])
                for s in session.scalars(select(Shipment).where(Shipment.state.not_in(TERMINAL)))
            ][:10]
        return {
            "states": self.states(),
            "pending_writes": outbox,
            "stuck": stuck,
            "tracked": self.tracked(),
        }

    def make_due_for_tracking(self, limit: int = 60) -> int:
        """Steer the scenario: the first `limit` labeled shipments are due for a tracking poll
        now (again, even if a killed poller still holds them). The carrier reports a `DC`
        event from the label's creation on; its clock stays put, so an orphan label is still
        cancellable (a picked-up parcel could not be)."""
        with self.store.session() as session:
            ids = list(
                session.scalars(
                    select(Shipment.id)
                    .where(Shipment.state == "labeled")
                    .order_by(Shipment.id)
                    .limit(limit)
                )
            )
            session.execute(
                update(Shipment)
                .where(Shipment.id.in_(ids))
                .values(next_poll_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
                .execution_options(synchronize_session=False)
            )
        return len(ids)

    def polled(self, limit: int = 60) -> bool:
        """Every steered shipment was polled since (its next poll moved into the future)."""
        now = dt.datetime.now(dt.UTC)
        with self.store.session() as session:
            ids = list(
                session.scalars(
                    select(Shipment.id)
                    .where(Shipment.state == "labeled")
                    .order_by(Shipment.id)
                    .limit(limit)
                )
            )
            waiting = session.scalar(
                select(func.count())
                .select_from(Shipment)
                .where(Shipment.id.in_(ids), Shipment.next_poll_at <= now)
            )
        return not waiting

    def tracked(self) -> int:
        """Shipments with at least one stored tracking event."""
        with self.store.session() as session:
            return int(
                session.scalar(
                    select(func.count(func.distinct(Parcel.shipment_id))).where(
                        Parcel.skybill_number.in_(select(Event.skybill_number))
                    )
                )
                or 0
            )

    # --- the end state -----------------------------------------------------------------------

    def end_state(self) -> EndState:
        with self.store.session() as session:
            shipments = list(session.scalars(select(Shipment)))
            live = list(session.scalars(select(Parcel).where(Parcel.live)))
            open_rows = list(
                session.scalars(select(ExceptionRow).where(ExceptionRow.state != "resolved"))
            )
            event_keys = list(
                session.execute(select(Event.skybill_number, Event.code, Event.event_time))
            )
            unsent = list(
                session.execute(
                    select(Outbox.sf_object, Outbox.state, Outbox.last_error).where(
                        Outbox.state != "sent"
                    )
                )
            )
            retries = sum(max(0, s.attempts - 1) for s in shipments) + int(
                session.scalar(select(func.coalesce(func.sum(Outbox.attempts - 1), 0))) or 0
            )
            session.expunge_all()
        return EndState(self, shipments, live, open_rows, event_keys, unsent, retries)


@dataclass
class EndState:
    cluster: Cluster
    shipments: list[Shipment]
    live: list[Parcel]
    open_exceptions: list[ExceptionRow]
    event_keys: list[Any]
    unsent: list[Any]
    retries: int

    @property
    def labeled(self) -> list[Shipment]:
        return [s for s in self.shipments if s.state == "labeled"]

    @property
    def failed(self) -> list[Shipment]:
        return [s for s in self.shipments if s.state == "exception"]

    def problems(self) -> dict[str, Any]:
        """Everything that breaks "one live label or one exception per order" (empty = good)."""
        cluster = self.cluster
        found: dict[str, Any] = {}
        by_order = Counter(s.sf_id for s in self.shipments)
        seeded = {o["Id"] for o in cluster.org.records("Order")}
        found["lost"] = sorted(seeded - set(by_order))
        found["twice"] = sorted(k for k, n in by_order.items() if n > 1)
        found["not_terminal"] = sorted(
            (s.sf_id, s.state) for s in self.shipments if s.state not in TERMINAL
        )
        # At the carrier: exactly the live labels we hold, parcel for parcel.
        carrier_live = {p.skybill for p in cluster.carrier.parcels() if not p.cancelled_at}
        ours = {p.skybill_number for p in self.live}
        found["carrier_only_labels"] = sorted(carrier_live - ours)
        found["labels_not_at_carrier"] = sorted(ours - carrier_live)
        labeled_ids = {s.id for s in self.labeled}
        found["labeled_without_label"] = sorted(
            s.sf_id for s in self.labeled if s.id not in {p.shipment_id for p in self.live}
        )
        found["labels_of_unlabeled"] = sorted(
            p.skybill_number for p in self.live if p.shipment_id not in labeled_ids
        )
        exception_of = {e.shipment_id for e in self.open_exceptions}
        found["exception_without_row"] = sorted(
            s.sf_id for s in self.failed if s.id not in exception_of
        )
        found["labeled_with_open_exception"] = sorted(
            s.sf_id for s in self.labeled if s.id in exception_of
        )
        # In Salesforce: one file and one tracking number per labeled order.
        files = Counter(v["FirstPublishLocationId"] for v in cluster.org.records("ContentVersion"))
        labeled_orders = {s.sf_id for s in self.labeled}
        found["orders_without_file"] = sorted(labeled_orders - set(files))
        found["orders_with_files"] = sorted(k for k, n in files.items() if n > 1)
        found["files_of_unlabeled"] = sorted(set(files) - labeled_orders)
        orders = {o["Id"]: o for o in cluster.org.records("Order")}
        numbers_of = {
            s.sf_id: ",".join(p.skybill_number for p in self.live if p.shipment_id == s.id)
            for s in self.labeled
        }
        found["wrong_tracking_number"] = sorted(
            i
            for i, numbers in numbers_of.items()
            if orders[i].get("Chronopost_Tracking_Number__c") != numbers
        )
        found["error_record_missing"] = sorted(
            {s.sf_id for s in self.failed}
            - {e["Record_Id__c"] for e in cluster.org.records("Chronopost_Integration_Error__c")}
        )
        events = Counter(
            e.get("Event_Key__c") for e in cluster.org.records("Chronopost_Tracking_Event__c")
        )
        found["duplicate_event_records"] = sorted(k for k, n in events.items() if n > 1)
        found["duplicate_events"] = sorted(
            str(k) for k, n in Counter(self.event_keys).items() if n > 1
        )
        found["unsent_writes"] = [tuple(u) for u in self.unsent]
        return {k: v for k, v in found.items() if v}

    def duplicates(self) -> int:
        p = self.problems()
        return sum(
            len(p.get(k, []))
            for k in (
                "twice",
                "carrier_only_labels",
                "orders_with_files",
                "duplicate_event_records",
                "duplicate_events",
            )
        )

    def lost(self) -> int:
        p = self.problems()
        return sum(len(p.get(k, [])) for k in ("lost", "not_terminal", "orders_without_file"))


def summary_row(scenario: str, end: EndState, *, kills: int, faults: int) -> Any:
    """A row of the suite's summary table (conftest.SummaryRow, loaded by path)."""
    path = str(Path(__file__).with_name("conftest.py"))
    module = next(
        m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == path
    )  # pytest imported it already: the fixture's list belongs to that module
    return module.SummaryRow(
        scenario=scenario,
        orders=len(end.shipments),
        kills=kills,
        faults=faults,
        labels=len(end.labeled),
        exceptions=len(end.failed),
        duplicates=end.duplicates(),
        lost=end.lost(),
        retries=end.retries,
    )
