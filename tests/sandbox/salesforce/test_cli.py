"""`chronoforce sandbox salesforce seed / inspect / reset` on a db file and a running sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from chronoforce.sandbox.cli import app
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.tls import TlsFiles

runner = CliRunner()


def test_seed_inspect_reset_on_a_db_file(tmp_path: Path) -> None:
    db = str(tmp_path / "org.db")
    seeded = runner.invoke(app, ["salesforce", "seed", "--orders", "20", "--seed", "4", "--db", db])
    assert seeded.exit_code == 0, seeded.output
    assert json.loads(seeded.output)["Order"] == 20
    summary = json.loads(runner.invoke(app, ["salesforce", "inspect", "--db", db]).output)
    assert summary["records"]["Order"] == 20
    assert runner.invoke(app, ["salesforce", "reset", "--db", db]).exit_code == 0
    assert SalesforceSandbox(db_path=db).records("Order") == []


def test_seed_through_a_running_sandbox_admin_endpoint(
    base_url: str, tls: TlsFiles, sb: SalesforceSandbox
) -> None:
    tls_dir = str(tls.ca_cert.parent)
    result = runner.invoke(
        app, ["salesforce", "seed", "--orders", "7", "--url", base_url, "--tls-dir", tls_dir]
    )
    assert result.exit_code == 0, result.output
    assert len(sb.records("Order")) == 7
    orders = runner.invoke(
        app,
        ["salesforce", "inspect", "--url", base_url, "--tls-dir", tls_dir, "--sobject", "Order"],
    )
    assert len(json.loads(orders.output)) == 7


def test_seed_is_deterministic_by_seed(tmp_path: Path) -> None:
    def cities(seed: int) -> list[str]:
        sandbox = SalesforceSandbox()
        sandbox.seed(orders=30, seed=seed)
        return [o["ShippingCity"] for o in sandbox.records("Order")]

    assert cities(1) == cities(1) != cities(2)


def test_seed_includes_broken_and_european_addresses() -> None:
    sandbox = SalesforceSandbox()
    sandbox.seed(orders=300, seed=0)
    orders = sandbox.records("Order")
    codes = {o["ShippingCountryCode"] for o in orders}
    assert {"FR", "MC", "BE", "DE", "ES", "IT", "NL", "CH", "GB", "XA"} <= codes
    assert any(len(o["ShippingStreet"]) > 76 for o in orders)
    assert any(o["ShippingPostalCode"].startswith("20") for o in orders)  # Corsica
    assert any("CEDEX" in o["ShippingCity"] for o in orders)
    phones = [c["Phone"] for c in sandbox.records("Contact")]
    assert None in phones
    assert all(
        o["Chronopost_Ship__c"] and o["Chronopost_Label_Status__c"] == "Requested" for o in orders
    )
    shipments = sandbox.records("Shipment")
    assert 0 < len(shipments) < len(orders) and all(s["Order__c"] for s in shipments)
