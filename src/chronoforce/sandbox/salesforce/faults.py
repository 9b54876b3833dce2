"""Injected faults for tests: UNABLE_TO_LOCK_ROW on a share of writes, latency, 503s.

Draws come from one seeded random generator so a test run is repeatable. It never fails a
request that was not drawn.
"""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

from chronoforce.sandbox.salesforce.errors import ApiError, unable_to_lock_row


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self.lock_row_share = 0.0
        self.latency = 0.0
        self.status_503_share = 0.0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def configure(
        self,
        lock_row_share: float | None = None,
        latency: float | None = None,
        status_503_share: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        for name, value in (
            ("lock_row_share", lock_row_share),
            ("status_503_share", status_503_share),
        ):
            if value is not None:
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1")
                setattr(self, name, float(value))
        if latency is not None:
            if float(latency) < 0:
                raise ValueError("latency must be >= 0 seconds")
            self.latency = float(latency)
        if seed is not None:
            self._rng = random.Random(seed)
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return {
            "lock_row_share": self.lock_row_share,
            "latency": self.latency,
            "status_503_share": self.status_503_share,
        }

    def _draw(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def on_write(self, record_id: str | None) -> None:
        if self._draw(self.lock_row_share):
            raise unable_to_lock_row(record_id or "")

    def unavailable(self) -> bool:
        return self._draw(self.status_503_share)

    async def delay(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)


__all__ = ["ApiError", "Faults"]
