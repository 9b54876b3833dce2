"""Fixtures shared by every test folder: where the reference data lives, free ports."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """`../shared` beside the checkout (CI clones it there); CHRONOFORCE_SHARED overrides."""
    return Path(os.environ.get("CHRONOFORCE_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = shared_dir() / "reference"
    if not path.is_dir():
        pytest.fail(f"reference data not found at {path}: clone ../shared beside the checkout")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
