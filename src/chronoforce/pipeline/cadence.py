"""How often an idle source is read: every `base` seconds while things change, doubling up to
`cap` while nothing does, and back to `base` at the first change.

Pure bookkeeping on an injected clock (seconds, any origin), so tests and the idle-cost bench
run a simulated day in moments. It never reads a source itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def next_interval(previous: float, changed: bool, base: float, cap: float) -> float:
    """The wait after a read: `base` after a change, else twice the last wait, at most `cap`."""
    if changed:
        return base
    return min(max(cap, base), max(previous, base) * 2)


@dataclass
class Backoff:
    """One source's schedule: `due()` says whether to read now, `ran(changed)` after a read."""

    base: float
    cap: float
    clock: Callable[[], float] = time.monotonic
    interval: float = field(init=False)
    due_at: float = field(default=float("-inf"), init=False)  # the first read is due at once

    def __post_init__(self) -> None:
        self.interval = self.base

    def due(self) -> bool:
        return self.clock() >= self.due_at

    def ran(self, changed: bool) -> float:
        """Record a read; the seconds until the next one."""
        self.interval = next_interval(self.interval, changed, self.base, self.cap)
        self.due_at = self.clock() + self.interval
        return self.interval

    def hurry(self) -> None:
        """Activity seen elsewhere: the next read comes within `base`, at full speed after."""
        self.interval = self.base
        self.due_at = min(self.due_at, self.clock() + self.base)

    def wake(self) -> None:
        """Something changed elsewhere (a gap in the events): read at once, at full speed."""
        self.interval, self.due_at = self.base, float("-inf")
