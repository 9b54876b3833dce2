"""Ids with Salesforce's checksum, and the metadata package the sandbox loads its fields from."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from chronoforce.sandbox.salesforce.ids import MalformedId, checksum, make_id, to_18
from chronoforce.sandbox.salesforce.schema import default_metadata_dir, load_schema

NS = "{http://soap.sforce.com/2006/04/metadata}"


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
    root = default_metadata_dir()
    files = list(root.rglob("*-meta.xml"))
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


def test_permission_set_grants_every_custom_field_of_stored_objects() -> None:
    root = default_metadata_dir()
    granted = {
        node.findtext(f"{NS}field")
        for node in etree.parse(
            str(root / "permissionsets/Chronoforce_Integration.permissionset-meta.xml")
        )
        .getroot()
        .iter(f"{NS}fieldPermissions")
    }
    declared = {
        f"{p.parent.parent.name}.{p.name.split('.')[0]}"
        for p in root.glob("objects/*/fields/*.field-meta.xml")
        if not p.parent.parent.name.endswith("__e")
    }
    # The standard fields it also grants are checked by tests/salesforce_package.
    assert declared <= granted
    assert all(not f.endswith("__c") for f in granted - declared)


def test_sfdx_project_points_at_force_app() -> None:
    import json

    project = json.loads(
        (Path(default_metadata_dir()).parents[2] / "sfdx-project.json").read_text()
    )
    assert project["packageDirectories"][0]["path"] == "force-app"
