"""The org's daily API budget as seen in `Sforce-Limit-Info`, exported as Prometheus gauges.

Salesforce counts every REST call against one org-wide 24-hour budget shared with every other
integration. chronoforce keeps a reserve: below it, writes (and, at half of it, reads) are
refused locally with RateLimitedError. It must never spend the last calls of the org's budget.
The usage is the org's own count, so every worker sees the same reserve; once a refusal is
older than `retry_after_s`, one call goes through to read the usage again (the budget recovers
as the 24 h window slides, and nothing else would tell us).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from prometheus_client import Gauge

from chronoforce.domain.errors import RateLimitedError

API_USED = Gauge(
    "chronoforce_salesforce_api_used", "Salesforce API requests used in the org's 24 h window"
)
API_MAX = Gauge("chronoforce_salesforce_api_max", "Salesforce API requests allowed per 24 h")

# `Sforce-Limit-Info: api-usage=18/5000` (optionally `; per-app-api-usage=…`), REST API docs.
_USAGE_RE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
# The 24 h window slides; nothing tells when calls come back, so wait a while and look again.
DEFAULT_RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class ApiUsage:
    used: int
    max: int

    @property
    def remaining(self) -> int:
        return max(0, self.max - self.used)


def parse_limit_info(header: str) -> ApiUsage | None:
    match = _USAGE_RE.search(header or "")
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


class ApiBudget:
    """Last known usage and the reserve rule; thread-safe, shared by one client's calls."""

    def __init__(
        self, reserve_fraction: float = 0.2, retry_after_s: float = DEFAULT_RETRY_AFTER_S
    ) -> None:
        self.reserve_fraction = reserve_fraction
        self.retry_after_s = retry_after_s
        self._usage: ApiUsage | None = None
        self._seen_at = 0.0  # monotonic time of the last usage read
        self._lock = threading.Lock()

    @property
    def usage(self) -> ApiUsage | None:
        return self._usage

    def observe(self, header: str | None) -> None:
        usage = parse_limit_info(header or "")
        if usage is None:
            return
        with self._lock:
            self._usage = usage
            self._seen_at = time.monotonic()
        API_USED.set(usage.used)
        API_MAX.set(usage.max)

    def check(self, *, write: bool) -> None:
        """Refuse the call before it is sent when it would eat into the reserve."""
        usage = self._usage
        if usage is None or usage.max <= 0:
            return
        reserve = self.reserve_fraction * usage.max * (1.0 if write else 0.5)
        if usage.remaining < reserve:
            with self._lock:
                stale = time.monotonic() - self._seen_at >= self.retry_after_s
                if stale:
                    self._seen_at = time.monotonic()  # one probe per period, not one per thread
            if stale:
                return
            error = RateLimitedError(
                f"Salesforce API reserve reached: {usage.used}/{usage.max} used, "
                f"{'writes' if write else 'reads'} paused below {reserve:.0f} remaining",
                code="API_RESERVE",
                operation="write" if write else "read",
            )
            error.retry_after = self.retry_after_s
            raise error
