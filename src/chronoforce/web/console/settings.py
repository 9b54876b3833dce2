"""The `console:` section of chronoforce.yaml: users, sessions, login throttling, /metrics access.

Users are listed with an argon2 hash (`chronoforce console hash-password`), never a password;
the session key and the metrics token are secrets and come only from the environment. The
models live with the rest of the configuration (config/sections.py), validated at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chronoforce.config import ConsoleConfig, ConsoleUser, section

__all__ = ["ConsoleConfig", "ConsoleUser", "console_config"]


def console_config(raw: Mapping[str, Any] | ConsoleConfig) -> ConsoleConfig:
    """`Settings.console` (typed at load) or a mapping; errors name `console.<key>`."""
    return section(ConsoleConfig, "console", raw)
