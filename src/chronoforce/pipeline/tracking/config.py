"""`tracking:` in chronoforce.yaml: poll cadence, call budget, Case rules, webhook limits.

Validation only; it must never hold a secret (the webhook secret lives in `Secrets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chronoforce.domain.models import ShipmentStatus


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseConfig(_Section):
    """Support Cases opened on exception statuses (one per order, reused while open)."""

    enabled: bool = True
    statuses: tuple[str, ...] = ("exception", "returning", "returned")
    # Event reasons (domain/data/chronopost_events.csv) that open a Case whatever the status:
    # a parcel delivered damaged (DD) is delivered, and still a customer's problem.
    reasons: tuple[str, ...] = ("delivered_damaged",)
    record_type_id: str = ""
    owner_id: str = ""  # a queue id: where new Cases land
    priority: str = "High"
    origin: str = "Chronopost"
    new_status: str = "New"
    update_status: str = "Working"  # empty: leave the Case's Status alone on later events
    close_on_delivery: bool = True
    closed_status: str = "Closed"


class TrackingConfig(_Section):
    """`tracking:` in chronoforce.yaml."""

    calls_per_second: float | None = Field(10.0, gt=0)  # per account, shared by all workers
    calls_per_hour: int | None = Field(None, gt=0)  # the carrier call budget; None = unbounded
    concurrency: int = Field(8, ge=1, le=128)
    batch_size: int = Field(500, ge=1)  # shipments per poll round
    rate_limit_url: str = ""  # empty: the database; redis://… shares the limit through Redis
    terminal_grace_hours: float = Field(24.0, ge=0)  # one last look after a terminal status
    error_retry_minutes: float = Field(30.0, gt=0)
    min_poll_minutes: float = Field(10.0, gt=0)  # never sooner, however much budget is left
    extra_codes: dict[str, str] = Field(default_factory=dict)  # code → normalized status
    # status → hours between polls, overriding domain/status.py's PollPolicy.delays
    poll_hours: dict[ShipmentStatus, float] = Field(default_factory=dict)
    # status → hours after the last event before the first look (planner.QUIET_HOURS)
    quiet_hours: dict[ShipmentStatus, float] = Field(default_factory=dict)
    order_status_map: dict[str, str] = Field(default_factory=dict)  # status → Order.Status
    shipment_status_map: dict[str, str] = Field(default_factory=lambda: {"delivered": "Delivered"})
    write_events: bool = True  # tracking-event records in Salesforce
    case: CaseConfig = CaseConfig()
    webhook_window_seconds: int = Field(300, ge=1)
    webhook_max_bytes: int = Field(1_048_576, ge=1024)
    webhook_max_events: int = Field(1000, ge=1)


def tracking_config(raw: Mapping[str, Any]) -> TrackingConfig:
    """Validate `Settings.tracking`; errors name the key, like the rest of the configuration."""
    from chronoforce.config import ConfigError

    try:
        return TrackingConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"key 'tracking.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid tracking configuration: {problems}") from exc
