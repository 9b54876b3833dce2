"""The relay search use case: Chronopost relay points near an address, through the gates.

The chosen point's id goes into the order's relay point field and from there into the label
request (routing picks a relay product for it). It never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from chronoforce.domain.models import RelayPoint
from chronoforce.pipeline.gates import Gates


@dataclass
class RelaySearch:
    carrier: Any  # ChronopostClient (relay_points)
    gates: Gates

    def near(self, postal_code: str, country: str, city: str, limit: int) -> tuple[RelayPoint, ...]:
        """Nearest first, as Chronopost orders them."""
        ask = partial(self.carrier.relay_points, postal_code, country.upper(), city, limit=limit)
        points: tuple[RelayPoint, ...] = tuple(self.gates.call(ask))
        return points
