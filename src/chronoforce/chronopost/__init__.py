"""chronoforce's Chronopost adapter: SOAP client for labels, rates, tracking and relay points.

Import from here; the modules behind it are one per operation group. This package must never
retry, store or log anything itself: it returns or raises, with the call's payloads attached.
"""

from __future__ import annotations

from chronoforce.chronopost.client import CallHook, ChronopostClient
from chronoforce.chronopost.codes import ERROR_CODES, cancel_opens_at, error_for
from chronoforce.chronopost.config import (
    AccountFamily,
    AccountsConfig,
    ChronopostAccounts,
    ChronopostCredentials,
    ChronopostEndpoint,
    Service,
)
from chronoforce.chronopost.shipping import ReservedLabel
from chronoforce.chronopost.tracking import TrackedParcel
from chronoforce.chronopost.transport import CarrierCall, HttpStatusError

__all__ = [
    "ERROR_CODES",
    "AccountFamily",
    "AccountsConfig",
    "CallHook",
    "CarrierCall",
    "ChronopostAccounts",
    "ChronopostClient",
    "ChronopostCredentials",
    "ChronopostEndpoint",
    "HttpStatusError",
    "ReservedLabel",
    "Service",
    "TrackedParcel",
    "cancel_opens_at",
    "error_for",
]
