"""Which tracking story a sandbox parcel lives, and when each of its events happens.

The scenario is chosen from the recipient, deterministically, so tests can ask for one. This
module only computes; it must never read the clock or the store.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from chronoforce.sandbox.chronopost.context import PARIS
from chronoforce.sandbox.chronopost.store import StoredEvent
from chronoforce.sandbox.chronopost.tables import (
    DEFAULT_SCENARIO,
    EVENT_CODES,
    HUB,
    RETRY_D_AT,
    RETRY_TA_AT,
    SCENARIOS,
)

# Where an event happens, by its official category: at the shipper's depot, the hub, or the
# recipient's depot (sandbox choice; Chronopost prints the depot handling the parcel).
_AT_SHIPPER = frozenset({"pickup", "returned"})
_AT_HUB = frozenset({"in_transit", "customs", "incident_routing", "incident_parcel", "delayed"})
_SHIPPER_CODES = frozenset({"SC", "EC"})  # sorted at the origin depot

_MARKER = re.compile(r"\[scenario:([a-z_]+)\]", re.IGNORECASE)


class UnknownScenario(ValueError):
    """A `[scenario:…]` marker naming no scenario."""


def choose(recipient: dict[str, Any], recipient_ref: str | None, relay: bool) -> str:
    """The first `[scenario:NAME]` marker in the recipient's name2, address2, name or reference;
    else `relay` for relay-point parcels; else `delivered`."""
    for text in (
        recipient.get("name2"),
        recipient.get("address2"),
        recipient.get("name"),
        recipient_ref,
    ):
        match = _MARKER.search(text or "")
        if match:
            name = match.group(1).lower()
            if name not in SCENARIOS:
                raise UnknownScenario(name)
            return name
    return "relay" if relay else DEFAULT_SCENARIO


def next_working_day(moment: datetime) -> datetime:
    """Midnight (Paris) of the next Monday-to-Friday day after `moment`."""
    day = moment.astimezone(PARIS).replace(hour=0, minute=0, second=0, microsecond=0)
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _office(code: str, shipper: dict[str, Any], recipient: dict[str, Any]) -> tuple[str, str]:
    category = EVENT_CODES[code].category
    if category in ("shipper_preparation", "cancelled", "information"):
        return ("Web Services", "")
    if category in _AT_SHIPPER or code in _SHIPPER_CODES:
        return (f"{str(shipper.get('city', '')).upper()} CHRONOPOST", str(shipper.get("zip", "")))
    if category in _AT_HUB and code not in ("SD", "ED", "I2"):
        return HUB
    return (f"{str(recipient.get('city', '')).upper()} CHRONOPOST", str(recipient.get("zip", "")))


def schedule(
    scenario: str, created_at: float, shipper: dict[str, Any], recipient: dict[str, Any]
) -> list[StoredEvent]:
    """Every event of the parcel with its sandbox timestamp (seconds since the epoch)."""
    events: list[StoredEvent] = []
    retry_day: datetime | None = None
    for code, hours in SCENARIOS[scenario]:
        if hours >= 0:
            at = created_at + hours * 3600
        else:
            # A negative offset marks the "absent" retry on the next working day after P.
            if retry_day is None:
                retry_day = next_working_day(datetime.fromtimestamp(events[-1].at, PARIS))
            at = (retry_day + (RETRY_TA_AT if code == "TA" else RETRY_D_AT)).timestamp()
        office, zip_code = _office(code, shipper, recipient)
        events.append(StoredEvent(code, at, office, zip_code))
    return events
