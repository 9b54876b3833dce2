"""`chronoforce address check FILE.csv`: run the address normalizer over a CSV, one row per address.

Reads only the given file (or stdin) and prints; it never calls Chronopost nor stores anything.
Exit code: 0 when every address can be sent as is, 1 when one cannot, 2 when the file is unusable.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chronoforce.domain.address import AddressPolicy, NormalizedParty, Role, normalize_party
from chronoforce.domain.models import Address, Contact, Party

# The CSV header, and the keys of "address" in the JSON output, in this order.
COLUMNS = (
    "name",
    "name2",
    "line1",
    "line2",
    "postal_code",
    "city",
    "country",
    "phone",
    "mobile",
    "email",
)

app = typer.Typer(help="Check addresses the way they would be sent to Chronopost.")


class CsvError(Exception):
    """The file cannot be read as an address CSV (missing, undecodable, wrong header)."""


@app.callback()
def main() -> None:
    """Address normalization and validation for Chronopost."""


@app.command()
def check(
    file: Annotated[
        str, typer.Argument(help="CSV with the header " + ",".join(COLUMNS) + "; - for stdin.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per row, in order.")
    ] = False,
    role: Annotated[str, typer.Option(help="recipient or shipper.")] = "recipient",
    keep_accents: Annotated[
        bool, typer.Option(help="Keep French accents instead of spelling in ASCII.")
    ] = False,
    overseas_country: Annotated[
        str, typer.Option(help="territory (GP, MQ, GF, RE, YT) or FR for overseas departments.")
    ] = "territory",
) -> None:
    """Normalize every address of FILE.csv and report what was fixed or cannot be sent."""
    if role not in ("recipient", "shipper") or overseas_country not in ("territory", "FR"):
        typer.echo(
            "--role is recipient or shipper; --overseas-country is territory or FR", err=True
        )
        raise typer.Exit(2)
    policy = AddressPolicy(
        keep_accents=keep_accents,
        overseas_country="FR" if overseas_country == "FR" else "territory",
    )
    party_role: Role = "shipper" if role == "shipper" else "recipient"
    try:
        rows = list(read_rows(file))
    except CsvError as exc:
        typer.echo(f"cannot read {file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    results = [normalize_party(party_from_row(row), party_role, policy=policy) for row in rows]
    if as_json:
        for result in results:
            typer.echo(json.dumps(as_json_line(result), ensure_ascii=False))
    else:
        print_table(results)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def read_rows(file: str) -> Iterator[dict[str, str]]:
    """Rows as dicts of the ten columns; ',' ';' or tab separated, UTF-8 with or without BOM."""
    try:
        if file == "-":
            text = sys.stdin.read().removeprefix("\ufeff")
        else:
            text = Path(file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvError(str(exc)) from exc
    header_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise CsvError(f"header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})")
    reader.fieldnames = header
    for row in reader:
        yield {column: row.get(column) or "" for column in COLUMNS}


def party_from_row(row: dict[str, str]) -> Party:
    address = Address(
        name=row["name"],
        name2=row["name2"],
        line1=row["line1"],
        line2=row["line2"],
        postal_code=row["postal_code"],
        city=row["city"],
        country=row["country"],
    )
    contact = Contact(phone=row["phone"], mobile=row["mobile"], email=row["email"])
    return Party(address=address, contact=contact)


def normalized_row(result: NormalizedParty) -> dict[str, str]:
    """The ten columns as they would be sent."""
    a, c = result.party.address, result.party.contact
    values = (a.name, a.name2, a.line1, a.line2, a.postal_code, a.city, a.country)
    return dict(zip(COLUMNS, (*values, c.phone, c.mobile, c.email), strict=True))


def as_json_line(result: NormalizedParty) -> dict[str, Any]:
    issues = [
        {"code": i.code, "field": i.field, "severity": i.severity, "message": i.message}
        | ({"candidates": [list(c) for c in i.candidates]} if i.candidates else {})
        for i in result.issues
    ]
    return {"ok": result.ok, "address": normalized_row(result), "issues": issues}


_STYLE: dict[str, Literal["red", "yellow", "dim"]] = {
    "error": "red",
    "warning": "yellow",
    "info": "dim",
}
_MARK = {"error": "x", "warning": "!", "info": "-"}


def print_table(results: list[NormalizedParty]) -> None:
    table = Table(title="addresses as they would be sent to Chronopost", show_lines=True)
    for column in ("#", "ok"):
        table.add_column(column, no_wrap=True)
    for column in ("name", "address", "city", "phones / e-mail"):
        table.add_column(column, overflow="fold", ratio=1)
    table.add_column("issues (x error, ! warning, - info)", overflow="fold", ratio=2)
    for number, result in enumerate(results, start=1):
        # Addresses are data, not rich markup: "[b]" in a name must print as typed.
        row = {key: escape(value) for key, value in normalized_row(result).items()}
        issues = "\n".join(
            f"[{_STYLE[i.severity]}]{_MARK[i.severity]} {escape(i.message)}[/]"
            for i in result.issues
        )
        table.add_row(
            str(number),
            "[green]yes[/]" if result.ok else "[red]NO[/]",
            "\n".join(filter(None, (row["name"], row["name2"]))),
            "\n".join(filter(None, (row["line1"], row["line2"]))),
            f"{row['postal_code']} {row['city']} {row['country']}".strip(),
            "\n".join(filter(None, (row["phone"], row["mobile"], row["email"]))),
            issues,
        )
    console = Console()  # per call: the terminal width (or $COLUMNS) of this run
    console.print(table)
    sendable = sum(result.ok for result in results)
    console.print(f"{sendable} of {len(results)} addresses can be sent as is.")


if __name__ == "__main__":
    app()
