"""The package's two directories: force-app deploys on any org with Order and Case, shipment-app
carries everything that names the standard Shipment object (REAL-ORG-FACTS.md: it exists only
with Order Management, Field Service, B2B Commerce and some industry clouds).

A field on Shipment, a lookup to it, a permission naming it, a CDC channel member for its change
events or a static SOQL query on it makes the deploy fail on every other org, so the base
directory must not name it anywhere it is deployed (its .forceignore'd Jest tests excepted).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from chronoforce.sandbox.salesforce.schema import default_metadata_dir, shipment_metadata_dir

BASE = default_metadata_dir()
PROJECT = BASE.parents[2]
SHIPMENT = PROJECT / "shipment-app" / "main" / "default"
# The object's name as an identifier: Shipment, Shipment.Field, Shipment__c, ShipmentChangeEvent,
# Chronopost_Shipment__c; not chronoforce's own shipment_id / shipmentId.
NAMES_SHIPMENT = re.compile(r"(?<![A-Za-z])Shipment(?![a-z])")
# Lines of the base that hold the word as a value, not a reference to the object: the panel's
# triggerObject property (chronoforce's mapping.trigger_object) compares strings. Each is checked
# to still exist, so this list cannot go stale.
VALUES = {
    ("lwc/chronoforcePanel/chronoforcePanel.js-meta.xml", 'datasource="Order,Shipment"'),
    ("lwc/chronoforcePanel/chronoforcePanel.js", "the actions name that record (Order, or Shipment)."),
    ("lwc/chronoforcePanel/chronoforcePanel.js", "this.triggerObject === 'Shipment'"),
    ("lwc/chronoforcePanel/chronoforcePanel.js", "'No Shipment is linked to this record"),
}  # fmt: skip


def _ignored(relative: str) -> bool:
    """Whether salesforce/.forceignore keeps a file out of the deploy."""
    patterns = [
        line.strip()
        for line in (PROJECT / ".forceignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(
        fnmatch.fnmatch(relative, p) or fnmatch.fnmatch("/" + relative, "*/" + p.lstrip("*/"))
        for p in patterns
    )


def _deployed(root: Path) -> list[Path]:
    files = (p for p in root.rglob("*") if p.is_file())
    return sorted(p for p in files if not _ignored(str(p.relative_to(PROJECT))))


def _value(relative: str, line: str) -> bool:
    return any(path == relative and snippet in line for path, snippet in VALUES)


def test_the_base_directory_names_shipment_nowhere_it_is_deployed() -> None:
    files = _deployed(BASE)
    assert len(files) > 60
    assert not any("__tests__" in p.parts for p in files)
    found = []
    used: set[tuple[str, str]] = set()
    for path in files:
        relative = str(path.relative_to(BASE))
        assert not NAMES_SHIPMENT.search(relative), relative
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not NAMES_SHIPMENT.search(line):
                continue
            if _value(relative, line):
                used |= {v for v in VALUES if v[0] == relative and v[1] in line}
                continue
            found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []
    assert used == VALUES


def test_the_scan_catches_a_shipment_reference() -> None:
    for line in (
        "<referenceTo>Shipment</referenceTo>",
        "<field>Shipment.TrackingNumber</field>",
        "<selectedEntity>ShipmentChangeEvent</selectedEntity>",
        "SELECT Id, Chronopost_Shipment__c FROM Case",
        "WHERE Shipment__c = :recordId",
    ):
        assert NAMES_SHIPMENT.search(line), line
    for line in (
        "public Integer shipment_id;",
        "panel.shipmentId = c.Id;",
        "ChronoforceShipmentPanel",
    ):
        assert not NAMES_SHIPMENT.search(line), line


@pytest.mark.parametrize(
    "relative",
    [
        "objects/Shipment/fields/Order__c.field-meta.xml",
        "objects/Case/fields/Chronopost_Shipment__c.field-meta.xml",
        "objects/Chronopost_Tracking_Event__c/fields/Shipment__c.field-meta.xml",
        "objects/Chronopost_Integration_Error__c/fields/Shipment__c.field-meta.xml",
        "flexipages/Chronopost_Shipment.flexipage-meta.xml",
        "platformEventChannelMembers/ChangeEvents_ShipmentChangeEvent.platformEventChannelMember-meta.xml",
        "permissionsets/Chronoforce_Integration_Shipment.permissionset-meta.xml",
        "permissionsets/Chronoforce_Agent_Shipment.permissionset-meta.xml",
        "classes/ChronoforceShipmentPanel.cls",
    ],
)
def test_the_shipment_parts_are_in_shipment_app(relative: str) -> None:
    assert (SHIPMENT / relative).is_file()
    assert not (BASE / relative).exists()


def test_every_file_of_shipment_app_names_shipment() -> None:
    """The Shipment directory carries only what needs the object (the rest belongs in the base)."""
    files = _deployed(SHIPMENT)
    assert files
    for path in files:
        if (
            path.name.endswith("-meta.xml")
            and path.with_name(path.name[: -len("-meta.xml")]).exists()
        ):
            continue  # an Apex class's meta file: its class is checked
        relative = str(path.relative_to(SHIPMENT))
        text = path.read_text(encoding="utf-8")
        assert NAMES_SHIPMENT.search(relative) or NAMES_SHIPMENT.search(text), relative


def test_sfdx_project_lists_both_directories_and_the_sandbox_finds_shipment_app() -> None:
    project = json.loads((PROJECT / "sfdx-project.json").read_text(encoding="utf-8"))
    paths = [d["path"] for d in project["packageDirectories"]]
    assert paths == ["force-app", "shipment-app"]
    assert shipment_metadata_dir(BASE) == SHIPMENT.resolve()


def test_the_controller_looks_up_exactly_the_extensions_shipment_app_defines() -> None:
    """ChronoforceAgentController finds its extensions by class name: the names must match."""
    controller = (BASE / "classes/ChronoforceAgentController.cls").read_text(encoding="utf-8")
    listed = re.search(r"extensionClasses = new List<String>\{([^}]*)\}", controller)
    assert listed is not None
    names = set(re.findall(r"'(\w+)'", listed[1]))
    implementing = {
        p.stem
        for p in SHIPMENT.glob("classes/*.cls")
        if "implements ChronoforceAgentController.Extension" in p.read_text(encoding="utf-8")
    }
    assert names == implementing == {"ChronoforceShipmentPanel"}
