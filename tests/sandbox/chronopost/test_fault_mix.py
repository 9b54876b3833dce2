"""Several fault kinds at once (`Faults.mix`): each gets its share of requests, repeatably."""

from __future__ import annotations

from collections import Counter

import pytest

from chronoforce.sandbox.chronopost.faults import FaultConfigError, FaultInjector, Faults


def test_each_kind_of_the_mix_gets_its_share() -> None:
    injector = FaultInjector()
    injector.configure(Faults(mix=(("timeout", 0.2), ("http_500", 0.05)), seed=4))
    kinds = Counter(injector.decide("shippingMultiParcelV5").kind for _ in range(4000))
    assert 0.17 < kinds["timeout"] / 4000 < 0.23
    assert 0.03 < kinds["http_500"] / 4000 < 0.07
    assert set(kinds) == {None, "timeout", "http_500"}


def test_a_mix_round_trips_through_json_and_refuses_nonsense() -> None:
    faults = Faults.from_json({"mix": [["timeout", 0.2], ["http_503", 0.1]]})
    assert Faults.from_json(faults.to_json()) == faults
    with pytest.raises(FaultConfigError, match="more than all"):
        Faults(mix=(("timeout", 0.7), ("http_500", 0.5)))
    with pytest.raises(FaultConfigError, match="unknown fault kind"):
        Faults.from_json({"mix": [["meteor", 0.1]]})
