"""SOQL: a lark grammar for the subset the sandbox serves, compiled to one SQLite statement.

Supported: SELECT fields and parent paths (Account.Name), COUNT(), WHERE with = != <> < <= > >=
IN, NOT IN, LIKE, INCLUDES/EXCLUDES, AND/OR/NOT, date/datetime literals, TODAY/YESTERDAY/
TOMORROW/LAST_N_DAYS:n/NEXT_N_DAYS:n (UTC days), ORDER BY … ASC|DESC NULLS FIRST|LAST, LIMIT,
OFFSET. Values are always bound as parameters: query text never reaches SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedInput

from chronoforce.sandbox.salesforce.ids import MalformedId, to_18
from chronoforce.sandbox.salesforce.schema import Field, SObject

GRAMMAR = r"""
?start: query
query: _SELECT select_list _FROM NAME where? order? limit? offset?
select_list: select_item ("," select_item)*
?select_item: count | path
count: _COUNT "(" path? ")" NAME?
path: NAME ("." NAME)*
where: _WHERE cond
?cond: conj | cond _OR conj -> or_
?conj: neg | conj _AND neg -> and_
?neg: _NOT neg -> not_ | atom
?atom: "(" cond ")" | comparison
comparison: path OP value -> compare
    | path _IN "(" value ("," value)* ")" -> in_
    | path _NOT _IN "(" value ("," value)* ")" -> not_in
    | path _LIKE STRING -> like
    | path _INCLUDES "(" STRING ("," STRING)* ")" -> includes
    | path _EXCLUDES "(" STRING ("," STRING)* ")" -> excludes
?value: STRING -> string
    | NUMBER -> number
    | _TRUE -> true
    | _FALSE -> false
    | _NULL -> null
    | DATETIME -> datetime
    | DATE -> date
    | DATE_KEYWORD -> date_keyword
    | N_DAYS ":" INT -> n_days
order: _ORDER _BY order_item ("," order_item)*
order_item: path DIRECTION? (_NULLS NULLS_POS)?
limit: _LIMIT INT
offset: _OFFSET INT

OP: "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
DIRECTION: "ASC"i | "DESC"i
NULLS_POS: "FIRST"i | "LAST"i
DATE_KEYWORD.2: /(?i:TODAY|YESTERDAY|TOMORROW)(?![A-Za-z0-9_:])/
N_DAYS.2: /(?i:LAST_N_DAYS|NEXT_N_DAYS)(?=:)/
_SELECT: "SELECT"i
_FROM: "FROM"i
_WHERE: "WHERE"i
_COUNT: "COUNT"i
_AND: "AND"i
_OR: "OR"i
_NOT: "NOT"i
_IN: "IN"i
_LIKE: "LIKE"i
_INCLUDES: "INCLUDES"i
_EXCLUDES: "EXCLUDES"i
_TRUE: "TRUE"i
_FALSE: "FALSE"i
_NULL: "NULL"i
_ORDER: "ORDER"i
_BY: "BY"i
_NULLS: "NULLS"i
_LIMIT: "LIMIT"i
_OFFSET: "OFFSET"i
NAME: /[A-Za-z][A-Za-z0-9_]*/i
STRING: /'(\\.|[^'\\])*'/
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})/
DATE.3: /\d{4}-\d{2}-\d{2}/
NUMBER: /[+-]?\d+(\.\d+)?/
INT: /\d+/
%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)
SF_DATETIME = "%Y-%m-%dT%H:%M:%S.000+0000"


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` is Salesforce's errorCode."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _located(query: str, line: int, column: int, text: str) -> str:
    # Salesforce echoes the query with a caret under the faulty token.
    row = query.splitlines()[line - 1] if query.splitlines() else ""
    return f"\n{row}\n{' ' * (column - 1)}^\nERROR at Row:{line}:Column:{column}\n{text}"


def _unquote(token: str) -> str:
    body = token[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), body)


def parse(query: str) -> Tree[Token]:
    try:
        return _PARSER.parse(query)
    except UnexpectedCharacters as exc:
        position = exc.pos_in_stream or 0
        bad = query[position : position + 1]
        raise SoqlError(
            "MALFORMED_QUERY", _located(query, exc.line, exc.column, f"unexpected token: '{bad}'")
        ) from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        text = (
            "unexpected end of query"
            if token is None or token.type == "$END"
            else (f"unexpected token: '{token}'")
        )
        line = getattr(exc, "line", 1) if getattr(exc, "line", -1) > 0 else 1
        column = getattr(exc, "column", 1) if getattr(exc, "column", -1) > 0 else len(query)
        raise SoqlError("MALFORMED_QUERY", _located(query, line, column, text)) from None


@dataclass
class Column:
    """One selected value: where it sits in the output record and how to convert it."""

    path: tuple[str, ...]  # output keys: ("Account", "Name")
    objects: tuple[str, ...]  # sObject type at each relationship step
    field: Field


@dataclass
class Plan:
    """A compiled query: run `sql` with `params`, then page with LIMIT/OFFSET."""

    sobject: str
    select_sql: str
    from_sql: str
    order_sql: str
    params: list[Any]
    columns: list[Column]
    join_ids: list[tuple[tuple[str, ...], int]]  # (relationship path, index of the parent Id)
    limit: int | None
    offset: int
    id_index: int = 0  # where the root record's Id sits in each row
    count_only: bool = False
    aggregate_alias: str | None = None


@dataclass
class _Context:
    schema: dict[str, SObject]
    root: SObject
    query: str
    today: dt.date
    joins: dict[tuple[str, ...], tuple[str, SObject]] = field(default_factory=dict)
    join_sql: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)


def _invalid_field(ctx: _Context, token: Token, obj: SObject) -> SoqlError:
    text = (
        f"No such column '{token}' on entity '{obj.name}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names."
    )
    return SoqlError("INVALID_FIELD", _located(ctx.query, token.line or 1, token.column or 1, text))


def _resolve(ctx: _Context, tokens: list[Token]) -> tuple[str, Column]:
    """SQL expression and output column of a field path, adding LEFT JOINs for parents."""
    parts = [str(t) for t in tokens]
    obj, alias = ctx.root, "t0"
    keys: list[str] = []
    objects: list[str] = []
    for step in parts[:-1]:
        ref = obj.relationships.get(step.lower())
        if ref is not None and obj.field(ref.name) is None:
            ref = None  # added in a later API version than the request's
        if ref is None:
            text = (
                f"Didn't understand relationship '{step}' in field path. If you are attempting "
                "to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the "
                "appropriate names."
            )
            token = tokens[0]
            raise SoqlError(
                "INVALID_FIELD", _located(ctx.query, token.line or 1, token.column or 1, text)
            )
        parent = ctx.schema[ref.reference_to[0]]
        keys.append(str(ref.relationship_name))
        objects.append(parent.name)
        key = tuple(keys)
        if key not in ctx.joins:
            join_alias = f"j{len(ctx.joins) + 1}"
            ctx.join_sql.append(
                f'LEFT JOIN {parent.table} {join_alias} ON {join_alias}."Id" = {alias}."{ref.name}"'
            )
            ctx.joins[key] = (join_alias, parent)
        alias, obj = ctx.joins[key]
    f = obj.field(parts[-1])
    if f is None or not f.stored:
        raise _invalid_field(ctx, tokens[-1], obj)
    return f'{alias}."{f.name}"', Column((*keys, f.name), tuple(objects), f)


def _tokens(path: Tree[Token]) -> list[Token]:
    return [t for t in path.children if isinstance(t, Token)]


def _day_range(ctx: _Context, keyword: str, n: int = 0) -> tuple[dt.date, dt.date]:
    today = ctx.today
    one = dt.timedelta(days=1)
    ranges = {
        "TODAY": (today, today + one),
        "YESTERDAY": (today - one, today),
        "TOMORROW": (today + one, today + 2 * one),
        "LAST_N_DAYS": (today - n * one, today + one),
        "NEXT_N_DAYS": (today + one, today + (n + 1) * one),
    }
    return ranges[keyword.upper()]


def _bound(f: Field, day: dt.date) -> str:
    if f.type == "date":
        return day.isoformat()
    return dt.datetime(day.year, day.month, day.day).strftime(SF_DATETIME)


def normalize_datetime(text: str) -> str:
    """Any ISO 8601 date-time (Z or offset) in Salesforce's UTC wire format."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _type_error(f: Field, wanted: str) -> SoqlError:
    return SoqlError(
        "INVALID_FIELD",
        f"value of filter criterion for field '{f.name}' must be of type {wanted} "
        "and should not be enclosed in quotes",
    )


def _literal(f: Field, value: Tree[Token]) -> Any:
    """A scalar literal as the Python value stored in the field's column."""
    kind = value.data
    token = str(value.children[0]) if value.children else ""
    if kind == "null":
        return None
    if f.type == "boolean":
        if kind not in ("true", "false"):
            raise _type_error(f, "boolean")
        return 1 if kind == "true" else 0
    if f.type in ("double", "currency", "percent", "int"):
        if kind != "number":
            raise _type_error(f, "number")
        return float(token) if "." in token else int(token)
    if f.type == "date":
        if kind != "date":
            raise _type_error(f, "date")
        return token
    if f.type == "datetime":
        if kind != "datetime":
            raise _type_error(f, "dateTime")
        return normalize_datetime(token)
    if kind != "string":
        raise SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{f.name}' must be of type string and "
            "should be enclosed in quotes",
        )
    text = _unquote(token)
    if f.type in ("id", "reference"):
        try:
            return to_18(text)
        except MalformedId:
            raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}") from None
    return text or None  # empty text is stored as null, so '' means null


def _compare(ctx: _Context, node: Tree[Token]) -> str:
    path, op_token, value = node.children
    assert isinstance(path, Tree) and isinstance(value, Tree)
    expr, column = _resolve(ctx, _tokens(path))
    f, op = column.field, str(op_token).replace("<>", "!=")
    if value.data in ("date_keyword", "n_days"):
        if f.type not in ("date", "datetime"):
            raise _type_error(f, f.type)
        n = int(str(value.children[1])) if value.data == "n_days" else 0
        start, end = (_bound(f, d) for d in _day_range(ctx, str(value.children[0]), n))
        sql = {
            "=": f"({expr} >= ? AND {expr} < ?)",
            "!=": f"({expr} IS NULL OR {expr} < ? OR {expr} >= ?)",
            "<": f"{expr} < ?",
            "<=": f"{expr} < ?",
            ">": f"{expr} >= ?",
            ">=": f"{expr} >= ?",
        }[op]
        args = {
            "=": [start, end],
            "!=": [start, end],
            "<": [start],
            "<=": [end],
            ">": [end],
            ">=": [start],
        }[op]
        ctx.params.extend(args)
        return sql
    literal = _literal(f, value)
    if literal is None:
        if op not in ("=", "!="):
            raise SoqlError("MALFORMED_QUERY", f"invalid operator on null: {op}")
        return f"{expr} IS NULL" if op == "=" else f"{expr} IS NOT NULL"
    ctx.params.append(literal)
    if op == "!=":
        return f"({expr} IS NULL OR {expr} != ?)"  # SOQL: != matches null values too
    return f"{expr} {op} ?"


def _membership(ctx: _Context, node: Tree[Token], negate: bool) -> str:
    path, *values = node.children
    assert isinstance(path, Tree)
    expr, column = _resolve(ctx, _tokens(path))
    literals = [_literal(column.field, v) for v in values if isinstance(v, Tree)]
    present = [v for v in literals if v is not None]
    has_null = len(present) != len(literals)
    ctx.params.extend(present)
    in_sql = f"{expr} IN ({', '.join('?' for _ in present)})" if present else "0"
    if negate:  # SOQL's NOT IN keeps nulls unless null is in the list
        if has_null:
            return f"({expr} IS NOT NULL AND NOT ({in_sql}))"
        return f"({expr} IS NULL OR NOT ({in_sql}))"
    return f"({in_sql} OR {expr} IS NULL)" if has_null else f"({in_sql})"


def _like(ctx: _Context, node: Tree[Token]) -> str:
    path, pattern = node.children
    assert isinstance(path, Tree)
    expr, column = _resolve(ctx, _tokens(path))
    if column.field.type not in (
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "id",
        "reference",
        "multipicklist",
    ):
        raise SoqlError(
            "INVALID_FIELD",
            f"invalid operator on {column.field.type} field: {column.field.name}",
        )
    # Keep \% and \_ escaped for LIKE's ESCAPE clause; other escapes become their characters.
    body = str(pattern)[1:-1]
    body = re.sub(r"\\([^%_])", lambda m: _unquote(f"'\\{m.group(1)}'"), body)
    ctx.params.append(body)
    return f"{expr} LIKE ? ESCAPE '\\'"


def _includes(ctx: _Context, node: Tree[Token], negate: bool) -> str:
    path, *values = node.children
    assert isinstance(path, Tree)
    expr, column = _resolve(ctx, _tokens(path))
    if column.field.type != "multipicklist":
        raise SoqlError(
            "INVALID_FIELD", "includes or excludes operator only valid on multipicklist field"
        )
    alternatives = []
    for token in values:
        terms = [t for t in _unquote(str(token)).split(";") if t]
        parts = []
        for term in terms:
            ctx.params.append(f"%;{term};%")
            parts.append(f"(';' || {expr} || ';') LIKE ?")
        alternatives.append("(" + " AND ".join(parts or ["0"]) + ")")
    sql = "(" + " OR ".join(alternatives) + ")"
    return f"({expr} IS NULL OR NOT {sql})" if negate else f"({expr} IS NOT NULL AND {sql})"


def _condition(ctx: _Context, node: Tree[Token]) -> str:
    kind = node.data
    kids = [c for c in node.children if isinstance(c, Tree)]
    if kind == "or_":
        return f"({_condition(ctx, kids[0])} OR {_condition(ctx, kids[1])})"
    if kind == "and_":
        return f"({_condition(ctx, kids[0])} AND {_condition(ctx, kids[1])})"
    if kind == "not_":
        # NOT over a comparison that is NULL (unknown) in SQL must still be a boolean.
        return f"(NOT COALESCE({_condition(ctx, kids[0])}, 0))"
    if kind == "compare":
        return _compare(ctx, node)
    if kind in ("in_", "not_in"):
        return _membership(ctx, node, negate=kind == "not_in")
    if kind == "like":
        return _like(ctx, node)
    if kind in ("includes", "excludes"):
        return _includes(ctx, node, negate=kind == "excludes")
    raise SoqlError("MALFORMED_QUERY", f"unsupported condition {kind}")


def _order(ctx: _Context, node: Tree[Token]) -> str:
    parts = []
    for item in node.children:
        assert isinstance(item, Tree)
        path, *rest = item.children
        assert isinstance(path, Tree)
        expr, _ = _resolve(ctx, _tokens(path))
        direction, nulls = "ASC", None
        for token in rest:
            assert isinstance(token, Token)
            if token.type == "DIRECTION":
                direction = str(token).upper()
            else:
                nulls = str(token).upper()
        # SOQL's defaults: ASC puts nulls first, DESC puts them last.
        nulls = nulls or ("FIRST" if direction == "ASC" else "LAST")
        parts.append(f"{expr} {direction} NULLS {nulls}")
    return ", ".join(parts)


# OFFSET is capped at 2,000 (SOQL reference, "OFFSET"; REAL-ORG-FACTS.md R18). The message
# text is ours: the documents name only the error code.
MAX_OFFSET = 2000


def compile_query(
    query: str, schema: dict[str, SObject], today: dt.date, include_deleted: bool = False
) -> Plan:
    tree = parse(query)
    kids = {c.data: c for c in tree.children if isinstance(c, Tree)}
    name_token = next(c for c in tree.children if isinstance(c, Token))
    root = next((o for o in schema.values() if o.name.lower() == str(name_token).lower()), None)
    if root is None or root.event:
        raise SoqlError(
            "INVALID_TYPE",
            _located(
                query,
                name_token.line or 1,
                name_token.column or 1,
                f"sObject type '{name_token}' is not supported. If you are attempting to "
                "use a custom object, be sure to append the '__c' after the entity name. "
                "Please reference your WSDL or the describe call for the appropriate "
                "names.",
            ),
        )
    ctx = _Context(schema, root, query, today)
    select_items = kids["select_list"].children
    counts = [i for i in select_items if isinstance(i, Tree) and i.data == "count"]
    columns: list[Column] = []
    exprs: list[str] = []
    for item in select_items:
        assert isinstance(item, Tree)
        if item.data == "path":
            expr, column = _resolve(ctx, _tokens(item))
            exprs.append(expr)
            columns.append(column)
    if counts and columns:
        raise SoqlError(
            "MALFORMED_QUERY", f"Field must be grouped or aggregated: {columns[0].field.name}"
        )
    alias = None
    if counts:
        count_kids = counts[0].children
        tokens = [c for c in count_kids if isinstance(c, Token)]
        alias = str(tokens[0]) if tokens else ("expr0" if count_kids else None)
    # Join ids tell a missing parent (null object) from a parent whose fields are null.
    join_ids = []
    for key, (join_alias, _) in ctx.joins.items():
        join_ids.append((key, len(exprs)))
        exprs.append(f'{join_alias}."Id"')
    id_index = len(exprs)
    exprs.append('t0."Id"')
    where = ['t0."IsDeleted" = 0'] if not include_deleted else []
    if "where" in kids:
        where.append(_condition(ctx, kids["where"].children[0]))  # type: ignore[arg-type]
    order_sql = _order(ctx, kids["order"]) if "order" in kids else ""
    order_sql = f"{order_sql}, t0.rowid" if order_sql else "t0.rowid"
    limit = int(str(kids["limit"].children[0])) if "limit" in kids else None
    offset = int(str(kids["offset"].children[0])) if "offset" in kids else 0
    if offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"Maximum SOQL offset allowed is {MAX_OFFSET}",
        )
    from_sql = " ".join([f"FROM {root.table} t0", *ctx.join_sql])
    if where:
        from_sql += " WHERE " + " AND ".join(where)
    return Plan(
        sobject=root.name,
        select_sql="SELECT " + ", ".join(exprs),
        from_sql=from_sql,
        order_sql=order_sql,
        params=ctx.params,
        columns=columns,
        join_ids=join_ids,
        limit=limit,
        offset=offset,
        id_index=id_index,
        count_only=bool(counts),
        aggregate_alias=alias,
    )
