"""Data package: chronoforce's own WSDLs for Chronopost, the contract between client and sandbox.

It only locates files; it must never build clients, parse, or rewrite the documents.
"""

from __future__ import annotations

import pathlib
from importlib import resources

CHRONOPOST_SERVICES = ("shipping", "tracking", "quickcost", "relay", "creneau")


def chronopost_wsdl(service: str) -> pathlib.Path:
    """Path of the WSDL of one Chronopost service: shipping, tracking, quickcost or relay."""
    if service not in CHRONOPOST_SERVICES:
        raise ValueError(f"unknown Chronopost service {service!r}; one of {CHRONOPOST_SERVICES}")
    # The package is installed as plain files (setuptools package-data), so this is a real path.
    return pathlib.Path(
        str(resources.files("chronoforce.schemas") / "chronopost" / f"{service}.wsdl")
    )
