"""`tracking:` in chronoforce.yaml: poll cadence, call budget, Case rules, webhook limits.

The models live with the rest of the configuration (config/sections.py), validated at load;
`tracking_config` validates a section given alone. It must never hold a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chronoforce.config import CaseConfig, TrackingConfig, section

__all__ = ["CaseConfig", "TrackingConfig", "tracking_config"]


def tracking_config(raw: Mapping[str, Any] | TrackingConfig) -> TrackingConfig:
    """`Settings.tracking` (typed at load) or a mapping; errors name `tracking.<key>`."""
    return section(TrackingConfig, "tracking", raw)
