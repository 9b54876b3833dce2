"""Fault injection for the Chronopost sandbox: latency, timeouts, HTTP errors, broken answers.

Decisions come from one seeded random generator, so a run is repeatable. It decides only; it
must never sleep or answer itself (the app does, asynchronously, so other requests go on).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

FaultKind = Literal[
    "timeout",
    "http_500",
    "http_503",
    "soap_fault",
    "malformed",
    "system_error",
    "extra_element",
    "business_error",
]
FAULT_KINDS: tuple[str, ...] = (
    "timeout",
    "http_500",
    "http_503",
    "soap_fault",
    "malformed",
    "system_error",
    "extra_element",
    "business_error",
)


class FaultConfigError(ValueError):
    """A fault setting that makes no sense (unknown kind, share outside 0..1, negative time)."""


@dataclass(frozen=True)
class Faults:
    """What to do to SOAP requests. Admin (`/_sandbox/…`) and `?wsdl` requests are never touched.

    latency_ms + a uniform random 0..jitter_ms is added to every SOAP answer. A share `rate` of
    the requests (restricted to `operations` when given) suffers `kind`:
    timeout (no answer for `hang_seconds`), http_500 / http_503 (empty error page), soap_fault
    (a SOAP 1.1 server fault), malformed (a truncated XML body with HTTP 200), system_error
    (the service's system error in the body: 1 "System Error", 700 for the relay search),
    extra_element (the real answer with one element no WSDL knows, first in `<return>`: a
    service that grew a field),
    business_error (the in-body error `error_code` / `error_message`, HTTP 200: any documented
    code of error_codes.csv, e.g. relay 601 or 700, shipping 30). `mix` adds several kinds at
    once, each with its own share of the requests, e.g. ((timeout, 0.2), (http_500, 0.05)).

    withhold_reserved_label: a shipping answer made with withReservation 1 or 2 carries an
    empty `pdfEtiquette` (the reservationNumber and skybill numbers as usual); the label is only
    in getReservedSkybill(WithTypeAndMode). Whether Chronopost sends the label inline with 1 is
    not documented (docs/sandbox-chronopost.md): this plays the other reading. Not a share of
    requests: every reserved answer while it is on.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    kind: FaultKind | None = None
    rate: float = 1.0
    operations: tuple[str, ...] = ()
    hang_seconds: float = 30.0
    seed: int = 0
    mix: tuple[tuple[FaultKind, float], ...] = ()
    error_code: int = 1
    error_message: str = "System Error"
    withhold_reserved_label: bool = False

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in FAULT_KINDS:
            raise FaultConfigError(f"unknown fault kind {self.kind!r}; one of {FAULT_KINDS}")
        for kind, share in self.mix:
            if kind not in FAULT_KINDS:
                raise FaultConfigError(f"unknown fault kind {kind!r} in mix; one of {FAULT_KINDS}")
            if not 0.0 <= share <= 1.0:
                raise FaultConfigError("a mix share is a share of requests, between 0 and 1")
        if sum(share for _, share in self.mix) > 1.0:
            raise FaultConfigError("the mix shares add up to more than all requests")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultConfigError("rate is a share of requests, between 0 and 1")
        if min(self.latency_ms, self.jitter_ms, self.hang_seconds) < 0:
            raise FaultConfigError("times must not be negative")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultConfigError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(data)
        if "operations" in values:
            values["operations"] = tuple(values["operations"] or ())
        if "mix" in values:
            values["mix"] = tuple((str(k), float(v)) for k, v in values["mix"] or ())
        try:
            return cls(**values)
        except TypeError as exc:
            raise FaultConfigError(str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["operations"] = list(self.operations)
        data["mix"] = [list(pair) for pair in self.mix]
        return data


@dataclass(frozen=True)
class Decision:
    delay_s: float
    kind: FaultKind | None


@dataclass
class FaultInjector:
    faults: Faults = field(default_factory=Faults)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def update(self, **changes: Any) -> Faults:
        self.configure(replace(self.faults, **changes))
        return self.faults

    def decide(self, operation: str) -> Decision:
        f = self.faults
        with self._lock:
            # Always draw both numbers so one setting does not shift the other's sequence.
            jitter = self._rng.random()
            draw = self._rng.random()
        delay = (f.latency_ms + f.jitter_ms * jitter) / 1000.0
        chosen = not f.operations or operation in f.operations
        if chosen and f.mix and f.kind is None:
            for kind, share in f.mix:
                if draw < share:
                    return Decision(delay, kind)
                draw -= share
            return Decision(delay, None)
        applies = f.kind is not None and chosen
        return Decision(delay, f.kind if applies and draw < f.rate else None)
