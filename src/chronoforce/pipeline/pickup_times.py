"""A pickup on demand as the pipeline keeps it: asked on a shipment row, timed in Paris.

The API writes the pickup asked for on the row (`source["pickup"]`); the label use case reads it
back into the request's `esdValue`. Chronopost's times and the window asked for are Paris local
time; Salesforce gets instants. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from chronoforce.domain.models import Pickup
from chronoforce.salesforce.fields import PICKUP_DATE, PICKUP_NUMBER

PARIS = ZoneInfo("Europe/Paris")


def pickup_of(raw: Any) -> Pickup | None:
    """The pickup asked for on a shipment row (`source["pickup"]`), if any."""
    if not raw:
        return None
    return Pickup(
        date=dt.date.fromisoformat(raw["date"]),
        ready_time=dt.time.fromisoformat(raw["ready_time"]),
        closing_time=dt.time.fromisoformat(raw["closing_time"]),
        instructions=raw.get("instructions", ""),
    )


def pickup_instant(value: dt.datetime | None, pickup: Pickup | None) -> dt.datetime | None:
    """The pickup time as an instant. Chronopost's offset-less times are Paris local time (as
    chronopost/tracking.py reads event times), and so is the window asked for."""
    if value is None and pickup is not None:
        value = dt.datetime.combine(pickup.date, pickup.ready_time)
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.astimezone(dt.UTC)


def pickup_fields(number: str, when: dt.datetime | None) -> dict[str, Any]:
    """The Order's pickup fields; the date an instant Salesforce stores as UTC."""
    return {
        PICKUP_NUMBER.api: number[:50],
        PICKUP_DATE.api: when.isoformat().replace("+00:00", "Z") if when else None,
    }


def pickup_plain(pickup: Pickup) -> dict[str, str]:
    """The pickup as the row keeps it (`pickup_of` reads it back)."""
    return {
        "date": pickup.date.isoformat(),
        "ready_time": pickup.ready_time.isoformat(),
        "closing_time": pickup.closing_time.isoformat(),
        "instructions": pickup.instructions,
    }
