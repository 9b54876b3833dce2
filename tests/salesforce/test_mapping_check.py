"""`check_mapping` and `chronoforce mapping check` against the sandbox org's describe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from chronoforce.cli.mapping import app
from chronoforce.config import SalesforceConfig, Secrets
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.salesforce.connection import connect
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.salesforce.mapping_check import check_mapping
from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls


def test_default_order_and_shipment_mappings_match_the_org(client):
    assert check_mapping(client, MappingConfig()) == []
    assert check_mapping(client, MappingConfig.from_settings({"trigger_object": "Shipment"})) == []


def test_unknown_field_relationship_object_and_wrong_type_are_all_reported(client):
    mapping = MappingConfig.from_settings(
        {
            "recipient": {"city": "Shipping_Town__c", "name": "Acount.Name"},
            "saturday": "ShippingCity",
            "items": {"object": "OrderLine__c"},
        }
    )
    problems = {(p.key, p.problem) for p in check_mapping(client, mapping)}
    assert problems == {
        ("recipient.city", "unknown_field"),
        ("recipient.name", "unknown_relationship"),
        ("saturday", "wrong_type"),
        ("items.order_field", "unknown_object"),
        ("items.quantity", "unknown_object"),
        ("items.weight", "unknown_object"),
    }


def test_unknown_trigger_object_is_one_problem(client):
    problems = check_mapping(client, MappingConfig.from_settings({"trigger_object": "Parcel__c"}))
    assert [(p.key, p.problem) for p in problems] == [("trigger_object", "unknown_object")]


def test_a_broken_trigger_condition_is_reported_from_the_query(client):
    mapping = MappingConfig.from_settings({"trigger_condition": "Chronopost_Shipp__c = true"})
    (problem,) = check_mapping(client, mapping)
    assert (problem.key, problem.problem) == ("trigger_condition", "query_refused")
    assert "INVALID_FIELD" in problem.message


def _cli(org, tmp_path, mapping, *args):
    config = {
        "salesforce": {
            "instance_url": org.url,
            "login_url": org.url,
            "client_id": "chronoforce-demo",
            "ca_file": str(org.ca_file),
        },
        "mapping": mapping,
    }
    path = tmp_path / "chronoforce.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        "CHRONOFORCE_CONFIG": str(path),
        "CHRONOFORCE_SF_CLIENT_SECRET": "chronoforce-demo-secret",
    }
    return CliRunner().invoke(app, ["check", *args], env=env)


def test_cli_prints_ok_and_exits_0_for_the_default_mapping(org, tmp_path):
    result = _cli(org, tmp_path, {})
    assert result.exit_code == 0, result.output
    assert "mapping OK" in result.output


def test_cli_json_lists_problems_and_exits_1(org, tmp_path):
    result = _cli(org, tmp_path, {"weight": "Weight_Grams__c"}, "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)
    assert problem == {
        "key": "weight",
        "path": "Weight_Grams__c",
        "sobject": "Order",
        "problem": "unknown_field",
        "message": "Order has no field Weight_Grams__c",
    }


def test_cli_exits_2_when_the_org_refuses_the_credentials(org, tmp_path, monkeypatch):
    config = tmp_path / "c"
    config.mkdir()
    result = CliRunner().invoke(
        app,
        ["check"],
        env={
            "CHRONOFORCE_CONFIG": str(_write(config, org)),
            "CHRONOFORCE_SF_CLIENT_SECRET": "wrong-secret",
        },
    )
    assert result.exit_code == 2
    assert "wrong-secret" not in result.output


def _write(directory, org):
    path = directory / "chronoforce.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "salesforce": {
                    "instance_url": org.url,
                    "client_id": "chronoforce-demo",
                    "ca_file": str(org.ca_file),
                }
            }
        )
    )
    return path


def test_an_order_only_org_is_reported_as_such_and_its_order_mapping_is_fine(tls_dir):
    from chronoforce.salesforce.mapping_check import org_notes

    with _served(SalesforceSandbox(order_only=True), tls_dir) as client:
        assert check_mapping(client, MappingConfig()) == []
        assert org_notes(client, MappingConfig())[0].startswith("Order-only mode")
        shipment = MappingConfig.from_settings({"trigger_object": "Shipment"})
        assert [(p.key, p.problem) for p in check_mapping(client, shipment)] == [
            ("trigger_object", "unknown_object")
        ]


def test_order_management_fallbacks_an_org_lacks_are_notes_not_problems(tls_dir):
    from chronoforce.salesforce.mapping_check import org_notes

    org = SalesforceSandbox(hidden_objects={"OrderSummary", "FulfillmentOrder"})
    with _served(org, tls_dir) as client:
        mapping = MappingConfig.from_settings({"trigger_object": "Shipment"})
        assert check_mapping(client, mapping) == []
        notes = org_notes(client, mapping)
        assert len(notes) == 2 and all(n.startswith("order_id: Shipment has no") for n in notes)


@contextmanager
def _served(sandbox: SalesforceSandbox, tls_dir: Path) -> Iterator[SalesforceClient]:
    tls = ensure_tls(tls_dir)
    with BackgroundServer(sandbox.app, tls=tls, options={"timeout_graceful_shutdown": 1}) as sf:
        config = SalesforceConfig(
            instance_url=sf.url, login_url=sf.url, client_id=DEMO_CLIENT_ID, ca_file=tls.ca_cert
        )
        secrets = Secrets(sf_client_secret=SecretStr(DEMO_CLIENT_SECRET))
        with SalesforceClient(connect(config, secrets)) as client:
            yield client


@pytest.fixture()
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "tls"
