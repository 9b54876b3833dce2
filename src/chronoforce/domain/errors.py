"""Every failure chronoforce knows, as one hierarchy: permanent vs transient at the root.

    ChronoforceError
    ├── PermanentError                 same input cannot succeed: exception row
    │   ├── AddressError               the address cannot be sent as is (codes from address.py)
    │   ├── MappingError               a Salesforce record lacks a field or holds a bad value
    │   ├── RoutingError               no Chronopost product fits the shipment
    │   ├── CarrierValidationError     Chronopost refused the request (errorCode in the body)
    │   │   └── CarrierRefusedError    a business rule said no (route, date, product)
    │   │       └── CancelConflictError  the parcel is taken over: too late to cancel (409)
    │   ├── CarrierAccountError        Chronopost refused our credentials or account
    │   ├── CarrierAnswerError         an answer we cannot read (kept whole for review)
    │   └── SalesforceValidationError  a Salesforce write was refused (validation rule, bad value)
    └── TransientError                 may succeed later: retried, then exception
        ├── CarrierUnavailableError    timeout, connection, 5xx, SOAP fault, bad XML
        │   ├── CarrierTimeoutError
        │   └── CircuitOpenError       not called at all: the carrier's breaker is open
        ├── CancelTooEarlyError        cancelling opens ~10 min after the label: retry then
        ├── SalesforceUnavailableError HTTP 5xx, UNABLE_TO_LOCK_ROW, connection error
        ├── SessionExpiredError        INVALID_SESSION_ID: re-authenticate, then retry
        └── RateLimitedError           REQUEST_LIMIT_EXCEEDED or our own API reserve reached
    RefusedError                       a use case refused the request as asked: nothing was sent
    ├── NotFoundError                  no such order, shipment or Case
    └── ConflictError                  the state forbids it now (being made, past pickup)
        └── LabelVoidedError           the label was cancelled: it cannot be re-printed

Each error names the Salesforce record and field it concerns when known, and carries the request
and response payloads of the call that failed — already redacted by the adapter that raised it.
`RETRY_POLICY` says how each transient class is retried (exponential backoff with jitter).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, ClassVar


class ChronoforceError(Exception):
    """Base of every error chronoforce raises on purpose."""

    default_code: ClassVar[str] = "ERROR"
    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        record_id: str = "",
        field: str = "",
        operation: str = "",
        request_payload: str = "",
        response_payload: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.record_id = record_id
        self.field = field
        self.operation = operation
        self.request_payload = request_payload
        self.response_payload = response_payload

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"record {self.record_id}" if self.record_id else "",
                f"field {self.field}" if self.field else "",
            )
            if part
        )
        return f"{self.code}: {self.message}" + (f" ({where})" if where else "")

    def with_context(self, *, record_id: str = "", operation: str = "") -> ChronoforceError:
        """Attach the Salesforce record / operation once the caller knows them."""
        self.record_id = self.record_id or record_id
        self.operation = self.operation or operation
        return self


class PermanentError(ChronoforceError):
    """Retrying the same input cannot succeed: a person must look at it."""


class TransientError(ChronoforceError):
    """The same call may succeed later."""

    transient = True
    retry_after: float | None = None


class AddressError(PermanentError):
    default_code = "ADDRESS_INVALID"


class MappingError(PermanentError):
    default_code = "MAPPING_INVALID"


class RoutingError(PermanentError):
    default_code = "NO_PRODUCT"


class CarrierValidationError(PermanentError):
    default_code = "CARRIER_VALIDATION"


class CarrierAccountError(PermanentError):
    default_code = "CARRIER_ACCOUNT"


class SalesforceValidationError(PermanentError):
    default_code = "SALESFORCE_VALIDATION"


class CarrierUnavailableError(TransientError):
    default_code = "CARRIER_UNAVAILABLE"


class CarrierTimeoutError(CarrierUnavailableError):
    default_code = "CARRIER_TIMEOUT"


class CircuitOpenError(CarrierUnavailableError):
    """Refused locally while the breaker is open: no call was made, so no attempt is spent."""

    default_code = "CIRCUIT_OPEN"


class SalesforceUnavailableError(TransientError):
    default_code = "SALESFORCE_UNAVAILABLE"


class SessionExpiredError(TransientError):
    default_code = "INVALID_SESSION_ID"


class RateLimitedError(TransientError):
    default_code = "REQUEST_LIMIT_EXCEEDED"


class RefusedError(ChronoforceError):
    """A use case refused what was asked before calling anyone: nothing changed anywhere.
    Neither permanent nor transient: the asker reads the reason and decides."""

    default_code = "REFUSED"


class NotFoundError(RefusedError):
    default_code = "NOT_FOUND"


class ConflictError(RefusedError):
    """The shipment's state forbids it now: being made by a worker, or past pickup."""

    default_code = "CONFLICT"


class LabelVoidedError(ConflictError):
    """A re-print was asked for a cancelled (voided) label: printing it would ship a parcel
    Chronopost no longer expects (issue 21 item 5). The web says 409."""

    default_code = "LABEL_VOIDED"


# --- Chronopost answers and the cancel window (chronopost/codes.py decides which) --------------


class CarrierRefusedError(CarrierValidationError):
    """A documented business rule refused the request (no routing, closed date, no price).

    A CarrierValidationError so every existing handler keeps working; the message is
    Chronopost's own, which says what to change.
    """

    default_code = "CARRIER_REFUSED"


class CancelConflictError(CarrierRefusedError):
    """Chronopost has taken the parcel over: it can no longer be cancelled (the web says 409)."""

    default_code = "CANCEL_TAKEN_OVER"


class CarrierAnswerError(PermanentError):
    """Chronopost answered, but not in a shape we can read: failed once, the payload kept.

    Never transient: the same answer would come back on every retry. For a label call, the
    pipeline's recovery lookup (by our reference) finds what the call may have created.
    """

    default_code = "CARRIER_BAD_ANSWER"


class CancelTooEarlyError(TransientError):
    """Cancelling opens about ten minutes after the label is made ([D] §2.6.4): retry then.

    `opens_at` is when to try again; `retry_after` says the same in seconds from `now`.
    """

    default_code = "CANCEL_TOO_EARLY"

    def __init__(
        self, message: str, *, opens_at: dt.datetime, now: dt.datetime, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.opens_at = opens_at
        self.retry_after = max(1.0, (opens_at - now).total_seconds())


# --- Chrono Precise slots (issue 23; error_codes.csv service "slots") ---------------------------


class SlotError(CarrierRefusedError):
    """The Creneau service refused a slot search or booking: the message says why."""

    default_code = "SLOT_REFUSED"


class NoSlotError(SlotError):
    """No open slot for this address and window (error 71), or none of the asked ones."""

    default_code = "SLOT_NONE"


class SlotTakenError(SlotError):
    """The slot is full or closed now (errors 10, 11, 44): choose another."""

    default_code = "SLOT_TAKEN"


class OutOfZoneError(SlotError):
    """Chrono Precise does not serve this address (error 84 route not covered, 51 tile)."""

    default_code = "SLOT_OUT_OF_ZONE"


class SlotExpiredError(SlotError):
    """The search's transaction expired (error 21) or the date passed (43): search again."""

    default_code = "SLOT_EXPIRED"


# --- retries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff of one error class: base · 2^(attempt-1), capped, then jittered."""

    base_s: float
    cap_s: float
    max_attempts: int

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after `attempts` failed tries: between half and all of the step.

        Half-jitter keeps a floor (a locked row needs *some* wait) while spreading the workers
        that failed together so they do not all come back in the same second.
        """
        step = min(self.cap_s, self.base_s * 2.0 ** max(0, attempts - 1))
        return step * (0.5 + (rng or random).random() / 2)


# Why these numbers: a timed-out label call may still have made a label, so it waits longer
# than a refused connection; a locked Salesforce row frees in seconds; REQUEST_LIMIT_EXCEEDED
# means the org's 24 h budget, so minutes, many times over.
RETRY_POLICY: dict[type[TransientError], Backoff] = {
    CarrierTimeoutError: Backoff(base_s=4.0, cap_s=600.0, max_attempts=6),
    CarrierUnavailableError: Backoff(base_s=2.0, cap_s=600.0, max_attempts=6),
    SalesforceUnavailableError: Backoff(base_s=1.0, cap_s=300.0, max_attempts=8),
    SessionExpiredError: Backoff(base_s=0.5, cap_s=30.0, max_attempts=3),
    RateLimitedError: Backoff(base_s=60.0, cap_s=3600.0, max_attempts=48),
}
DEFAULT_BACKOFF = Backoff(base_s=2.0, cap_s=600.0, max_attempts=6)


def backoff_for(error: TransientError | type[TransientError]) -> Backoff:
    """The policy of the error's own class, or of its nearest listed ancestor."""
    cls = error if isinstance(error, type) else type(error)
    for klass in cls.__mro__:
        if klass in RETRY_POLICY:
            return RETRY_POLICY[klass]
    return DEFAULT_BACKOFF


def retry_delay(error: TransientError, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds until the next try: the server's own signal (`retry_after`) wins, jittered."""
    if error.retry_after:
        return float(error.retry_after) * (1.0 + (rng or random).random() / 10)
    return backoff_for(error).delay(attempts, rng)


class IllegalTransitionError(ConflictError):
    """A shipment asked to move between two states the transition table does not link
    (domain/shipment_state.py): nothing was changed (issue 16)."""

    default_code = "ILLEGAL_TRANSITION"
