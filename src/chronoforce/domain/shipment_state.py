"""The shipment row's `state` (store/models.py `Shipment.state`) and the moves between states.

A `StrEnum`: each member *is* the string the database holds, so rows written before and after
this module read the same. The state says where the label work stands; the carrier-facing
`status` (domain/models.py `ShipmentStatus`) is another column and another vocabulary.

The moves are the table `TRANSITIONS` below, each with the code that makes it. In short: a
recorded shipment (`pending`) is marked `calling` before the carrier call, then `labeled`; a
failed try is `retry`, a refusal or spent tries `exception`; a labeled order that changes before
pickup is `changed` (its label voided, a new one made); any but `calling` can be `cancelled`.

`check_transition(old, new)` is called where the code picks a new state (pipeline/labels.py,
cancel.py, returns.py, pickups.py, exceptions.py); an SQL UPDATE that moves rows checks its
from-states against the table once, where the statement is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from chronoforce.domain.errors import IllegalTransitionError


class ShipmentState(StrEnum):
    PENDING = "pending"  # recorded (or asked again): no label, nothing sent yet
    RETRY = "retry"  # a try failed with nothing at the carrier: next_attempt_at says when
    CALLING = "calling"  # written before the carrier call: its outcome is unknown until known
    CHANGED = "changed"  # labeled, then the order changed before pickup: cancel, label again
    LABELED = "labeled"  # one live label (its parcels are the `parcel` rows marked live)
    EXCEPTION = "exception"  # a permanent refusal, or tries ran out: waits for a person
    CANCELLED = "cancelled"  # the label was voided at Chronopost (pipeline/cancel.py)


class LabelOutcome(StrEnum):
    """What `LabelPipeline.process` (and `verify`) answers for one shipment."""

    LABELED = "labeled"
    EXCEPTION = "exception"
    RETRY = "retry"
    DEFERRED = "deferred"  # the breaker is open: no call made, no attempt spent
    RELEASED = "released"  # shutting down: let go before any call
    SKIPPED = "skipped"  # not workable now (another worker holds it, or nothing to do)
    VERIFIED = "verified"  # `verify`: no other live label under our reference


S = ShipmentState

# States a label worker takes (the queue's and the sweeper's); FRESH: nothing at the carrier.
WORKABLE: tuple[ShipmentState, ...] = (S.PENDING, S.RETRY, S.CALLING, S.CHANGED)
FRESH: tuple[ShipmentState, ...] = (S.PENDING, S.RETRY)
# Due for a label (metrics and the console's queue): workable and not in a call.
DUE: tuple[ShipmentState, ...] = (S.PENDING, S.RETRY, S.CHANGED)
# A label that may be voided: not while a call is in flight (`calling`).
CANCELLABLE: tuple[ShipmentState, ...] = (S.PENDING, S.RETRY, S.LABELED, S.EXCEPTION, S.CHANGED)

# from → the states it may move to (staying put is no transition, always allowed).
TRANSITIONS: Mapping[ShipmentState, frozenset[ShipmentState]] = MappingProxyType(
    {
        # taken for a call; a failed try; refused for good; voided before any label
        S.PENDING: frozenset({S.CALLING, S.RETRY, S.EXCEPTION, S.CANCELLED}),
        # taken again; asked again by a person (exceptions.retry); as pending otherwise
        S.RETRY: frozenset({S.CALLING, S.PENDING, S.EXCEPTION, S.CANCELLED}),
        # the label stored; refused for good; or, with no call made after all (busy gates),
        # back to the state it was marked from
        S.CALLING: frozenset({S.LABELED, S.EXCEPTION, S.PENDING, S.RETRY, S.CHANGED}),
        # the old label cancelled, a new call; its cancel or preparation failed
        S.CHANGED: frozenset({S.CALLING, S.RETRY, S.EXCEPTION, S.CANCELLED}),
        # the order changed before pickup; voided
        S.LABELED: frozenset({S.CHANGED, S.CANCELLED}),
        # asked again (a retry, a new version, a return or pickup asked again); voided
        S.EXCEPTION: frozenset({S.PENDING, S.RETRY, S.CANCELLED}),
        # a return label asked again after its cancel
        S.CANCELLED: frozenset({S.RETRY}),
    }
)


def allowed(old: str, new: str) -> bool:
    """Whether the table lets a shipment in `old` move to `new` (staying put always may)."""
    old_state, new_state = ShipmentState(old), ShipmentState(new)
    return old_state == new_state or new_state in TRANSITIONS[old_state]


def check_transition(old: str, new: str, *, record_id: str = "") -> ShipmentState:
    """`new` as a ShipmentState once the table allows `old` → `new`; else IllegalTransitionError
    naming the record (an unknown state is refused the same way)."""
    try:
        ok = allowed(old, new)
    except ValueError:
        ok = False
    if not ok:
        raise IllegalTransitionError(
            f"a shipment cannot move from state {old!r} to {new!r}",
            field="state",
            record_id=record_id,
        )
    return ShipmentState(new)


def check_transitions(olds: Iterable[str], new: str) -> ShipmentState:
    """`check_transition` for every state an UPDATE may move from (checked where it is built)."""
    for old in olds:
        check_transition(old, new)
    return ShipmentState(new)
