"""Every metadata file of the package is well-formed XML of the type its name says.

`sf project convert source` (make sfcheck) refuses unknown types and misplaced files, but copies
a truncated or mistyped XML file as it is; Salesforce would refuse it only at deploy time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from chronoforce.sandbox.salesforce.schema import default_metadata_dir, shipment_metadata_dir

NS = "{http://soap.sforce.com/2006/04/metadata}"
BASE = default_metadata_dir()
SHIPMENT = shipment_metadata_dir(BASE)
assert SHIPMENT is not None, "salesforce/shipment-app/main/default is missing"
ROOTS = (BASE, SHIPMENT)
# A path relative to salesforce/ (force-app/main/default/…, shipment-app/main/default/…).
PROJECT = BASE.parents[2]
# File suffix → the root element its Metadata API type has.
TYPES = {
    ".field-meta.xml": "CustomField",
    ".object-meta.xml": "CustomObject",
    ".cls-meta.xml": "ApexClass",
    ".trigger-meta.xml": "ApexTrigger",
    ".js-meta.xml": "LightningComponentBundle",
    ".permissionset-meta.xml": "PermissionSet",
    ".namedCredential-meta.xml": "NamedCredential",
    ".externalCredential-meta.xml": "ExternalCredential",
    ".platformEventChannelMember-meta.xml": "PlatformEventChannelMember",
    ".quickAction-meta.xml": "QuickAction",
    ".flexipage-meta.xml": "FlexiPage",
    ".tab-meta.xml": "CustomTab",
    ".listView-meta.xml": "ListView",
}
FILES = sorted(p for root in ROOTS for p in root.rglob("*-meta.xml") if "__tests__" not in p.parts)


def _suffix(path: Path) -> str:
    return next((s for s in TYPES if path.name.endswith(s)), "")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROJECT)))
def test_each_file_is_well_formed_and_of_its_type(path: Path) -> None:
    suffix = _suffix(path)
    assert suffix, f"{path.name}: a metadata type this package does not use yet (add it to TYPES)"
    root = etree.parse(str(path)).getroot()  # raises on malformed XML
    assert root.tag == NS + TYPES[suffix]


def test_every_apex_file_has_its_meta_file_and_an_api_version() -> None:
    sources = [p for r in ROOTS for p in [*r.glob("classes/*.cls"), *r.glob("triggers/*.trigger")]]
    for source in sources:
        meta = source.with_name(source.name + "-meta.xml")
        assert meta.exists(), f"{source.name}: no {meta.name}"
        assert etree.parse(str(meta)).getroot().findtext(NS + "apiVersion"), meta.name


def test_custom_field_files_are_named_after_their_full_name() -> None:
    for path in [p for r in ROOTS for p in r.glob("objects/*/fields/*.field-meta.xml")]:
        full_name = etree.parse(str(path)).getroot().findtext(NS + "fullName")
        assert full_name == path.name.removesuffix(".field-meta.xml"), path
