"""Tracking sync: carrier events (polled or pushed) become one normalized status in Salesforce.

Both sources go through `Tracking.ingest_in` (ingest.py): dedup by (skybill, code, time) →
event table → status recomputed with domain/status.py → Salesforce writes queued only when the
shipment's tracking fingerprint changed. Nothing here writes to Salesforce directly (the outbox
does) or calls the carrier faster than the shared rate limit and call budget allow.

Modules: config (the `tracking:` section), events (storage and status of stored events),
ingest (the one path), salesforce_writes and cases (what a change queues), inbox (webhook
events), planner (when to look again), poller (the poll round).
"""

from chronoforce.pipeline.ratelimit import (
    DatabaseWindows,
    RateLimiter,
    RedisWindows,
    Windows,
    windows_for,
)
from chronoforce.pipeline.tracking.cases import Cases, link_cases, tell
from chronoforce.pipeline.tracking.config import CaseConfig, TrackingConfig, tracking_config
from chronoforce.pipeline.tracking.events import (
    ShipmentTracking,
    event_key,
    iso,
    shipment_tracking,
    utc,
)
from chronoforce.pipeline.tracking.inbox import inbox_event, process_inbox, purge_inbox
from chronoforce.pipeline.tracking.ingest import IngestReport, Tracking
from chronoforce.pipeline.tracking.planner import URGENCY_WEIGHT, PollPlanner, policy_of
from chronoforce.pipeline.tracking.poller import Poller, PollReport, TrackingCarrier
from chronoforce.pipeline.tracking.salesforce_writes import (
    EVENT_KEY_FIELD,
    EVENT_OBJECT,
    SalesforceWrites,
    flush,
)

__all__ = [
    "EVENT_KEY_FIELD",
    "EVENT_OBJECT",
    "URGENCY_WEIGHT",
    "CaseConfig",
    "Cases",
    "DatabaseWindows",
    "IngestReport",
    "PollPlanner",
    "PollReport",
    "Poller",
    "RateLimiter",
    "RedisWindows",
    "SalesforceWrites",
    "ShipmentTracking",
    "Tracking",
    "TrackingCarrier",
    "TrackingConfig",
    "Windows",
    "event_key",
    "flush",
    "inbox_event",
    "iso",
    "link_cases",
    "policy_of",
    "process_inbox",
    "purge_inbox",
    "shipment_tracking",
    "tell",
    "tracking_config",
    "utc",
    "windows_for",
]
