"""`chronoforce address check`: one JSON object per CSV row, in order, or a table for people.

Runs the real command through typer's CliRunner, mounted the way the root CLI mounts it, and as a
separate process with `python -m chronoforce.cli.address`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from chronoforce.cli import address as address_cli

FIXTURE = Path(__file__).parent / "domain" / "data" / "addresses.csv"
KEYS = [
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
]
runner = CliRunner()


def root_app() -> typer.Typer:
    """A root app mounting the sub-app exactly as the lead's cli.py does."""
    root = typer.Typer()

    @root.callback()
    def main() -> None:
        """chronoforce."""

    root.add_typer(address_cli.app, name="address")
    return root


def check(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(
        root_app(), ["address", "check", *args], input=stdin, env={"COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_json_prints_one_object_per_row_in_order() -> None:
    code, out, _ = check("--json", str(FIXTURE))
    rows = json_lines(out)
    assert len(rows) == 10
    assert [r["address"]["name"] for r in rows[:3]] == [  # type: ignore[index]
        "Camille Martin",
        "Boulangerie Lefevre",
        "Jean-Pierre Rossi",
    ]
    for row in rows:
        assert list(row) == ["ok", "address", "issues"]
        assert list(row["address"]) == KEYS  # type: ignore[arg-type]
        for issue in row["issues"]:  # type: ignore[attr-defined]
            assert list(issue) == ["code", "field", "severity", "message"]
    assert code == 1  # the Russian address and the empty row cannot be sent


def test_json_shows_addresses_as_they_would_be_sent() -> None:
    rows = json_lines(check("--json", str(FIXTURE))[1])
    assert rows[0] == {
        "ok": True,
        "address": {"name": "Camille Martin", "name2": "", "line1": "12 rue de la Paix", "line2": "",
                    "postal_code": "75002", "city": "PARIS", "country": "FR", "phone": "0612345678",
                    "mobile": "0612345678", "email": "camille.martin@example.fr"},
        "issues": [
            {"code": "COUNTRY_NORMALIZED", "field": "country", "severity": "info", "message": "'France' is FR"},
            {"code": "MOBILE_FROM_PHONE", "field": "mobile", "severity": "info",
             "message": "the phone is a mobile: used for SMS"},
        ],
    }  # fmt: skip
    menton = rows[1]["address"]
    assert (menton["line1"], menton["line2"], menton["postal_code"]) == (  # type: ignore[index]
        "Residence du Parc, 145 avenue du",
        "General de Gaulle",
        "06500",
    )
    assert rows[2]["address"]["postal_code"] == "20000"  # type: ignore[index]
    assert rows[3]["address"]["country"] == "MC"  # type: ignore[index]
    la_defense = rows[4]
    assert la_defense["ok"] is True
    assert la_defense["address"]["city"] == "PARIS LA DEFENSE CEDEX"  # type: ignore[index]
    assert la_defense["address"]["email"] == ""  # type: ignore[index]
    assert {i["code"] for i in la_defense["issues"]} >= {  # type: ignore[attr-defined]
        "PHONE_EXTENSION_DROPPED",
        "MOBILE_NOT_MOBILE",
        "EMAIL_INVALID",
    }
    assert rows[6]["address"]["postal_code"] == "SW1A 2AA"  # type: ignore[index]
    assert rows[7]["ok"] is False
    assert rows[8]["address"]["country"] == "RE"  # type: ignore[index]
    assert {i["code"] for i in rows[9]["issues"] if i["severity"] == "error"} == {  # type: ignore[attr-defined]
        "FIELD_MISSING",
        "POSTAL_CODE_MISSING",
    }


def test_all_sendable_exits_zero(tmp_path: Path) -> None:
    csv_file = tmp_path / "good.csv"
    csv_file.write_text(FIXTURE.read_text(encoding="utf-8").splitlines()[0] + "\n"
                        + "Camille Martin,,12 rue de la Paix,,75002,Paris,FR,,,\n", encoding="utf-8")  # fmt: skip
    code, out, _ = check("--json", str(csv_file))
    assert code == 0
    assert json_lines(out)[0]["ok"] is True


def test_excel_semicolon_csv_with_bom_is_read(tmp_path: Path) -> None:
    csv_file = tmp_path / "excel.csv"
    text = FIXTURE.read_text(encoding="utf-8").replace(",", ";")
    csv_file.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rows = json_lines(check("--json", str(csv_file))[1])
    assert rows[0]["address"]["postal_code"] == "75002"  # type: ignore[index]
    assert len(rows) == 10


def test_columns_may_come_in_any_order_extra_ones_are_ignored(tmp_path: Path) -> None:
    csv_file = tmp_path / "shuffled.csv"
    csv_file.write_text(
        "Country,City,postal_code,line1,line2,name,name2,phone,mobile,email,order\n"
        "DE,Berlin,10115,Invalidenstraße 116,,Anna Schmidt,,0151 12345678,,,00042\n",
        encoding="utf-8",
    )
    row = json_lines(check("--json", str(csv_file))[1])[0]
    assert row["address"]["line1"] == "Invalidenstrasse 116"  # type: ignore[index]
    assert row["address"]["phone"] == "+4915112345678"  # type: ignore[index]


def test_missing_column_exits_two_naming_it(tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("name,line1,city\nA,B,C\n", encoding="utf-8")
    code, out, err = check("--json", str(csv_file))
    assert code == 2
    assert out == ""
    assert "postal_code" in err and "country" in err


def test_missing_file_exits_two(tmp_path: Path) -> None:
    code, _, err = check(str(tmp_path / "nope.csv"))
    assert code == 2
    assert "cannot read" in err


def test_reads_stdin_with_a_dash() -> None:
    code, out, _ = check("--json", "-", stdin=FIXTURE.read_text(encoding="utf-8"))
    assert len(json_lines(out)) == 10
    assert code == 1


def test_overseas_option_sends_departments_as_france() -> None:
    rows = json_lines(check("--json", "--overseas-country", "FR", str(FIXTURE))[1])
    assert rows[8]["address"]["country"] == "FR"  # type: ignore[index]


def test_table_lists_every_address_and_the_count() -> None:
    code, out, _ = check(str(FIXTURE))
    assert code == 1
    for text in ("Camille Martin", "PARIS", "SW1A 2AA", "not in Latin script"):
        assert text in out
    assert "8 of 10 addresses can be sent as is." in out


def test_table_prints_markup_in_addresses_as_typed(tmp_path: Path) -> None:
    csv_file = tmp_path / "markup.csv"
    csv_file.write_text(",".join(KEYS) + "\n[bold]Shop[/bold],,1 rue A,,75001,Paris,FR,,,\n",
                        encoding="utf-8")  # fmt: skip
    assert "[bold]Shop[/bold]" in check(str(csv_file))[1]


@pytest.mark.parametrize("mode", ["--json", "table"])
def test_runs_as_a_module_in_its_own_process(mode: str) -> None:
    args = [sys.executable, "-m", "chronoforce.cli.address", "check", str(FIXTURE)]
    if mode == "--json":
        args.insert(4, "--json")
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    if mode == "--json":
        assert json_lines(done.stdout) == json_lines(check("--json", str(FIXTURE))[1])
    else:
        assert "can be sent as is" in done.stdout
