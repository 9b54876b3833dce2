"""Shipment states (domain/shipment_state.py): one enum, one transition table, used everywhere.

The table names every state; every move the code makes is in it, and nothing else is; a move
outside it is refused with a typed error; and no bare state string comes back into src/ (the
scan below, shown to catch each kind of literal it looks for).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chronoforce.domain.errors import ConflictError, IllegalTransitionError
from chronoforce.domain.shipment_state import (
    CANCELLABLE,
    DUE,
    FRESH,
    TRANSITIONS,
    WORKABLE,
    LabelOutcome,
    ShipmentState,
    allowed,
    check_transition,
    check_transitions,
)

S = ShipmentState
SRC = Path(__file__).resolve().parents[2] / "src" / "chronoforce"

# Every move the code makes (from, to, where), read from the code; the table must hold exactly
# these. Staying put (calling → calling on a recovery, an unchanged row) is no move.
PERFORMED = [
    (S.PENDING, S.CALLING, "labels._MARK (taking a fresh shipment)"),
    (S.RETRY, S.CALLING, "labels._MARK (taking a fresh shipment)"),
    (S.CHANGED, S.CALLING, "labels._MARK (held: the changed order's new label)"),
    (S.CALLING, S.LABELED, "labels._LABELED"),
    (S.CALLING, S.PENDING, "labels._unmark (no call went out)"),
    (S.CALLING, S.RETRY, "labels._unmark (no call went out)"),
    (S.CALLING, S.CHANGED, "labels._unmark (no call went out)"),
    (S.CALLING, S.EXCEPTION, "labels._fail (refused after the call)"),
    (S.PENDING, S.EXCEPTION, "labels._fail / labels._retry (tries spent)"),
    (S.RETRY, S.EXCEPTION, "labels._fail / labels._retry (tries spent)"),
    (S.CHANGED, S.EXCEPTION, "labels._fail / labels._retry (tries spent)"),
    (S.PENDING, S.RETRY, "labels._retry"),
    (S.CHANGED, S.RETRY, "labels._retry"),
    (S.LABELED, S.CHANGED, "labels._notice_change (changed before pickup)"),
    (S.RETRY, S.PENDING, "exceptions.retry"),
    (S.EXCEPTION, S.PENDING, "exceptions.retry / exceptions.rerequested"),
    (S.EXCEPTION, S.RETRY, "returns._record / pickups.book (asked again)"),
    (S.CANCELLED, S.RETRY, "returns._record (a return asked again)"),
    *((old, S.CANCELLED, "cancel._settle") for old in CANCELLABLE),
]


def test_the_table_covers_every_state_and_only_states() -> None:
    assert set(TRANSITIONS) == set(ShipmentState)
    for old, targets in TRANSITIONS.items():
        assert targets <= set(ShipmentState)
        assert old not in targets, "staying put is no transition"
    # The named sets are states too, and what they say.
    assert set(FRESH) < set(WORKABLE) and set(DUE) < set(WORKABLE)
    assert S.CALLING not in CANCELLABLE and S.CALLING not in DUE


def test_the_table_holds_exactly_the_moves_the_code_makes() -> None:
    edges = {(old, new) for old, targets in TRANSITIONS.items() for new in targets}
    performed = {(old, new) for old, new, _ in PERFORMED}
    assert performed - edges == set(), "a move the code makes is missing from the table"
    assert edges - performed == set(), "the table allows a move no code makes"


def test_a_move_outside_the_table_is_refused_with_a_typed_error() -> None:
    assert check_transition("pending", "calling") is S.CALLING
    assert check_transition("labeled", "labeled") is S.LABELED  # staying put
    with pytest.raises(IllegalTransitionError) as refused:
        check_transition(S.LABELED, S.CALLING, record_id="801000000000001")
    assert isinstance(refused.value, ConflictError)  # web/ answers 409
    assert refused.value.code == "ILLEGAL_TRANSITION" and refused.value.field == "state"
    assert refused.value.record_id == "801000000000001"
    with pytest.raises(IllegalTransitionError):
        check_transition("shipped", "labeled")  # no such state
    with pytest.raises(IllegalTransitionError):
        check_transitions(WORKABLE, S.LABELED)  # only `calling` becomes labeled
    assert not allowed(S.CANCELLED, S.LABELED)


def test_the_enum_keeps_the_strings_the_database_holds() -> None:
    assert [s.value for s in ShipmentState] == [
        "pending", "retry", "calling", "changed", "labeled", "exception", "cancelled",
    ]  # fmt: skip
    assert S.LABELED == "labeled" and f"{LabelOutcome.DEFERRED}" == "deferred"
    assert {o.value for o in LabelOutcome} == {
        "labeled", "exception", "retry", "deferred", "released", "skipped", "verified",
    }  # fmt: skip


# --- no bare state literal in src/ ---------------------------------------------------------

STATES = {s.value for s in ShipmentState}
# `pending` is also the outbox's and the webhook inbox's state: bare only where the code says
# it is a shipment's (Shipment.state, shipment.state).
SHIPMENT_ONLY = STATES - {"pending"}
OUTCOMES = {o.value for o in LabelOutcome}
SET_NAMES = ("STATES", "WORKABLE", "FRESH", "DUE", "CANCELLABLE", "LATER")


def _strings(node: ast.AST | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [v for e in node.elts for v in _strings(e)]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _state_attr(node: ast.AST) -> str | None:
    """`X.state`: the name of X ("" when X is no plain name); None when not `.state`."""
    if isinstance(node, ast.Attribute) and node.attr == "state":
        return node.value.id if isinstance(node.value, ast.Name) else ""
    return None


def _bare(values: list[str], base: str | None) -> list[str]:
    vocabulary = STATES if base in ("Shipment", "shipment") else SHIPMENT_ONLY
    return [v for v in values if v in vocabulary]


def bare_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) of each shipment state or label outcome written as a bare string."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        hits: list[str] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                base = _state_attr(operand)
                if base is not None:
                    others = [o for o in operands if o is not operand]
                    hits += _bare([v for o in others for v in _strings(o)], base)
                if isinstance(operand, ast.Name) and operand.id == "outcome":
                    others = [o for o in operands if o is not operand]
                    hits += [v for o in others for v in _strings(o) if v in OUTCOMES]
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (
                    list(zip(target.elts, node.value.elts, strict=False))
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    else [(target, node.value)]
                )
                for one, value in pairs:
                    base = _state_attr(one)
                    if base is not None:
                        hits += _bare(_strings(value), base)
                    if isinstance(one, ast.Name) and one.id.endswith(SET_NAMES):
                        hits += [v for v in _strings(value) if v in STATES | OUTCOMES]
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "state":
                    hits += _bare(_strings(keyword.value), None)
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "in_":
                base = _state_attr(func.value)
                if base is not None:
                    hits += _bare([v for a in node.args for v in _strings(a)], base)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "state":
                    hits += _bare(_strings(value), None)
        elif isinstance(node, ast.Return):
            hits += [v for v in _strings(node.value) if v in OUTCOMES]
        found += [(getattr(node, "lineno", 0), hit) for hit in hits]
    return found


def _scanned() -> list[Path]:
    skipped = ("sandbox", "migrations")
    return [
        path
        for path in sorted(SRC.rglob("*.py"))
        if not any(part in skipped for part in path.relative_to(SRC).parts)
        and path != SRC / "domain" / "shipment_state.py"
    ]


def test_no_bare_state_literal_in_src() -> None:
    files = _scanned()
    assert len(files) > 100 and SRC / "pipeline" / "labels.py" in files
    leaks = [
        f"{path.relative_to(SRC)}:{line}: {literal!r}"
        for path in files
        for line, literal in bare_literals(path.read_text(encoding="utf-8"))
    ]
    assert leaks == [], "use domain/shipment_state.py's members: " + "; ".join(leaks)


@pytest.mark.parametrize(
    "snippet",
    [
        'done = shipment.state == "labeled"',
        'busy = row.state in ("calling", "changed")',
        'fresh = Shipment.state != "pending"',
        'row.state = "retry"',
        'row.state, row.status = "exception", status',
        'update(Shipment).values(state="calling")',
        'rows = [{"state": "cancelled"}]',
        'q = select(Shipment).where(Shipment.state.in_(("pending", "retry")))',
        'WORKABLE = ("pending", "retry")',
        'later = outcome in ("retry", "deferred")',
        'def f():\n    return "skipped"',
    ],
)
def test_the_scan_finds_each_kind_of_bare_literal(snippet: str) -> None:
    assert bare_literals(snippet), snippet


def test_the_scan_leaves_other_vocabularies_alone() -> None:
    other = (
        'a = Outbox.state == "pending"\n'
        'row.state = "resolved"\n'
        'b = {"state": "pending", "kind": "labeled"}\n'
        'c = row.status == "exception"\n'
    )
    assert bare_literals(other) == []
