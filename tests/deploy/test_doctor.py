"""`chronoforce doctor` against both sandboxes: every check holds on a good configuration, and
each check fails, saying what to do, on a configuration broken for it."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.cli.demo import demo_settings
from chronoforce.config import Settings
from chronoforce.pipeline.doctor import Check, run_checks
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.db import Store
from tests.conftest import free_port

EXPECTED = {
    ("salesforce", "login"),
    ("salesforce", "api version"),
    ("salesforce", "org shape"),
    ("salesforce", "permissions"),
    ("salesforce", "API budget"),
    ("chronopost", "shipping service"),
    ("chronopost", "tracking service"),
    ("chronopost", "quickcost service"),
    ("chronopost", "relay service"),
    ("chronopost", "creneau service"),  # Chrono Precise slots (issue 23)
    ("chronopost", "credentials"),
    ("chronopost", "products"),
    ("store", "database"),
    ("store", "migrations"),
    ("store", "queue"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("doctor")
    tls = ensure_tls(tmp / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    settings = demo_settings(tmp, cp.url, sf.url, tls.ca_cert)
    Store(settings.database_url).dispose()  # migrated, as `chronoforce db upgrade` leaves it
    try:
        yield {"settings": settings, "sf_url": sf.url, "tmp": tmp}
    finally:
        sf.stop()
        cp.stop()


def _by_name(checks: list[Check]) -> dict[tuple[str, str], Check]:
    return {(c.area, c.name): c for c in checks}


def _with(settings: Settings, **sections: dict[str, Any]) -> Settings:
    update: dict[str, Any] = {}
    for name, values in sections.items():
        if name in ("database_url", "queue_url"):
            update[name] = values
        else:
            update[name] = getattr(settings, name).model_copy(update=values)
    return settings.model_copy(update=update)


def test_every_check_holds_against_the_sandboxes(world: dict[str, Any]) -> None:
    checks = _by_name(run_checks(world["settings"]))
    assert set(checks) == EXPECTED
    failed = {k: c.detail for k, c in checks.items() if not c.ok}
    assert failed == {}
    assert "daily API calls left" in checks[("salesforce", "API budget")].detail
    assert "01" in checks[("chronopost", "products")].detail


@pytest.mark.parametrize(
    ("broken", "failing"),
    [
        ("bad Salesforce secret", {("salesforce", "login")}),
        ("api version the org lacks", {("salesforce", "api version")}),
        ("a mapped field the org lacks", {("salesforce", "org shape")}),
        (
            "Chronopost unreachable",
            {
                ("chronopost", n)
                for n in (
                    "shipping service",
                    "tracking service",
                    "quickcost service",
                    "relay service",
                    "creneau service",
                    "credentials",
                )
            },
        ),
        ("bad Chronopost password", {("chronopost", "credentials")}),
        ("database unreachable", {("store", "database")}),
        ("queue unreachable", {("store", "queue")}),
    ],
)
def test_each_check_fails_on_a_configuration_broken_for_it(
    world: dict[str, Any], broken: str, failing: set[tuple[str, str]]
) -> None:
    s: Settings = world["settings"]
    if broken == "bad Salesforce secret":
        s = s.model_copy(
            update={
                "secrets": s.secrets.model_copy(
                    update={"sf_client_secret": SecretStr("not-the-secret")}
                )
            }
        )
    elif broken == "api version the org lacks":
        s = _with(s, salesforce={"api_version": "19.0"})
    elif broken == "a mapped field the org lacks":
        s = s.model_copy(update={"mapping": {"recipient": {"city": "No_Such_Field__c"}}})
    elif broken == "Chronopost unreachable":
        s = _with(s, chronopost={"base_url": f"http://127.0.0.1:{free_port()}"})
    elif broken == "bad Chronopost password":
        s = s.model_copy(
            update={
                "secrets": s.secrets.model_copy(update={"chronopost_password": SecretStr("000000")})
            }
        )
    elif broken == "database unreachable":
        s = _with(s, database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    elif broken == "queue unreachable":
        s = _with(s, queue_url=f"redis://127.0.0.1:{free_port()}/0")
    checks = _by_name(run_checks(s))
    failed = {k for k, c in checks.items() if not c.ok}
    assert failing <= failed, f"{broken}: {failed}"
    for key in failing:
        assert checks[key].fix, f"{key} says what to do"
    if broken == "a mapped field the org lacks":
        assert "No_Such_Field__c" in checks[("salesforce", "org shape")].detail
    if broken != "bad Salesforce secret":
        assert checks[("salesforce", "login")].ok


def test_a_schema_behind_its_migrations_is_reported(world: dict[str, Any], tmp_path: Path) -> None:
    fresh = _with(world["settings"], database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    checks = _by_name(run_checks(fresh))
    assert not checks[("store", "migrations")].ok
    assert "db upgrade" in checks[("store", "migrations")].fix


def test_a_spent_api_budget_is_reported(world: dict[str, Any]) -> None:
    sf_url = world["sf_url"]
    tls = ssl.create_default_context(cafile=str(world["settings"].salesforce.ca_file))
    before = httpx.post(f"{sf_url}/_sandbox/api-budget", json={}, verify=tls).json()
    httpx.post(f"{sf_url}/_sandbox/api-budget", json={"max": 1000, "used": 995}, verify=tls)
    try:
        check = _by_name(run_checks(world["settings"]))[("salesforce", "API budget")]
        assert not check.ok
        assert "1000" in check.detail.replace(",", ""), check.detail
    finally:
        used = before["Max"] - before["Remaining"]
        httpx.post(
            f"{sf_url}/_sandbox/api-budget", json={"max": before["Max"], "used": used}, verify=tls
        )


def test_doctor_command_prints_the_table_and_exits_1_when_a_check_fails(
    world: dict[str, Any], tmp_path: Path
) -> None:
    s: Settings = world["settings"]
    config = tmp_path / "chronoforce.yaml"
    config.write_text(
        json.dumps(
            {
                "database_url": s.database_url,
                "chronopost": {
                    "base_url": s.chronopost.base_url,
                    "account_number": s.chronopost.account_number,
                },
                "salesforce": {
                    "instance_url": s.salesforce.instance_url,
                    "login_url": s.salesforce.login_url,
                    "client_id": s.salesforce.client_id,
                    "ca_file": str(s.salesforce.ca_file),
                },
            }
        )
    )
    env = {
        "CHRONOFORCE_CHRONOPOST_PASSWORD": s.secrets.chronopost_password.get_secret_value(),
        "CHRONOFORCE_SF_CLIENT_SECRET": s.secrets.sf_client_secret.get_secret_value(),
    }
    runner = CliRunner()
    ok = runner.invoke(app, ["--config", str(config), "doctor", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    assert all(row["ok"] for row in json.loads(ok.output))
    env["CHRONOFORCE_CHRONOPOST_PASSWORD"] = "000000"
    bad = runner.invoke(app, ["--config", str(config), "doctor"], env=env)
    assert bad.exit_code == 1
    assert "credentials" in bad.output and "to fix" in bad.output
    assert "Traceback" not in bad.output


def test_permissions_fail_when_the_integration_user_cannot_write_a_field(tmp_path: Path) -> None:
    # Field-level security: readable, not editable for this user (REAL-ORG-FACTS R7).
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(
        db_path=":memory:", read_only_fields={"Order": {"Chronopost_Tracking_Number__c"}}
    )
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    try:
        settings = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
        Store(settings.database_url).dispose()
        checks = _by_name(run_checks(settings))
    finally:
        sf.stop()
        cp.stop()
    permissions = checks[("salesforce", "permissions")]
    assert not permissions.ok
    assert "Order.Chronopost_Tracking_Number__c" in permissions.detail
    assert "permission set" in permissions.fix
    assert checks[("salesforce", "login")].ok


def test_products_fail_when_the_account_opens_none_on_the_sample_route(
    world: dict[str, Any],
) -> None:
    # A shipper abroad, where the sandbox's account has no product from (calculateProducts).
    s: Settings = world["settings"]
    shipper = s.chronopost.shipper.model_copy(update={"country": "US", "postal_code": "10001"})
    broken = _with(s, chronopost={"shipper": shipper})
    checks = _by_name(run_checks(broken))
    products = checks[("chronopost", "products")]
    assert not products.ok, products.detail
    assert products.fix
