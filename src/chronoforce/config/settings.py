"""chronoforce's configuration: one YAML file plus CHRONOFORCE_* environment variables.

Settings are loaded once into pydantic models, every section typed and validated at load, so a
mistake anywhere in the file stops the command with the key and the file named. Secrets come only
from the environment or a secrets directory — a secret in the YAML file is an error — and are
never printed: `masked()` is what `chronoforce config show` prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from chronoforce.config.sections import (
    AccountsConfig,
    ApiConfig,
    ConfigError,
    ConsoleConfig,
    LocationsConfig,
    ShipperConfig,
    TrackingConfig,
    WorkerConfig,
    _Section,
    problems,
)
from chronoforce.domain.routing import DEFAULT_RULES, RoutingRules
from chronoforce.redaction import MASK, is_secret_key, register_secrets

DEFAULT_CONFIG_FILE = Path("chronoforce.yaml")


class ChronopostConfig(_Section):
    base_url: str = "https://ws.chronopost.fr"
    # Used only while base_url is down (chronopost/transport.py). Unset: Chronopost's documented
    # https://ws2.chronopost.fr when base_url is production ([D] §2.2.1), else none. "": none.
    backup_url: str | None = None
    account_number: str = "19869502"
    sub_account: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    ca_file: Path | None = None  # trust this CA (sandbox over HTTPS); system CAs otherwise
    concurrency: int = Field(16, ge=1, le=256)
    calls_per_second: float = Field(50.0, gt=0)
    label_format: str = "PDF"
    shipper: ShipperConfig = ShipperConfig()
    accounts: AccountsConfig = AccountsConfig()  # per product family (chronopost/config.py)


class SalesforceConfig(_Section):
    instance_url: str = ""  # set for client-credentials / session use
    login_url: str = "https://login.salesforce.com"
    api_version: str = "61.0"
    auth: Literal["client_credentials", "jwt", "password"] = "client_credentials"
    client_id: str = ""
    # JWT `aud`, independent of the host posted to: "" = https://test.salesforce.com when
    # login_url is a sandbox host, else https://login.salesforce.com (salesforce/auth.py).
    jwt_audience: str = ""
    username: str = ""
    ca_file: Path | None = None
    api_reserve_fraction: float = Field(0.2, ge=0, lt=1)
    pubsub_endpoint: str = ""  # host:port of the Pub/Sub API; empty = SOQL delta polling only
    pubsub_topic: str = "/event/Chronopost_Ship_Request__e"  # or a CDC channel, /data/…Event
    delta_every_s: float = Field(300.0, gt=0)  # with events on: the SOQL delta as a safety net

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        major, _, minor = value.removeprefix("v").partition(".")
        if not (major.isdigit() and (minor or "0").isdigit()):
            raise ValueError("expected a version like 61.0")
        return f"{int(major)}.{int(minor or 0)}"


class PipelineConfig(_Section):
    """How long a worker holds a shipment or an outbox row before another may take it over.

    A killed worker's work waits this long; it must exceed the carrier call's timeouts, or a
    slow call could be taken over while it is still running.
    """

    lease_seconds: float = Field(120.0, gt=0)


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65535)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Secrets(BaseSettings):
    """Secret values: environment (`CHRONOFORCE_…`) or files in CHRONOFORCE_SECRETS_DIR only."""

    model_config = SettingsConfigDict(env_prefix="CHRONOFORCE_", extra="ignore")

    chronopost_password: SecretStr | None = None
    # Passwords of the per-family contracts (chronopost.accounts); unset = the main one.
    chronopost_relay_password: SecretStr | None = None
    chronopost_returns_password: SecretStr | None = None
    chronopost_international_password: SecretStr | None = None
    sf_client_secret: SecretStr | None = None
    sf_private_key: SecretStr | None = None
    sf_password: SecretStr | None = None
    sf_security_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    console_session_key: SecretStr | None = None
    metrics_token: SecretStr | None = None  # Bearer token Prometheus sends to GET /metrics
    # Passwords of the locations' own contracts (`locations.sites.<key>.account_number`), as
    # JSON {"lyon": "…"}; a location left out uses the main password (issue 23).
    chronopost_location_passwords: dict[str, SecretStr] = Field(default_factory=dict)

    def values(self) -> list[str]:
        found = [v for v in self.__dict__.values() if isinstance(v, SecretStr)]
        found += list(self.chronopost_location_passwords.values())
        return [v.get_secret_value() for v in found]


class Settings(BaseModel):
    """The effective configuration of one chronoforce process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = "sqlite:///./chronoforce.db"
    queue_url: str = ""  # empty: huey on SQLite beside the database; redis://… to scale out
    chronopost: ChronopostConfig = ChronopostConfig()
    salesforce: SalesforceConfig = SalesforceConfig()
    web: WebConfig = WebConfig()
    pipeline: PipelineConfig = PipelineConfig()
    logging: LoggingConfig = LoggingConfig()
    # The field mapping is the Salesforce adapter's (salesforce/mapping.py, MappingConfig): it
    # stays a mapping here, and the command line validates it at load (cli/common.py).
    mapping: dict[str, Any] = Field(default_factory=dict)
    routing: RoutingRules = DEFAULT_RULES  # domain/routing.py; the YAML merges onto the defaults
    tracking: TrackingConfig = TrackingConfig()
    api: ApiConfig = ApiConfig()  # rates API clients (hashes), token and cache TTLs
    console: ConsoleConfig = ConsoleConfig()  # users (hashes), sessions, /metrics access
    worker: WorkerConfig = WorkerConfig()  # periodic jobs, shared limits, shutdown
    locations: LocationsConfig = LocationsConfig()  # where parcels leave from (issue 23)
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)
    source: str = Field("defaults", exclude=True)

    @field_validator("routing", mode="before")
    @classmethod
    def _routing_over_defaults(cls, value: Any) -> Any:
        return RoutingRules.from_mapping(value) if isinstance(value, Mapping) else value

    @model_validator(mode="after")
    def _lease_outlives_carrier_calls(self) -> Settings:
        call = self.chronopost.connect_timeout_s + self.chronopost.read_timeout_s
        if self.pipeline.lease_seconds <= call:
            raise ValueError(
                f"pipeline.lease_seconds ({self.pipeline.lease_seconds}) must exceed the "
                f"carrier call's timeouts ({call} s)"
            )
        return self

    def masked(self) -> dict[str, Any]:
        """The configuration as `config show` prints it: secrets shown only as set / unset."""
        data = self.model_dump(mode="json")
        data["secrets"] = {
            name: (MASK if value not in (None, {}) else None)
            for name, value in self.secrets.__dict__.items()
        }
        data["source"] = self.source
        return data


# Environment variables that override single settings (secrets are read by `Secrets`).
_ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "CHRONOFORCE_DATABASE_URL": ("database_url",),
    "CHRONOFORCE_QUEUE_URL": ("queue_url",),
    "CHRONOFORCE_CHRONOPOST_BASE_URL": ("chronopost", "base_url"),
    "CHRONOFORCE_CHRONOPOST_ACCOUNT_NUMBER": ("chronopost", "account_number"),
    "CHRONOFORCE_SF_INSTANCE_URL": ("salesforce", "instance_url"),
    "CHRONOFORCE_SF_LOGIN_URL": ("salesforce", "login_url"),
    "CHRONOFORCE_SF_CLIENT_ID": ("salesforce", "client_id"),
    "CHRONOFORCE_SF_USERNAME": ("salesforce", "username"),
    "CHRONOFORCE_SF_JWT_AUDIENCE": ("salesforce", "jwt_audience"),
    "CHRONOFORCE_LOG_LEVEL": ("logging", "level"),
}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _refuse_secrets(data: Any, path: Path, prefix: str = "") -> None:
    if isinstance(data, list):  # e.g. console.users[]: a secret in a list item too
        for index, item in enumerate(data):
            _refuse_secrets(item, path, f"{prefix}{index}.")
    if isinstance(data, dict):
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            if isinstance(key, str) and is_secret_key(key) and value not in (None, ""):
                raise ConfigError(
                    f"{path}: key '{dotted}' holds a secret; secrets are read only from the "
                    "environment (CHRONOFORCE_…) or CHRONOFORCE_SECRETS_DIR, never from the file"
                )
            _refuse_secrets(value, path, f"{dotted}.")


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, keys in _ENV_OVERRIDES.items():
        if name in environ:
            target = data
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = environ[name]
    return data


def load_settings(
    config_file: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read the YAML file (explicit, CHRONOFORCE_CONFIG, or ./chronoforce.yaml if present)."""
    env = dict(os.environ if environ is None else environ)
    path = config_file or (Path(env["CHRONOFORCE_CONFIG"]) if "CHRONOFORCE_CONFIG" in env else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    data = _read_yaml(path) if path else {}
    where = str(path) if path else "defaults + environment"
    if path:
        _refuse_secrets(data, path)
    data = _apply_env(data, env)
    try:
        secrets_dir = env.get("CHRONOFORCE_SECRETS_DIR")
        secrets = Secrets(_secrets_dir=secrets_dir) if secrets_dir else Secrets()
        settings = Settings.model_validate({**data, "secrets": secrets, "source": where})
    except ValidationError as exc:
        raise ConfigError(f"{where}: invalid configuration: {problems(exc)}") from exc
    register_secrets(secrets.values())
    return settings
