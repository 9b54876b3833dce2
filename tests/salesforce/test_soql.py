"""SOQL literals: quoting per the SOQL reference, ids and names checked, injection refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronoforce.domain.errors import MappingError
from chronoforce.salesforce import soql


def test_quote_escapes_quote_and_backslash():
    assert soql.quote("O'Brien \\ co") == "'O\\'Brien \\\\ co'"


def test_quote_escapes_control_characters_and_double_quote():
    assert soql.quote('a\nb\rc\td\be\ff"g') == "'a\\nb\\rc\\td\\be\\ff\\\"g'"


@given(st.text())
def test_quoted_literal_never_ends_early(value):
    quoted = soql.quote(value)
    body = quoted[1:-1]
    # Every quote inside the literal is escaped: an odd run of backslashes precedes it.
    for index, char in enumerate(body):
        if char == "'":
            run = len(body[:index]) - len(body[:index].rstrip("\\"))
            assert run % 2 == 1


def test_injection_through_an_id_is_refused():
    with pytest.raises(soql.SoqlInjectionError) as caught:
        soql.record_id("x' OR Name != '")
    assert isinstance(caught.value, MappingError)


@pytest.mark.parametrize("value", ["801000000000001", "801000000000001AAA"])
def test_15_and_18_character_ids_pass(value):
    assert soql.record_id(value) == value


@pytest.mark.parametrize("value", ["80100000000001", "8010000000000010", "801000000000001AA-", ""])
def test_ids_of_other_lengths_or_characters_are_refused(value):
    with pytest.raises(soql.SoqlInjectionError):
        soql.record_id(value)


def test_field_names_allow_relationships_and_refuse_expressions():
    assert soql.field_name("Order__r.Account.AccountNumber") == "Order__r.Account.AccountNumber"
    for bad in ("Name FROM User", "Id,Name", "1Name", "Name--", "Name)"):
        with pytest.raises(soql.SoqlInjectionError):
            soql.field_name(bad)


def test_in_list_quotes_every_value_and_refuses_empty():
    assert soql.in_list(["a'b", 3, True]) == "('a\\'b', 3, true)"
    with pytest.raises(ValueError):
        soql.in_list([])


def test_id_list_refuses_one_bad_id_among_good_ones():
    with pytest.raises(soql.SoqlInjectionError):
        soql.id_list(["801000000000001", "') OR Id != ('"])


def test_datetimes_are_utc_with_milliseconds_and_must_be_aware():
    paris = dt.timezone(dt.timedelta(hours=2))
    value = dt.datetime(2024, 5, 1, 12, 0, 1, 234567, tzinfo=paris)
    assert soql.soql_datetime(value) == "2024-05-01T10:00:01.234Z"
    with pytest.raises(ValueError):
        soql.soql_datetime(dt.datetime(2024, 5, 1))


def test_literals_of_other_types():
    assert soql.literal(None) == "null"
    assert soql.literal(False) == "false"
    assert soql.literal(Decimal("1.50")) == "1.50"
    assert soql.literal(dt.date(2024, 5, 1)) == "2024-05-01"
