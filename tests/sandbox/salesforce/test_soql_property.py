"""SOQL against a straightforward Python filter: random records, random WHERE trees from the
supported grammar, the same answer."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.salesforce.soql import SoqlError

TEXT = st.text(alphabet="aAb'_", min_size=0, max_size=3)
TIMES = [dt.datetime(2024, 5, d, h, tzinfo=dt.UTC) for d in (1, 2) for h in (0, 9, 23)]
STATUSES = ["pending", "in_transit", "delivered"]

# field -> (strategy of stored values, kind)
FIELDS: dict[str, tuple[Any, str]] = {
    "Chronopost_Last_Event_Code__c": (st.one_of(st.none(), TEXT), "text"),
    "Chronopost_Status__c": (st.one_of(st.none(), st.sampled_from(STATUSES)), "text"),
    "Chronopost_Weight_Kg__c": (
        st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.25, 10.0])),
        "number",
    ),
    "Chronopost_Ship__c": (st.booleans(), "bool"),
    "Chronopost_Last_Event_Time__c": (st.one_of(st.none(), st.sampled_from(TIMES)), "datetime"),
    "Account.Name": (st.sampled_from(["Alpha", "beta", "ALPHA"]), "text"),
}


@dataclass(frozen=True)
class Leaf:
    field: str
    op: str
    value: Any  # a scalar, a list (IN), or None


def _soql_value(value: Any, kind: str) -> str:
    if value is None:
        return "null"
    if kind == "text":
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "datetime":
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return repr(value)


def _norm(value: Any, kind: str) -> Any:
    if value is None or value == "":  # Salesforce stores empty text as null
        return None
    if kind == "text":
        return str(value).lower()  # SOQL compares text case-insensitively
    if kind == "datetime":
        return value.timestamp()
    return value


@st.composite
def leaves(draw: Any) -> Leaf:
    field = draw(st.sampled_from(sorted(FIELDS)))
    values, kind = FIELDS[field]
    ops = ["=", "!="] if kind == "bool" else ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"]
    if kind == "text":
        ops.append("LIKE")
    op = draw(st.sampled_from(ops))
    if op in ("IN", "NOT IN"):
        return Leaf(field, op, draw(st.lists(values, min_size=1, max_size=3)))
    if op == "LIKE":
        return Leaf(field, op, draw(st.text(alphabet="aAb%_", min_size=1, max_size=3)))
    value = draw(values)
    if value in (None, "") and op not in ("=", "!="):  # only = and != take null
        op = "="
    return Leaf(field, op, value)


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.tuples(st.just("AND"), inner, inner),
        st.tuples(st.just("OR"), inner, inner),
        st.tuples(st.just("NOT"), inner),
    ),
    max_leaves=5,
)


def to_soql(node: Any) -> str:
    if isinstance(node, Leaf):
        kind = FIELDS[node.field][1]
        if node.op in ("IN", "NOT IN"):
            values = ", ".join(_soql_value(v, kind) for v in node.value)
            return f"{node.field} {node.op} ({values})"
        if node.op == "LIKE":
            return f"{node.field} LIKE '{node.value}'"
        return f"{node.field} {node.op} {_soql_value(node.value, kind)}"
    if node[0] == "NOT":
        return f"(NOT {to_soql(node[1])})"
    return f"({to_soql(node[1])} {node[0]} {to_soql(node[2])})"


def matches(node: Any, record: dict[str, Any]) -> bool:
    """The reference semantics: nulls never compare, except `= null`, `!=` and NOT IN."""
    if not isinstance(node, Leaf):
        if node[0] == "NOT":
            return not matches(node[1], record)
        left, right = matches(node[1], record), matches(node[2], record)
        return left and right if node[0] == "AND" else left or right
    kind = FIELDS[node.field][1]
    value = _norm(record[node.field], kind)
    if node.op in ("IN", "NOT IN"):
        wanted = [_norm(v, kind) for v in node.value]
        inside = value in wanted if value is not None else None in wanted
        return inside if node.op == "IN" else not inside
    if node.op == "LIKE":
        pattern = "".join(
            ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in node.value
        )
        return (
            value is not None
            and re.fullmatch(pattern, value, re.IGNORECASE | re.DOTALL) is not None
        )
    literal = _norm(node.value, kind)
    if node.op == "=":
        return value == literal
    if node.op == "!=":
        return value != literal
    if value is None:
        return False
    return {
        "<": value < literal,
        "<=": value <= literal,
        ">": value > literal,
        ">=": value >= literal,
    }[node.op]


records_strategy = st.lists(
    st.fixed_dictionaries({name: values for name, (values, _) in FIELDS.items()}),
    min_size=0,
    max_size=12,
)


@pytest.fixture(scope="module")
def sandbox() -> SalesforceSandbox:
    return SalesforceSandbox()


def _load(sb: SalesforceSandbox, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    sb.reset()
    accounts = {
        name: sb.org.create("Account", {"Name": name}) for name in ("Alpha", "beta", "ALPHA")
    }
    by_id = {}
    for record in records:
        body = {k: v for k, v in record.items() if "." not in k}
        time = body.get("Chronopost_Last_Event_Time__c")
        body["Chronopost_Last_Event_Time__c"] = time.isoformat() if time else None
        body.update(AccountId=accounts[record["Account.Name"]], EffectiveDate="2024-05-01")
        by_id[sb.org.create("Order", body)] = record
    return by_id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=records_strategy, condition=conditions)
def test_where_clause_matches_python_filter(
    sandbox: SalesforceSandbox, records: list[dict[str, Any]], condition: Any
) -> None:
    by_id = _load(sandbox, records)
    soql = f"SELECT Id FROM Order WHERE {to_soql(condition)}"
    result = sandbox.org.query(soql, include_deleted=False)
    got = {r["Id"] for r in result["records"]}
    expected = {record_id for record_id, record in by_id.items() if matches(condition, record)}
    assert got == expected, soql
    assert result["totalSize"] == len(expected)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=records_strategy,
    descending=st.booleans(),
    limit=st.integers(1, 5),
    offset=st.integers(0, 3),
)
def test_order_by_limit_offset_match_python_sort(
    sandbox: SalesforceSandbox,
    records: list[dict[str, Any]],
    descending: bool,
    limit: int,
    offset: int,
) -> None:
    by_id = _load(sandbox, records)
    direction = "DESC" if descending else "ASC"
    soql = (
        f"SELECT Id, Chronopost_Weight_Kg__c FROM Order ORDER BY Chronopost_Weight_Kg__c {direction} "
        f"LIMIT {limit} OFFSET {offset}"
    )
    got = [r["Chronopost_Weight_Kg__c"] for r in sandbox.org.query(soql, False)["records"]]
    weights = [r["Chronopost_Weight_Kg__c"] for r in by_id.values()]
    # SOQL: ASC puts nulls first, DESC puts them last.
    present = sorted((w for w in weights if w is not None), reverse=descending)
    nulls = [None] * weights.count(None)
    ordered = nulls + present if not descending else present + nulls
    assert got == ordered[offset : offset + limit]


def test_date_literals_follow_the_sandbox_clock(sandbox: SalesforceSandbox) -> None:
    sandbox.reset()
    account = sandbox.org.create("Account", {"Name": "A"})
    today = sandbox.now().date()
    for days in (0, 1, 5):
        sandbox.org.create(
            "Order",
            {"AccountId": account, "EffectiveDate": (today - dt.timedelta(days=days)).isoformat()},
        )

    def count(where: str) -> int:
        return int(
            sandbox.org.query(f"SELECT COUNT() FROM Order WHERE {where}", False)["totalSize"]
        )

    assert count("EffectiveDate = TODAY") == 1
    assert count("EffectiveDate = YESTERDAY") == 1
    assert count("EffectiveDate = LAST_N_DAYS:2") == 2
    assert count("EffectiveDate < LAST_N_DAYS:2") == 1
    assert count("CreatedDate = TODAY") == 3


def test_parent_fields_are_nested_and_null_parents_are_null(sandbox: SalesforceSandbox) -> None:
    sandbox.reset()
    account = sandbox.org.create("Account", {"Name": "Chez Paul"})
    order = sandbox.org.create("Order", {"AccountId": account, "EffectiveDate": "2024-05-01"})
    [record] = sandbox.org.query("SELECT Account.Name, ShipToContact.Phone FROM Order", False)[
        "records"
    ]
    assert record["Account"]["Name"] == "Chez Paul"
    assert record["Account"]["attributes"]["url"].endswith(account)
    assert record["ShipToContact"] is None
    assert record["attributes"]["url"].endswith(order)


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Order WHERE", "MALFORMED_QUERY"),
        ("SELECT Id Order", "MALFORMED_QUERY"),
        ("SELECT Id FROM Parcel__c", "INVALID_TYPE"),
        ("SELECT Nope FROM Order", "INVALID_FIELD"),
        ("SELECT Account.Nope FROM Order", "INVALID_FIELD"),
        ("SELECT Id FROM Order WHERE Chronopost_Ship__c = 'yes'", "INVALID_FIELD"),
        ("SELECT Id FROM Order WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_bad_queries_raise_salesforce_error_codes(
    sandbox: SalesforceSandbox, soql: str, code: str
) -> None:
    with pytest.raises(SoqlError) as failure:
        sandbox.org.query(soql, False)
    assert failure.value.error_code == code
