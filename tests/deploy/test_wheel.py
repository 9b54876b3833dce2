"""The built wheel works outside the repository: installed in a fresh virtual environment that
cannot see the source tree, `chronoforce --help` and `chronoforce demo` run from it, with every
data file (WSDLs, tables, templates, migrations, the Salesforce metadata package) inside."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (built,) = out.glob("chronoforce-*.whl")
    return built


def _runtime_closure(wheel: Path) -> list[metadata.Distribution]:
    """The distributions the wheel's own Requires-Dist pull in (extras left out), followed
    through their requirements in this environment; each version must satisfy its specifier."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        wanted = email.message_from_bytes(archive.read(name)).get_all("Requires-Dist") or []
    todo = [(Requirement(r), "") for r in wanted]
    found: dict[str, metadata.Distribution] = {}
    followed: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements are queued
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        dist = metadata.distribution(requirement.name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (
            str(requirement),
            dist.version,
        )
        key = canonicalize_name(requirement.name)
        found[key] = dist
        for wanted_extra in {"", *requirement.extras} - {e for k, e in followed if k == key}:
            followed.add((key, wanted_extra))
            todo += [(Requirement(r), wanted_extra) for r in dist.requires or []]
    return list(found.values())


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel, installed by pip, and its runtime
    dependencies only. Installing those ~60 distributions again from the index took a minute:
    the environment sees this one's copies instead, through one path file pointing at a folder
    of links to exactly the closure of the wheel's Requires-Dist (not the test tools, not the
    source tree, not the editable install of the checkout)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    deps = tmp_path_factory.mktemp("deps")
    for dist in _runtime_closure(wheel):
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {".."}:
            link = deps / top
            if not link.exists():
                link.symlink_to(str(dist.locate_file(top)))
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "chronoforce-test-deps.pth").write_text(f"{deps}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return venv


def _clean_env(home: Path) -> dict[str, str]:
    # Nothing that could point back at the checkout: no PYTHONPATH, no CHRONOFORCE_* settings.
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    return env


def test_the_wheel_carries_every_data_file_it_needs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in (
        "chronoforce/schemas/chronopost/shipping.wsdl",
        "chronoforce/schemas/chronopost/tracking.wsdl",
        "chronoforce/schemas/pubsub/pubsub_api.proto",
        "chronoforce/store/migrations/env.py",
        "chronoforce/web/console/templates/base.html",
        "chronoforce/salesforce_package/sfdx-project.json",
    ):
        assert wanted in names, wanted
    assert any(n.startswith("chronoforce/store/migrations/versions/0001") for n in names)
    assert any(
        n.startswith("chronoforce/salesforce_package/force-app/main/default/objects/")
        for n in names
    )
    assert not any("node_modules" in n for n in names)
    # Every data file of the source package made it in (the package-data patterns).
    source = REPO / "src" / "chronoforce"
    data = [
        p.relative_to(source.parent).as_posix()
        for p in source.rglob("*")
        if p.is_file() and p.suffix in {".wsdl", ".csv", ".proto", ".html", ".css", ".mako"}
    ]
    assert data and [d for d in data if d not in names] == []


def test_help_and_demo_run_from_a_fresh_environment_outside_the_repository(
    installed: Path, tmp_path: Path
) -> None:
    env = _clean_env(tmp_path)
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import chronoforce; print(chronoforce.__file__)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed) and not Path(where).is_relative_to(REPO)

    cli = str(installed / "bin" / "chronoforce")
    helped = subprocess.run([cli, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "demo" in helped.stdout

    demo = subprocess.run(
        [cli, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "labeled" in demo.stdout
    assert "Traceback" not in demo.stderr
    labels = list((tmp_path / "demo-out" / "labels").glob("*"))
    assert labels, "label files written in the demo folder"
