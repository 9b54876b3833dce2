"""The sandbox's request log: what clients sent and what they got, readable by tests; and the
count of requests in flight with its high-water mark.

Bounded and in memory. Bodies are stored with passwords replaced; it must never keep a secret.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    id: int
    at: str  # sandbox time, ISO 8601
    service: str
    operation: str | None
    account: str | None
    request: str  # the operation element, password redacted
    http_status: int
    error_code: int | None  # Chronopost's errorCode when the answer had one
    fault: str | None  # faultstring when the answer was a SOAP fault
    injected: str | None  # the injected fault kind, if any
    duration_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, capacity: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._next = 1

    def next_id(self) -> int:
        with self._lock:
            value, self._next = self._next, self._next + 1
            return value

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, operation: str | None = None) -> list[RequestRecord]:
        with self._lock:
            items = list(self._records)
        return [r for r in items if operation is None or r.operation == operation]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class InFlight:
    """SOAP requests being answered right now, and the most there ever were at once (the
    high-water mark tests read to check a client's concurrency cap; reset clears it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.high = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.current += 1
            self.high = max(self.high, self.current)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.current -= 1

    def reset(self) -> None:
        with self._lock:
            self.high = self.current

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {"current": self.current, "high": self.high}
