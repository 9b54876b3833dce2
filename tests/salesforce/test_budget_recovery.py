"""The API reserve pauses writes, then lets one call through to see whether the budget recovered."""

from __future__ import annotations

import pytest

from chronoforce.domain.errors import RateLimitedError
from chronoforce.salesforce.limits import ApiBudget


def test_below_the_reserve_writes_are_refused_then_one_probe_passes() -> None:
    budget = ApiBudget(reserve_fraction=0.2, retry_after_s=0.0)
    budget.retry_after_s = 3600.0
    budget.observe("api-usage=850/1000")
    with pytest.raises(RateLimitedError) as refused:
        budget.check(write=True)
    assert refused.value.code == "API_RESERVE" and refused.value.retry_after == 3600.0
    budget.check(write=False)  # reads keep half of the reserve

    budget.retry_after_s = 0.0  # the pause has passed: one call goes out to read the usage
    budget.check(write=True)
    budget.retry_after_s = 3600.0
    with pytest.raises(RateLimitedError):
        budget.check(write=True)  # only one probe per pause, not one per thread
    budget.observe("api-usage=10/1000")  # the probe's answer: the window slid, budget back
    budget.check(write=True)
