"""Retry policy per error class: exponential backoff with half jitter, capped; signals win."""

from __future__ import annotations

import random

import pytest

from chronoforce.domain.errors import (
    RETRY_POLICY,
    CarrierTimeoutError,
    CarrierUnavailableError,
    CircuitOpenError,
    RateLimitedError,
    SalesforceUnavailableError,
    backoff_for,
    retry_delay,
)


def test_each_try_waits_between_half_and_all_of_a_doubling_step() -> None:
    rng = random.Random(1)
    policy = backoff_for(CarrierUnavailableError("HTTP 503"))
    for attempt in range(1, 8):
        step = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= step / 2 and max(delays) <= step
        assert max(delays) - min(delays) > step / 4, "jitter spreads workers that failed together"


def test_the_wait_is_capped() -> None:
    policy = backoff_for(SalesforceUnavailableError("UNABLE_TO_LOCK_ROW"))
    assert policy.delay(40, random.Random(2)) <= policy.cap_s


def test_a_class_without_its_own_row_uses_its_nearest_ancestor() -> None:
    assert CircuitOpenError not in RETRY_POLICY
    assert backoff_for(CircuitOpenError("open")) is RETRY_POLICY[CarrierUnavailableError]
    assert backoff_for(CarrierTimeoutError("slow")) is RETRY_POLICY[CarrierTimeoutError]


def test_a_timeout_waits_longer_than_a_refused_call_and_a_spent_budget_longest() -> None:
    def base(error: Exception) -> float:
        return backoff_for(error).base_s  # type: ignore[arg-type]

    assert base(CarrierTimeoutError("t")) > base(CarrierUnavailableError("u"))
    assert base(RateLimitedError("r")) > base(CarrierTimeoutError("t"))


def test_the_servers_retry_after_wins_over_the_table() -> None:
    error = RateLimitedError("REQUEST_LIMIT_EXCEEDED")
    error.retry_after = 120.0
    delays = [retry_delay(error, 1, random.Random(seed)) for seed in range(20)]
    assert all(120.0 <= d <= 132.0 for d in delays)


@pytest.mark.parametrize("attempts", [0, 1])
def test_the_first_retry_is_quick(attempts: int) -> None:
    error = SalesforceUnavailableError("UNABLE_TO_LOCK_ROW")
    assert retry_delay(error, attempts, random.Random(3)) <= 1.0
