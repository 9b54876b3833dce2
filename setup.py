"""Build hook: the wheel carries the Salesforce metadata package.

The Salesforce sandbox (and `chronoforce demo`) reads the package's object and field definitions.
In a checkout they are found under `salesforce/`; an installed wheel has no checkout, so
`build_py` copies `salesforce/` into the package as `chronoforce/salesforce_package/`.
Everything else about the build lives in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = "salesforce_package"  # chronoforce/<this> in the wheel


class BuildWithMetadata(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        source = HERE / "salesforce"
        if getattr(self, "editable_mode", False) or not source.is_dir():
            return  # an editable install reads the checkout's salesforce/ directly
        target = Path(self.build_lib) / "chronoforce" / PACKAGE_DIR
        shutil.rmtree(target, ignore_errors=True)
        # The package itself only: not the npm tool chain that checks it, nor its tests.
        skip = shutil.ignore_patterns("node_modules", "__tests__", "jest.config.js", ".sf*")
        for directory in ("force-app", "shipment-app"):  # sfdx-project.json's packageDirectories
            shutil.copytree(source / directory, target / directory, ignore=skip)
        shutil.copy2(source / "sfdx-project.json", target / "sfdx-project.json")


setup(cmdclass={"build_py": BuildWithMetadata})
