"""Accounts per product family from the configuration: relay products, returns and
international parcels may ship under their own contract; passwords only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from chronoforce.chronopost import ChronopostClient
from chronoforce.chronopost.config import AccountFamily
from chronoforce.config import ConfigError, load_settings

YAML = """
chronopost:
  account_number: "19869502"
  accounts:
    relay: {account_number: "12345678", sub_account: "2"}
    international: {account_number: "87654321"}
"""


def test_family_accounts_come_from_the_yaml_and_their_passwords_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "chronoforce.yaml"
    config.write_text(YAML)
    monkeypatch.setenv("CHRONOFORCE_CHRONOPOST_PASSWORD", "255562")
    monkeypatch.setenv("CHRONOFORCE_CHRONOPOST_RELAY_PASSWORD", "918273")
    settings = load_settings(config, {})
    with ChronopostClient.from_settings(settings) as client:
        relay = client.accounts.for_family(AccountFamily.RELAY)
        abroad = client.accounts.for_family(AccountFamily.INTERNATIONAL)
        returns = client.accounts.for_family(AccountFamily.RETURNS)
    assert (relay.account_number, relay.sub_account, relay.password) == ("12345678", "2", "918273")
    assert (abroad.account_number, abroad.password) == ("87654321", "255562")  # main's password
    assert returns.account_number == "19869502"  # not configured: the main account
    assert "918273" not in str(settings.masked())


def test_a_password_in_the_yaml_or_a_bad_account_number_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "chronoforce.yaml"
    config.write_text(YAML.replace('sub_account: "2"', 'password: "918273"'))
    with pytest.raises(ConfigError, match="secret"):
        load_settings(config, {})
    config.write_text(YAML.replace('"12345678"', '"12AB"'))
    with pytest.raises(ConfigError, match=r"accounts\.relay\.account_number"):
        load_settings(config, {})
