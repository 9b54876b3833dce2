"""What every sandbox operation gets: the store, the clock, the accounts, number generators.

Operations raise BusinessError for Chronopost's in-body error codes; they must never raise it
for malformed requests (those are SOAP faults, decided before an operation runs).
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chronoforce.sandbox.chronopost.clock import SandboxClock
from chronoforce.sandbox.chronopost.store import Store

PARIS = ZoneInfo("Europe/Paris")
# S10 (UPU) check-digit weights: Chronopost's skybill numbers carry it (XP696982485FR -> 5).
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
# Odd and not a multiple of 5, hence coprime to 10**k: n -> n * M + offset is a bijection.
_SERIAL_STEP = 61_803_399
_RESERVATION_STEP = 6_180_339_887_498_949


class BusinessError(Exception):
    """An error Chronopost reports in the response body: errorCode / errorMessage."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message

    @classmethod
    def of(cls, pair: tuple[int, str]) -> BusinessError:
        return cls(*pair)


def s10_check_digit(serial: str) -> int:
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


@dataclass
class Context:
    store: Store
    clock: SandboxClock
    accounts: Mapping[str, str]
    seed: int = 0
    # Cancelling opens this long after a label ([D] §2.6.4: about 10 minutes; tables.py).
    cancel_window: timedelta = timedelta(minutes=10)
    # Bookings one Precise slot takes before it is full (error 10; sandbox choice, issue 23).
    slot_quota: int = 3
    # The fault knob `withhold_reserved_label` (faults.py), read at each shipping answer.
    withhold_reserved_label: Callable[[], bool] = lambda: False
    _offsets: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self._offsets = (rng.randrange(10**8), rng.randrange(10**16))

    def authenticate(self, account: str | None, password: str | None) -> str | None:
        """The account number when the pair is known, else None (compared in constant time)."""
        expected = self.accounts.get((account or "").strip())
        if expected is None or not hmac.compare_digest(expected, password or ""):
            return None
        return (account or "").strip()

    def skybill_numbers(self, prefix: str, count: int) -> list[str]:
        first = self.store.next_counter("skybill", count)
        numbers = []
        for n in range(first, first + count):
            serial = f"{(self._offsets[0] + n * _SERIAL_STEP) % 10**8:08d}"
            numbers.append(f"{prefix}{serial}{s10_check_digit(serial)}FR")
        return numbers

    def reservation_number(self) -> str:
        n = self.store.next_counter("reservation")
        return f"{(self._offsets[1] + n * _RESERVATION_STEP) % 10**16:016d}"

    def local(self, timestamp: float) -> datetime:
        """A sandbox timestamp as Paris time, as Chronopost prints event dates."""
        return datetime.fromtimestamp(timestamp, PARIS)
