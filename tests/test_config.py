"""Configuration: YAML + environment, clear errors naming key and file, secrets never shown."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from chronoforce.cli import app
from chronoforce.config import ConfigError, load_settings
from chronoforce.logs import configure_logging

SECRET = "Zq7-secret-value-42"


def test_yaml_and_environment_are_merged(tmp_path: Path) -> None:
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text("chronopost:\n  account_number: '11111111'\n  concurrency: 4\n")
    settings = load_settings(cfg, {"CHRONOFORCE_DATABASE_URL": "sqlite:///x.db"})
    assert settings.chronopost.account_number == "11111111"
    assert settings.chronopost.concurrency == 4
    assert settings.database_url == "sqlite:///x.db"


def test_invalid_value_names_the_key_and_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text("chronopost:\n  concurrency: lots\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, {})
    assert "chronopost.concurrency" in str(err.value)
    assert str(cfg) in str(err.value)


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text("salesforce:\n  api_versoin: '61.0'\n")
    with pytest.raises(ConfigError, match=r"salesforce\.api_versoin"):
        load_settings(cfg, {})


def test_a_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "chronoforce.yaml"
    cfg.write_text("chronopost:\n  password: '255562'\n")
    with pytest.raises(ConfigError, match=r"chronopost\.password.*environment"):
        load_settings(cfg, {})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", {})


def test_secrets_come_from_a_secrets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "chronoforce_chronopost_password").write_text(SECRET)
    monkeypatch.delenv("CHRONOFORCE_CHRONOPOST_PASSWORD", raising=False)
    settings = load_settings(None, {"CHRONOFORCE_SECRETS_DIR": str(tmp_path)})
    assert settings.secrets.chronopost_password is not None
    assert settings.secrets.chronopost_password.get_secret_value() == SECRET


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHRONOFORCE_CHRONOPOST_PASSWORD", SECRET)
    monkeypatch.setenv("CHRONOFORCE_SF_CLIENT_SECRET", SECRET + "-sf")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    data = json.loads(result.output)
    assert data["secrets"]["chronopost_password"] == "***"
    assert data["secrets"]["sf_private_key"] is None
    table = CliRunner().invoke(app, ["config", "show"])
    assert table.exit_code == 0 and SECRET not in table.output


def test_config_error_exits_2_with_a_message(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("web:\n  port: 99999\n")
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 2
    assert "web.port" in result.output and "bad.yaml" in result.output


def test_a_secret_never_reaches_log_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOFORCE_CHRONOPOST_PASSWORD", SECRET)
    load_settings(None, {})  # registers the secret values with the redactor
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    log = structlog.get_logger()
    log.info("calling carrier", password=SECRET, url="https://x/?password=" + SECRET)
    log.info("payload", request=f"<password>{SECRET}</password>", note=f"free text {SECRET}")
    log.info("headers", headers={"Authorization": f"Bearer {SECRET}"})
    import logging

    logging.getLogger("somelib").warning("library said %s", SECRET)
    text = out.getvalue()
    assert text.count("\n") >= 4
    assert SECRET not in text
    assert "***" in text


def test_cli_help_and_db_upgrade_in_a_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "chronoforce"
    help_out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "config" in help_out.stdout and "sandbox" in help_out.stdout
    env = {"CHRONOFORCE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "PATH": "/usr/bin:/bin"}
    up = subprocess.run(
        [exe, "db", "upgrade"], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    assert "database at revision" in up.stdout


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("worker:\n  concurency: 4\n", "worker.concurency"),
        ("tracking:\n  calls_per_secnd: 4\n", "tracking.calls_per_secnd"),
        ("routing:\n  rules:\n    - name: cheap\n      product: '99'\n", "'99'"),
        ("console:\n  users:\n    - username: ops\n      password_hash: x\n", "password_hash"),
        ("console:\n  users:\n    - username: ops\n      hash: plain\n", "console.users.0.hash"),
        ("api:\n  clients:\n    - id: sf\n      key_sha256: nope\n", "api.clients.0.key_sha256"),
        ("mapping:\n  wieght: Weight__c\n", "mapping.wieght"),
        ("mapping:\n  weight: 12\n", "mapping"),
    ],
)
def test_nested_sections_are_refused_at_load_naming_key_and_file(
    tmp_path: Path, yaml_text: str, key: str
) -> None:
    cfg = tmp_path / "nested.yaml"
    cfg.write_text(yaml_text)
    result = CliRunner().invoke(app, ["--config", str(cfg), "config", "show"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert key in lines[0] and str(cfg) in lines[0], lines[0]


def test_sections_are_typed_once_loaded(tmp_path: Path) -> None:
    cfg = tmp_path / "typed.yaml"
    cfg.write_text("worker:\n  concurrency: 3\ntracking:\n  calls_per_second: 2\n")
    settings = load_settings(cfg, {})
    assert settings.worker.concurrency == 3
    assert settings.tracking.calls_per_second == 2
    assert settings.routing.product("01") is not None  # the defaults, merged
    assert settings.console.users == () and settings.api.clients == ()
