"""Ids with Salesforce's checksum, and the metadata package the sandbox loads its fields from.

The package has two directories: force-app (any org with Order and Case) and shipment-app (what
names the standard Shipment object, deployed on top where the org has it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from chronoforce.sandbox.salesforce.ids import MalformedId, checksum, make_id, to_18
from chronoforce.sandbox.salesforce.schema import (
    default_metadata_dir,
    load_schema,
    shipment_metadata_dir,
)

NS = "{http://soap.sforce.com/2006/04/metadata}"


def _shipment_dir() -> Path:
    found = shipment_metadata_dir(default_metadata_dir())
    assert found is not None, "salesforce/shipment-app/main/default is missing"
    return found


def test_checksum_matches_salesforce_published_example() -> None:
    # Salesforce Help, "What is a Salesforce 15 / 18 character ID": a0D30000001n7Pi -> …EAI
    assert checksum("a0D30000001n7Pi") == "EAI"


def test_18_character_ids_in_any_case_restore_the_original() -> None:
    record_id = make_id("801", 1234567)
    assert to_18(record_id[:15]) == record_id
    assert to_18(record_id.lower()) == record_id


@pytest.mark.parametrize("bad", ["", "abc", "801xx0000000001!!!", "8018d0000000001ZZZ"])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(MalformedId):
        to_18(bad)


def test_every_package_file_is_metadata_in_salesforce_namespace() -> None:
    files = [
        p for root in (default_metadata_dir(), _shipment_dir()) for p in root.rglob("*-meta.xml")
    ]
    assert len(files) > 60
    for path in files:
        assert etree.parse(str(path)).getroot().tag.startswith(NS), path


def test_sandbox_fields_come_from_the_package() -> None:
    schema = load_schema(default_metadata_dir())
    weight = schema["Order"].fields["Chronopost_Weight_Kg__c"]
    assert (weight.type, weight.precision, weight.scale) == ("double", 8, 3)
    assert schema["Chronopost_Integration_Error__c"].fields["Request_Payload__c"].length == 131072
    assert schema["Chronopost_Ship_Request__e"].event
    status = schema["Chronopost_Integration_Error__c"].fields["State__c"]
    assert status.restricted and status.picklist == ("Open", "Retrying", "Resolved")
    # The Shipment package directory, loaded on top: its fields, on Shipment and on base objects.
    assert schema["Shipment"].fields["Order__c"].reference_to == ("Order",)
    assert "Shipment__c" in schema["Chronopost_Tracking_Event__c"].fields


def test_an_org_without_shipment_gets_the_base_package_only() -> None:
    schema = load_schema(default_metadata_dir(), shipment=False)
    assert "Chronopost_Weight_Kg__c" in schema["Order"].fields
    assert "Shipment__c" not in schema["Chronopost_Tracking_Event__c"].fields
    assert "Chronopost_Shipment__c" not in schema["Case"].fields
    assert not any(f.custom for f in schema["Shipment"].fields.values())
    # An explicit Shipment directory is the one loaded.
    explicit = load_schema(default_metadata_dir(), _shipment_dir())
    assert "Chronopost_Skybill_Numbers__c" in explicit["Shipment"].fields


def _granted(path: Path) -> set[str | None]:
    return {
        node.findtext(f"{NS}field")
        for node in etree.parse(str(path)).getroot().iter(f"{NS}fieldPermissions")
    }


def _declared(root: Path) -> set[str]:
    return {
        f"{p.parent.parent.name}.{p.name.split('.')[0]}"
        for p in root.glob("objects/*/fields/*.field-meta.xml")
        if not p.parent.parent.name.endswith("__e")
    }


def test_permission_set_grants_every_custom_field_of_stored_objects() -> None:
    base, shipment = default_metadata_dir(), _shipment_dir()
    granted = _granted(base / "permissionsets/Chronoforce_Integration.permissionset-meta.xml")
    declared = _declared(base)
    # An org without Shipment: the base set alone covers the base package.
    # The standard fields it also grants are checked by tests/salesforce_package.
    assert declared <= granted
    assert all(not str(f).endswith("__c") for f in granted - declared)
    # An org with Shipment: both sets together cover both directories.
    granted |= _granted(
        shipment / "permissionsets/Chronoforce_Integration_Shipment.permissionset-meta.xml"
    )
    declared |= _declared(shipment)
    assert declared <= granted
    assert all(not str(f).endswith("__c") for f in granted - declared)


def test_sfdx_project_points_at_force_app_and_shipment_app() -> None:
    import json

    project = json.loads(
        (Path(default_metadata_dir()).parents[2] / "sfdx-project.json").read_text()
    )
    directories = project["packageDirectories"]
    assert [d["path"] for d in directories] == ["force-app", "shipment-app"]
    assert directories[0]["default"] is True
    assert _shipment_dir().parents[1].name == "shipment-app"


def test_a_base_directory_without_shipment_app_next_to_it_loads_alone(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "force-app" / "main" / "default"
    shutil.copytree(default_metadata_dir(), copy)
    assert shipment_metadata_dir(copy) is None
    schema = load_schema(copy)
    assert "Chronopost_Weight_Kg__c" in schema["Order"].fields
    assert "Order__c" not in schema["Shipment"].fields
    # Placed next to it, as in the repository and the wheel, it is found and loaded.
    shutil.copytree(_shipment_dir(), tmp_path / "shipment-app" / "main" / "default")
    assert "Order__c" in load_schema(copy)["Shipment"].fields
