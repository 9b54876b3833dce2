"""The `console:` section of chronoforce.yaml: users, sessions, login throttling, /metrics access.

Users are listed with an argon2 hash (`chronoforce console hash-password`), never a password;
the session key and the metrics token are secrets and come only from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConsoleUser(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1, max_length=80)
    # The key is `hash`, not `password_hash`: the loader refuses keys that look like secrets,
    # and a KDF hash is safe to keep in the file.
    hash: str

    @field_validator("hash")
    @classmethod
    def _argon2(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("expected an argon2 hash ($argon2id$…): `chronoforce console "
                             "hash-password` makes one")  # fmt: skip
        return value


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[ConsoleUser, ...] = ()
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    login_attempts: int = Field(5, ge=1)  # failed logins allowed per user and address …
    login_window_s: float = Field(300.0, gt=0)  # … in this many seconds, then 429
    # /metrics: "token" needs `Authorization: Bearer $CHRONOFORCE_METRICS_TOKEN` (or a console
    # login); "open" serves it to anyone who can reach the port (a private scrape network).
    metrics: Literal["token", "open"] = "token"

    @field_validator("users")
    @classmethod
    def _unique(cls, users: tuple[ConsoleUser, ...]) -> tuple[ConsoleUser, ...]:
        names = [u.username for u in users]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"username listed twice: {', '.join(duplicates)}")
        return users

    def user(self, username: str) -> ConsoleUser | None:
        return next((u for u in self.users if u.username == username), None)


def console_config(raw: Mapping[str, Any]) -> ConsoleConfig:
    """Validate `Settings.console`; errors name the key, like the rest of the configuration."""
    from chronoforce.config import ConfigError

    try:
        return ConsoleConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"key 'console.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid console configuration: {problems}") from exc
