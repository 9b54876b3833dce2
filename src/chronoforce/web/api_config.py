"""The `api:` section of chronoforce.yaml: API clients (hashes only), token and rate-cache TTLs.

The models live with the rest of the configuration (config/sections.py), validated at load with
errors naming the key. It holds digests of client secrets and API keys, never the secrets
themselves (the YAML file refuses them); this module makes new ones.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher

from chronoforce.config import ALL_SCOPES, ApiClient, ApiConfig, Scope, section

__all__ = ["ALL_SCOPES", "ApiClient", "ApiConfig", "Scope", "api_config", "new_client_credentials"]


def api_config(raw: Mapping[str, Any] | ApiConfig) -> ApiConfig:
    """`Settings.api` (typed at load) or a mapping; errors name `api.<key>`."""
    return section(ApiConfig, "api", raw)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_client_credentials() -> dict[str, str]:
    """A fresh client secret and API key with the hashes the YAML file takes (shown once)."""
    secret, key = secrets.token_urlsafe(32), "cfk_" + secrets.token_urlsafe(32)
    return {
        "client_secret": secret,
        "api_key": key,
        "client_hash": PasswordHasher().hash(secret),
        "key_sha256": sha256_hex(key),
    }
