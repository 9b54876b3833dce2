"""Prometheus metrics: what the adapters observe in this process, and what the store says now.

Call metrics (carrier latency by operation, errors by code, Salesforce calls and budget) live in
chronoforce's own `REGISTRY`, filled by one line at each transport seam. Counts that every worker
shares (labels created, queue depth, open exceptions, tracking staleness) are read from the store
at scrape time, so they are right however many processes do the work. Nothing here may raise
into a caller's call path or carry a secret: labels are operation names, kinds and codes only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from chronoforce.domain.shipment_state import DUE, ShipmentState
from chronoforce.domain.status import TERMINAL_STATUSES
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Outbox, Parcel, Shipment

REGISTRY = CollectorRegistry(auto_describe=True)

# Chronopost answers in tens of ms on loopback and in seconds on a bad day (label calls).
_CARRIER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

CARRIER_SECONDS = Histogram(
    "chronoforce_carrier_call_seconds",
    "Chronopost SOAP call latency, by operation",
    ["operation"],
    buckets=_CARRIER_BUCKETS,
    registry=REGISTRY,
)
CARRIER_ERRORS = Counter(
    "chronoforce_carrier_errors",
    "Chronopost calls that ended in an error, by operation and error code",
    ["operation", "code"],
    registry=REGISTRY,
)
SALESFORCE_CALLS = Counter(
    "chronoforce_salesforce_calls",
    "Salesforce HTTP calls, by kind (query, collection, file, auth…) and status class",
    ["kind", "status"],
    registry=REGISTRY,
)
SALESFORCE_API_USED = Gauge(
    "chronoforce_salesforce_api_used",
    "Salesforce API requests used in the org's 24 h window (last Sforce-Limit-Info seen)",
    registry=REGISTRY,
)
SALESFORCE_API_MAX = Gauge(
    "chronoforce_salesforce_api_max",
    "Salesforce API requests the org allows per 24 h (last Sforce-Limit-Info seen)",
    registry=REGISTRY,
)
_last_usage: list[int] = []  # [used, max] of the last Sforce-Limit-Info header seen


class _Usage(Protocol):
    @property
    def used(self) -> int: ...
    @property
    def max(self) -> int: ...


class _CarrierCall(Protocol):
    @property
    def operation(self) -> str: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def error_code(self) -> str: ...


def observe_carrier_call(call: _CarrierCall) -> None:
    """One Chronopost exchange (chronopost/client.py calls this for every CarrierCall)."""
    try:
        CARRIER_SECONDS.labels(call.operation).observe(call.duration_s)
        if call.error_code:
            CARRIER_ERRORS.labels(call.operation, call.error_code[:80]).inc()
    except Exception:  # noqa: S110 - a metric must never fail the carrier call it measures
        pass


def observe_salesforce_call(kind: str, status: int, usage: _Usage | None) -> None:
    """One Salesforce HTTP exchange (salesforce/transport.py); `status` 0 = no answer."""
    try:
        SALESFORCE_CALLS.labels(kind, f"{status // 100}xx" if status else "none").inc()
        if usage is not None:
            SALESFORCE_API_USED.set(usage.used)
            SALESFORCE_API_MAX.set(usage.max)
            _last_usage[:] = [usage.used, usage.max]
    except Exception:  # noqa: S110 - a metric must never fail the call it measures
        pass


def api_usage() -> tuple[int, int] | None:
    """(used, max) of the org's API budget as last seen by this process, if any call was made."""
    return (_last_usage[0], _last_usage[1]) if _last_usage else None


# --- read from the store at scrape time -------------------------------------------------------

DUE_STATES = DUE  # due for a label (domain/shipment_state.py)
_TERMINAL = tuple(s.value for s in TERMINAL_STATUSES)  # tracking stops polling these


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class StoreCollector(Collector):
    """Gauges computed from the store on each scrape: always right, whoever did the work."""

    def __init__(self, store: Store, now: Any = None) -> None:
        self.store = store
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def collect(self) -> Iterator[Any]:
        now = self.now()
        with self.store.session() as session:
            labels = session.scalar(select(func.count(Parcel.id))) or 0
            states = session.execute(
                select(Shipment.state, func.count(Shipment.id)).group_by(Shipment.state)
            ).all()
            due = session.scalar(
                select(func.count(Shipment.id)).where(
                    Shipment.state.in_(DUE_STATES),
                    (Shipment.next_attempt_at.is_(None)) | (Shipment.next_attempt_at <= now),
                )
            )
            outbox = session.scalar(select(func.count(Outbox.id)).where(Outbox.state == "pending"))
            problems = session.execute(
                select(ExceptionRow.kind, ExceptionRow.code, func.count(ExceptionRow.id))
                .where(ExceptionRow.state != "resolved")
                .group_by(ExceptionRow.kind, ExceptionRow.code)
            ).all()
            overdue = session.execute(
                select(func.count(Shipment.id), func.min(Shipment.next_poll_at)).where(
                    Shipment.state == ShipmentState.LABELED,
                    Shipment.status.not_in(_TERMINAL),
                    Shipment.next_poll_at <= now,
                )
            ).one()
        created = CounterMetricFamily(
            "chronoforce_labels_created", "Labels (parcels) created since the store began"
        )
        created.add_metric([], float(labels))
        yield created
        shipments = GaugeMetricFamily(
            "chronoforce_shipments", "Shipments by state", labels=["state"]
        )
        for state, count in states:
            shipments.add_metric([state], float(count))
        yield shipments
        depth = GaugeMetricFamily(
            "chronoforce_queue_depth", "Work due now: label queue and outbox", labels=["queue"]
        )
        depth.add_metric(["labels"], float(due or 0))
        depth.add_metric(["outbox"], float(outbox or 0))
        yield depth
        errors = GaugeMetricFamily(
            "chronoforce_exceptions_open",
            "Exceptions not resolved yet, by kind and error code",
            labels=["kind", "code"],
        )
        for kind, code, count in problems:
            errors.add_metric([kind, code], float(count))
        yield errors
        count, oldest = overdue
        stale = GaugeMetricFamily(
            "chronoforce_tracking_overdue_shipments",
            "Shipments in transit whose next tracking poll is past due",
        )
        stale.add_metric([], float(count or 0))
        yield stale
        age = GaugeMetricFamily(
            "chronoforce_tracking_staleness_seconds",
            "How far past due the most overdue tracking poll is (0 when none is)",
        )
        age.add_metric([], (now - _utc(oldest)).total_seconds() if oldest else 0.0)
        yield age


class _Forward(Collector):
    """Re-exports another registry's metrics (the process-wide call metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


def app_registry(store: Store) -> CollectorRegistry:
    """What one app's `/metrics` exports: this process's call metrics plus the store's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(REGISTRY))
    registry.register(StoreCollector(store))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
