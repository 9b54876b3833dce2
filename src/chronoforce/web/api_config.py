"""The `api:` section of chronoforce.yaml: API clients (hashes only), token and rate-cache TTLs.

Validated here, like `tracking:` in pipeline/tracking.py, with errors naming the key. It holds
digests of client secrets and API keys, never the secrets themselves (the YAML file refuses them).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from typing import Any, Literal

from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Scope = Literal["rates", "relay", "pickup", "returns", "cancel"]
ALL_SCOPES: tuple[Scope, ...] = ("rates", "relay", "pickup", "returns", "cancel")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ApiClient(BaseModel):
    """One caller (e.g. a Salesforce org's Named Credential) and what it may do.

    `client_hash` is the argon2 hash of its OAuth2 client secret; `key_sha256` the SHA-256 hex
    digest of its static API key. Either or both; `chronoforce api new-client` makes them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    scopes: tuple[Scope, ...] = ALL_SCOPES
    client_hash: str = ""
    key_sha256: str = ""

    @field_validator("client_hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if value and not value.startswith("$argon2"):
            raise ValueError("expected an argon2 hash ($argon2id$…), never the secret itself")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        if value and not _SHA256.match(value.lower()):
            raise ValueError("expected the 64 hex digits of the key's SHA-256 digest")
        return value.lower()


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: tuple[ApiClient, ...] = ()
    access_ttl_s: int = Field(3600, ge=60, le=86400)
    rate_cache_ttl_s: int = Field(900, ge=0, le=86400)  # 0 turns the cache off
    # Rates are asked for the top of the weight band, so one cached answer fits the whole band.
    weight_band_kg: float = Field(1.0, gt=0, le=30)
    # Chrono Reverse 13, a return product ([D] §3.6): modeRetour no longer makes a return.
    return_product: str = Field("4T", pattern=r"^[0-9A-Z]{1,2}$")
    return_case_type: str = "Return"  # Case.Type that may ask for a return label
    cost_includes_vat: bool = True  # what Order.Chronopost_Shipping_Cost__c holds


def api_config(raw: Mapping[str, Any]) -> ApiConfig:
    """Validate `Settings.api`; errors name the key, like the rest of the configuration."""
    from chronoforce.config import ConfigError

    try:
        config = ApiConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"key 'api.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid api configuration: {problems}") from exc
    ids = [c.id for c in config.clients]
    if len(set(ids)) != len(ids):
        raise ConfigError(
            f"invalid api configuration: key 'api.clients': an id appears twice {ids}"
        )
    return config


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
