"""Ordinary mistakes at the command line: one line saying what happened, a non-zero exit, no
traceback; and no silent success when nothing was done (issue 17, item 8)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow

from .conftest import CliWorld


def invoke(world: CliWorld, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=world.env)


def one_line_refusal(result: Any, code: int = 1) -> str:
    """The command failed with `code`, said so in one line, and printed no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def french_orders(world: CliWorld) -> list[dict[str, Any]]:
    """Seeded orders to France whose address is sendable as is."""
    return [
        o
        for o in world.org.records("Order")
        if o.get("ShippingCountryCode") == "FR" and len(o.get("ShippingStreet") or "") <= 38
    ]


def test_ship_of_a_malformed_id_is_one_line(cli_world: CliWorld) -> None:
    line = one_line_refusal(invoke(cli_world, "ship", "notanid"), code=2)
    assert "notanid" in line and "Salesforce id" in line


def test_ship_of_an_id_the_org_does_not_have_is_one_line(cli_world: CliWorld) -> None:
    line = one_line_refusal(invoke(cli_world, "ship", "801000000000000ZZZ"))  # bad checksum
    assert "801000000000000ZZZ" in line
    line = one_line_refusal(invoke(cli_world, "ship", "801000000000999"))  # no such record
    assert "801000000000999" in line


def test_ship_exits_non_zero_when_the_order_ended_as_an_exception(cli_world: CliWorld) -> None:
    # The last French order (the good-order test ships the first one).
    order = french_orders(cli_world)[-1]
    cli_world.org.org.update("Order", order["Id"], {"ShippingCountry": "Atlantis"})
    result = invoke(cli_world, "ship", order["Id"])
    assert result.exit_code == 1, result.output
    assert "exception" in result.output and "Traceback" not in result.output


def test_ship_of_a_good_order_exits_0(cli_world: CliWorld) -> None:
    order = french_orders(cli_world)[0]
    result = invoke(cli_world, "ship", order["Id"])
    assert result.exit_code == 0, result.output
    assert "labeled" in result.output


def test_track_of_a_skybill_nobody_knows_is_one_line(cli_world: CliWorld) -> None:
    line = one_line_refusal(invoke(cli_world, "track", "NOTASKYBILL"))
    assert "NOTASKYBILL" in line


def test_relay_points_where_there_are_none_is_one_line(cli_world: CliWorld) -> None:
    line = one_line_refusal(invoke(cli_world, "relay-points", "--postal-code", "59000"))
    assert "59000" in line and "no relay point" in line


def test_exceptions_list_of_an_unknown_kind_is_one_line(cli_world: CliWorld) -> None:
    line = one_line_refusal(invoke(cli_world, "exceptions", "list", "--kind", "bogus"), code=2)
    assert "bogus" in line and "address" in line  # names the kinds there are
    line = one_line_refusal(invoke(cli_world, "exceptions", "list", "--state", "closed"), code=2)
    assert "closed" in line


def test_resolving_a_resolved_exception_keeps_its_note(cli_world: CliWorld) -> None:
    store = Store(cli_world.database_url)
    try:
        with store.session() as session:
            row = ExceptionRow(
                key="801000000000000AAA:label:ADDRESS",
                sf_object="Order",
                sf_id="801000000000000AAA",
                operation="label",
                kind="address",
                code="ADDRESS",
                message="street too long",
            )
            session.add(row)
            session.flush()
            exception_id = row.id
        first = invoke(cli_world, "exceptions", "resolve", str(exception_id), "--note", "fixed")
        assert first.exit_code == 0, first.output
        line = one_line_refusal(
            invoke(cli_world, "exceptions", "resolve", str(exception_id), "--note", "again")
        )
        assert "already resolved" in line
        with store.session() as session:
            assert session.get_one(ExceptionRow, exception_id).resolution_note == "fixed"
    finally:
        store.dispose()
