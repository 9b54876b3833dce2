"""`chronoforce init` writes a configuration that loads back, with no secret in it; `chronoforce
certify` makes the sample labels Chronopost validates before production, against the Chronopost
sandbox, with a readable summary PDF, and refuses a product the account cannot label."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.config import load_settings
from chronoforce.sandbox.chronopost import DEMO_PASSWORD, ChronopostSandbox

runner = CliRunner()


def test_init_writes_a_commented_configuration_that_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "conf" / "chronoforce.yaml"
    result = runner.invoke(
        app,
        ["init", "--out", str(out), "--auth", "jwt", "--instance-url",
         "https://acme.my.salesforce.com", "--client-id", "3MVG9-consumer: key", "--username",
         "integration@acme.example", "--database-url", "postgresql://cf@db:5432/cf",
         "--queue-url", "redis://redis:6379/0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    assert text.count("\n#") >= 10, "commented for a person"
    settings = load_settings(out, environ={})
    assert settings.salesforce.auth == "jwt"
    assert settings.salesforce.client_id == "3MVG9-consumer: key"
    assert settings.salesforce.instance_url == "https://acme.my.salesforce.com"
    assert settings.database_url == "postgresql://cf@db:5432/cf"
    assert settings.queue_url == "redis://redis:6379/0"
    assert settings.chronopost.account_number == "19869502"
    # It says which secrets to set, and writes none.
    for name in ("CHRONOFORCE_SF_PRIVATE_KEY", "CHRONOFORCE_CHRONOPOST_PASSWORD"):
        assert name in result.output and name in text
    data = yaml.safe_load(text)
    assert "secrets" not in data and "password" not in json.dumps(data).lower()


def test_init_picks_the_login_host_from_the_org_kind_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "chronoforce.yaml"
    assert runner.invoke(app, ["init", "--out", str(out), "--sandbox-org"]).exit_code == 0
    assert load_settings(out, environ={}).salesforce.login_url == "https://test.salesforce.com"
    again = runner.invoke(app, ["init", "--out", str(out)])
    assert again.exit_code == 1
    assert "--force" in again.output
    forced = runner.invoke(app, ["init", "--out", str(out), "--force"])
    assert forced.exit_code == 0
    assert load_settings(out, environ={}).salesforce.login_url == "https://login.salesforce.com"


def test_init_refuses_an_unknown_auth_flow_in_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--out", str(tmp_path / "x.yaml"), "--auth", "saml"])
    assert result.exit_code == 2
    assert "client_credentials" in result.output
    assert not (tmp_path / "x.yaml").exists()


@pytest.fixture()
def carrier_config(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], ChronopostSandbox]]:
    sandbox = ChronopostSandbox(db_path=":memory:")
    server = sandbox.start()
    config = tmp_path / "chronoforce.yaml"
    config.write_text(json.dumps({"chronopost": {"base_url": server.url}}))
    try:
        yield config, {"CHRONOFORCE_CHRONOPOST_PASSWORD": DEMO_PASSWORD}, sandbox
    finally:
        server.stop()


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def test_certify_makes_one_sample_label_per_configured_product_and_a_summary(
    carrier_config: tuple[Path, dict[str, str], Any], tmp_path: Path
) -> None:
    config, env, _ = carrier_config
    out = tmp_path / "certify"
    result = runner.invoke(app, ["--config", str(config), "certify", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    labels = sorted(p for p in out.glob("*.pdf") if p.name != "certification-summary.pdf")
    products = {p.name.split("-")[0] for p in labels}
    assert {"01", "16", "86", "17", "44"} <= products
    for label in labels:
        assert label.read_bytes().startswith(b"%PDF")
        assert len(PdfReader(label).pages) >= 1
    summary = _pdf_text(out / "certification-summary.pdf")
    assert "19869502" in summary
    for label in labels:
        code, skybill = label.stem.split("-", 1)
        assert skybill in summary and f"CERT-{code}-" in summary
    assert "relay point" in summary  # the relay product went to a relay point found by search


def test_certify_refuses_a_product_the_account_cannot_label_and_says_why(
    carrier_config: tuple[Path, dict[str, str], Any], tmp_path: Path
) -> None:
    config, env, _ = carrier_config
    # Chrono Classic (44) configured as if it served France: Chronopost refuses that route.
    data = json.loads(config.read_text())
    data["routing"] = {"products": [{"code": "44", "name": "Chrono Classic", "zones": ["FR"]}]}
    config.write_text(json.dumps(data))
    out = tmp_path / "certify"
    result = runner.invoke(
        app, ["--config", str(config), "certify", "-p", "01", "-p", "44", "-p", "99", "--out",
              str(out)], env=env,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "could not be labelled: 44, 99" in result.output
    assert "Traceback" not in result.output
    summary = _pdf_text(out / "certification-summary.pdf")
    assert "label made" in summary and "refused" in summary
    assert list(out.glob("01-*.pdf")) and not list(out.glob("44-*.pdf"))


def test_certify_uses_the_test_account_unless_told_to_use_the_configured_one(
    carrier_config: tuple[Path, dict[str, str], Any], tmp_path: Path
) -> None:
    config, env, _ = carrier_config
    data = json.loads(config.read_text())
    data["chronopost"]["account_number"] = "12345678"  # a production account, not yet granted
    config.write_text(json.dumps(data))
    out = tmp_path / "certify"
    default = runner.invoke(
        app, ["--config", str(config), "certify", "-p", "01", "--out", str(out)],
        env={"CHRONOFORCE_CHRONOPOST_PASSWORD": "not-the-test-password"},
    )  # fmt: skip
    assert default.exit_code == 0, default.output
    assert "19869502" in _pdf_text(out / "certification-summary.pdf")
    configured = runner.invoke(
        app, ["--config", str(config), "certify", "-p", "01", "--use-configured-account",
              "--out", str(tmp_path / "prod")], env=env,
    )  # fmt: skip
    assert configured.exit_code == 1, "the sandbox knows no account 12345678"
    assert "12345678" in configured.output
