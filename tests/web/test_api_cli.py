"""`chronoforce rates | relay-points | pickup | return-label | cancel | api new-client` over the
sandboxes: tables for people, --json for machines, exit 1 for refusals, exit 2 for bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.web.api_config import api_config, sha256_hex


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("api-cli")
    tls = ensure_tls(tmp / "tls")
    # Not about the cancel window (tests/chronopost/test_documented_answers.py is).
    carrier = ChronopostSandbox(db_path=":memory:", cancel_window=dt.timedelta(0))
    org = SalesforceSandbox(db_path=":memory:")
    org.seed(orders=12, seed=3)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    config = tmp / "chronoforce.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database_url": f"sqlite:///{tmp / 'cf.db'}",
                "chronopost": {"base_url": cp.url, "account_number": DEMO_ACCOUNT},
                "salesforce": {
                    "instance_url": sf.url,
                    "login_url": sf.url,
                    "client_id": DEMO_CLIENT_ID,
                    "ca_file": str(tls.ca_cert),
                },
                "logging": {"level": "error"},
            }
        )
    )
    env = {
        "CHRONOFORCE_CONFIG": str(config),
        "CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD,
        "CHRONOFORCE_SF_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "CHRONOFORCE_LOG_LEVEL": "error",
        "COLUMNS": "200",
    }
    french = [
        o["Id"]
        for o in org.records("Order")
        if o.get("ShippingCountryCode") == "FR" and len(o.get("ShippingStreet") or "") <= 38
    ]
    try:
        yield {"env": env, "carrier": carrier, "org": org, "orders": french}
    finally:
        sf.stop()
        cp.stop()


def run(world: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=world["env"])


def as_json(result: Any) -> Any:
    """The JSON document on stdout (a logger bound before the test configured logging may
    print there in this shared test process; a real `chronoforce` process logs to stderr)."""
    text = result.stdout
    return json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)


def test_rates_to_a_postal_code_as_json_and_as_a_table(cli_world: dict[str, Any]) -> None:
    result = run(cli_world, "rates", "--to", "69003", "--city", "Lyon", "--weight", "2.5", "--json")
    assert result.exit_code == 0, result.output
    data = as_json(result)
    assert {"01", "16"} <= {p["product_code"] for p in data["products"]}
    assert data["chosen"]["product_code"] == "16" and data["carrier_calls"] == 1
    table = run(cli_world, "rates", "--to", "69003", "--city", "Lyon", "--weight", "2.5")
    assert table.exit_code == 0, table.output
    assert "Chrono 13" in table.output and "routing chooses 16" in table.output
    assert "rate cache" in table.output  # the same question again: no carrier call


def test_rates_for_an_order_and_its_refusals(cli_world: dict[str, Any]) -> None:
    order_id = cli_world["orders"][0]
    result = run(cli_world, "rates", order_id, "--json")
    assert result.exit_code == 0, result.output
    assert as_json(result)["order_id"] == order_id
    unknown = run(cli_world, "rates", "801000000000999AAA")
    assert unknown.exit_code == 1 and "ORDER_NOT_FOUND" in unknown.output
    heavy = run(cli_world, "rates", "--to", "69003", "--weight", "40")
    assert heavy.exit_code == 2 and "weight_kg" in heavy.output
    both = run(cli_world, "rates", order_id, "--to", "69003")
    assert both.exit_code == 2


def test_relay_points_near_a_postal_code(cli_world: dict[str, Any]) -> None:
    result = run(cli_world, "relay-points", "--postal-code", "75011", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    points = as_json(result)["points"]
    assert 1 <= len(points) <= 2 and points[0]["id"]
    assert run(cli_world, "relay-points").exit_code == 2


def test_return_label_then_cancel_it(cli_world: dict[str, Any]) -> None:
    order_id = cli_world["orders"][1]
    made = run(cli_world, "return-label", order_id, "--reference", "RMA42", "--json")
    assert made.exit_code == 0, made.output
    data = as_json(made)
    assert data["created"] and data["returns_reference"] == "RMA42"
    cancelled = run(cli_world, "cancel", "--order", order_id, "--return", "--json")
    assert cancelled.exit_code == 0, cancelled.output
    assert as_json(cancelled)["cancelled"] == data["skybill_numbers"]
    assert cli_world["carrier"].parcel(data["skybill_numbers"][0]).cancelled_at is not None
    assert run(cli_world, "cancel", "999999").exit_code == 1
    assert run(cli_world, "cancel").exit_code == 2


def test_pickup_books_and_prints_the_esd_number(cli_world: dict[str, Any]) -> None:
    order_id = cli_world["orders"][2]
    result = run(cli_world, "pickup", order_id, "--date", "2030-01-02", "--instructions", "Quai 3")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("pickup ") and "for " in result.output
    window = run(cli_world, "pickup", order_id, "--date", "2030-01-02", "--closing", "08:00")
    assert window.exit_code == 2 and "closing_time" in window.output


def test_new_client_prints_hashes_the_configuration_accepts() -> None:
    result = CliRunner().invoke(app, ["api", "new-client", "salesforce-prod", "--json"])
    assert result.exit_code == 0, result.output
    made = as_json(result)
    assert PasswordHasher().verify(made["client_hash"], made["client_secret"])
    assert made["key_sha256"] == sha256_hex(made["api_key"])
    config = api_config(
        {
            "clients": [
                {
                    "id": made["id"],
                    "client_hash": made["client_hash"],
                    "key_sha256": made["key_sha256"],
                }
            ]
        }
    )
    assert config.clients[0].id == "salesforce-prod"
    with pytest.raises(Exception, match=r"api\.clients"):
        api_config({"clients": [{"id": "x", "client_hash": "plain secret"}]})


def test_rates_and_relay_points_by_postal_code_need_no_salesforce(
    cli_world: dict[str, Any],
) -> None:
    env = {k: v for k, v in cli_world["env"].items() if k != "CHRONOFORCE_SF_CLIENT_SECRET"}
    rates = CliRunner().invoke(app, ["rates", "--to", "13001", "--json"], env=env)
    assert rates.exit_code == 0, rates.output
    assert as_json(rates)["products"]
    points = CliRunner().invoke(app, ["relay-points", "--postal-code", "13001"], env=env)
    assert points.exit_code == 0, points.output
    # An order id does need Salesforce: a clear refusal, not a traceback.
    order = CliRunner().invoke(app, ["rates", cli_world["orders"][0]], env=env)
    assert order.exit_code == 1 and "CHRONOFORCE_SF_CLIENT_SECRET" in order.output
