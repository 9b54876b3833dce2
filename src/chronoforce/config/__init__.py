"""chronoforce's configuration: `settings.py` loads the file and the environment into `Settings`;
`sections.py` holds the typed sections that belong to one part of the program."""

from chronoforce.config.sections import (
    ALL_SCOPES,
    ApiClient,
    ApiConfig,
    CaseConfig,
    ConfigError,
    ConsoleConfig,
    ConsoleUser,
    Scope,
    ShipperConfig,
    TrackingConfig,
    WorkerConfig,
    section,
)
from chronoforce.config.settings import (
    DEFAULT_CONFIG_FILE,
    ChronopostConfig,
    LoggingConfig,
    PipelineConfig,
    SalesforceConfig,
    Secrets,
    Settings,
    WebConfig,
    load_settings,
)

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_CONFIG_FILE",
    "ApiClient",
    "ApiConfig",
    "CaseConfig",
    "ChronopostConfig",
    "ConfigError",
    "ConsoleConfig",
    "ConsoleUser",
    "LoggingConfig",
    "PipelineConfig",
    "SalesforceConfig",
    "Scope",
    "Secrets",
    "Settings",
    "ShipperConfig",
    "TrackingConfig",
    "WebConfig",
    "WorkerConfig",
    "load_settings",
    "section",
]
