"""The typed sections of chronoforce.yaml that belong to one part of the program: `worker:`,
`tracking:`, `api:` and `console:`, validated with the rest of the file when it is loaded.

They live here, below every layer that reads them, so loading the configuration imports no web,
pipeline or worker code. None of them holds a secret: hashes only, and the file refuses secrets.
`section()` is the one validator for a section given alone (tests, a caller's dict).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chronoforce.domain.models import ShipmentStatus


class ConfigError(Exception):
    """The configuration is invalid; the message names the key and the file."""


def problems(exc: ValidationError, prefix: str = "") -> str:
    """Pydantic's errors as `key 'a.b': message; …`, keys dotted from the top of the file."""
    return "; ".join(
        "key '" + ".".join(str(p) for p in (prefix, *err["loc"]) if p != "") + f"': {err['msg']}"
        for err in exc.errors()
    )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=BaseModel)


def section(model: type[S], key: str, raw: Mapping[str, Any] | S) -> S:
    """`raw` validated as the `key:` section (already typed: returned as is); errors name
    `key.<field>` like the loader's."""
    if isinstance(raw, model):
        return raw
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(f"invalid {key} configuration: {problems(exc, key)}") from exc


# --- worker: ---------------------------------------------------------------------------------


class WorkerConfig(_Section):
    """The `worker:` section: periodic jobs, shared limits, shutdown (every key optional)."""

    queue_name: str = Field("chronoforce", min_length=1, max_length=60)
    concurrency: int = Field(4, ge=1, le=256)  # label threads per worker process
    detect_every_s: float = Field(5.0, gt=0)
    detect_idle_max_s: float = Field(60.0, gt=0)  # idle: detection waits double up to this
    poll_every_s: float = Field(30.0, gt=0)
    flush_every_s: float = Field(2.0, gt=0)
    sweep_every_s: float = Field(3.0, gt=0)
    requeue_after_s: float = Field(60.0, gt=0)  # queued but not started: queue it again
    shutdown_grace_s: float = Field(30.0, ge=0)  # SIGTERM: wait this long for running calls
    breaker_failures: int = Field(5, ge=1)
    breaker_window_s: float = Field(10.0, gt=0)
    breaker_open_s: float = Field(5.0, gt=0)
    breaker_max_open_s: float = Field(60.0, gt=0)
    salesforce_pause_s: float = Field(600.0, gt=0)  # after REQUEST_LIMIT_EXCEEDED / reserve
    global_carrier_limits: bool = True  # cluster-wide carrier concurrency and calls/s
    retry_scale: float = Field(1.0, gt=0, le=10)  # label backoffs × this (0.25: a quick demo)


# --- tracking: -------------------------------------------------------------------------------


class CaseConfig(_Section):
    """Support Cases opened on exception statuses (one per order, reused while open)."""

    enabled: bool = True
    statuses: tuple[str, ...] = ("exception", "returning", "returned")
    # Event reasons (domain/data/chronopost_events.csv) that open a Case whatever the status:
    # a parcel delivered damaged (DD) is delivered, and still a customer's problem.
    reasons: tuple[str, ...] = ("delivered_damaged",)
    record_type_id: str = ""
    owner_id: str = ""  # a queue id: where new Cases land
    priority: str = "High"
    origin: str = "Chronopost"
    new_status: str = "New"
    update_status: str = "Working"  # empty: leave the Case's Status alone on later events
    close_on_delivery: bool = True
    closed_status: str = "Closed"


class TrackingConfig(_Section):
    """`tracking:` in chronoforce.yaml: poll cadence, call budget, Case rules, webhook limits."""

    calls_per_second: float | None = Field(10.0, gt=0)  # per account, shared by all workers
    calls_per_hour: int | None = Field(None, gt=0)  # the carrier call budget; None = unbounded
    concurrency: int = Field(8, ge=1, le=128)
    batch_size: int = Field(500, ge=1)  # shipments per poll round
    rate_limit_url: str = ""  # empty: the database; redis://… shares the limit through Redis
    terminal_grace_hours: float = Field(24.0, ge=0)  # one last look after a terminal status
    error_retry_minutes: float = Field(30.0, gt=0)
    min_poll_minutes: float = Field(10.0, gt=0)  # never sooner, however much budget is left
    extra_codes: dict[str, str] = Field(default_factory=dict)  # code → normalized status
    # status → hours between polls, overriding domain/status.py's PollPolicy.delays
    poll_hours: dict[ShipmentStatus, float] = Field(default_factory=dict)
    # status → hours after the last event before the first look (planner.QUIET_HOURS)
    quiet_hours: dict[ShipmentStatus, float] = Field(default_factory=dict)
    order_status_map: dict[str, str] = Field(default_factory=dict)  # status → Order.Status
    shipment_status_map: dict[str, str] = Field(default_factory=lambda: {"delivered": "Delivered"})
    write_events: bool = True  # tracking-event records in Salesforce
    case: CaseConfig = CaseConfig()
    webhook_window_seconds: int = Field(300, ge=1)
    webhook_max_bytes: int = Field(1_048_576, ge=1024)
    webhook_max_events: int = Field(1000, ge=1)
    # Issue 21: delta = a trackSearch per contract each round, full events only where needed,
    # the per-parcel poller as fallback; poll = the per-parcel poller alone (docs/tracking.md).
    mode: Literal["delta", "poll"] = "delta"
    search_minutes: float = Field(5.0, gt=0)  # at most one trackSearch round this often
    search_timeline: bool = False  # also fetch the full events of every changed parcel
    # Issue 21: tracking's Salesforce writes wait this long (or until 200 of their object are
    # pending) so they share collections; 0 = sent at the next flush (docs/tracking.md).
    salesforce_hold_s: float = Field(0.0, ge=0, le=3600)


# --- addresses of ours ----------------------------------------------------------------------


class ShipperConfig(_Section):
    """Our own address, printed as sender on every label."""

    name: str = "chronoforce demo shop"
    name2: str = ""
    line1: str = "3 avenue Gallieni"
    line2: str = ""
    postal_code: str = "94250"
    city: str = "Gentilly"
    country: str = "FR"
    contact_name: str = "Expeditions"
    civility: Literal["E", "L", "M"] = "M"
    phone: str = "0145000000"
    email: str = "expeditions@example.com"


# --- chronopost.accounts: a contract per product family --------------------------------------


class AccountFamily(StrEnum):
    """Product families that may ship under their own Chronopost contract ([S] §3.12.4
    headerValue: the Chrono Relais contract number can be product-specific)."""

    RELAY = "relay"
    RETURNS = "returns"
    INTERNATIONAL = "international"


class FamilyAccountConfig(BaseModel):
    """`chronopost.accounts.<family>` of the YAML: the contract (and sub-account) of a family.

    Its password comes from CHRONOFORCE_CHRONOPOST_<FAMILY>_PASSWORD, else the main one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_number: str = Field(pattern=r"^\s*\d{1,8}\s*$")
    sub_account: str = Field("", pattern=r"^\s*\d{0,3}\s*$")


class AccountsConfig(BaseModel):
    """`chronopost.accounts`: a different contract for relay products, returns, international;
    a family left out ships under the main account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relay: FamilyAccountConfig | None = None
    returns: FamilyAccountConfig | None = None
    international: FamilyAccountConfig | None = None

    def family(self, family: AccountFamily) -> FamilyAccountConfig | None:
        value: FamilyAccountConfig | None = getattr(self, family.value)
        return value


# --- api: ------------------------------------------------------------------------------------

Scope = Literal["rates", "relay", "pickup", "returns", "cancel", "labels", "slots"]
ALL_SCOPES: tuple[Scope, ...] = (
    "rates", "relay", "pickup", "returns", "cancel", "labels", "slots",  # slots: issue 23
)  # fmt: skip
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ApiClient(_Section):
    """One caller (e.g. a Salesforce org's Named Credential) and what it may do.

    `client_hash` is the argon2 hash of its OAuth2 client secret; `key_sha256` the SHA-256 hex
    digest of its static API key. Either or both; `chronoforce api new-client` makes them.
    """

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


class ApiConfig(_Section):
    """`api:` in chronoforce.yaml: API clients (hashes only), token and rate-cache TTLs."""

    clients: tuple[ApiClient, ...] = ()
    access_ttl_s: int = Field(3600, ge=60, le=86400)
    rate_cache_ttl_s: int = Field(900, ge=0, le=86400)  # 0 turns the cache off
    # Rates are asked for the top of the weight band, so one cached answer fits the whole band.
    weight_band_kg: float = Field(1.0, gt=0, le=30)
    # Returns (pipeline/returns.py reads these keys too, as its own ReturnsConfig).
    return_product: Literal["4R", "4S", "4T", "4U"] = "4T"  # Chrono Reverse 13; 3T from Europe
    # How the label reaches the customer: e-mailed (modeRetour 1), at a post office (3), or
    # not sent and the PDF attached to the Case (2).
    return_delivery: Literal["email", "case", "post_office"] = "case"
    return_address: ShipperConfig | None = None  # the warehouse; default chronopost.shipper
    return_case_type: str = "Return"  # Case.Type that may ask for a return label
    cost_includes_vat: bool = True  # what Order.Chronopost_Shipping_Cost__c holds

    @field_validator("clients")
    @classmethod
    def _unique(cls, clients: tuple[ApiClient, ...]) -> tuple[ApiClient, ...]:
        ids = [c.id for c in clients]
        if len(set(ids)) != len(ids):
            raise ValueError(f"an id appears twice {ids}")
        return clients


# --- console: --------------------------------------------------------------------------------


class ConsoleUser(_Section):
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


class ConsoleConfig(_Section):
    """`console:` in chronoforce.yaml: users, sessions, login throttling, /metrics access."""

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


# --- locations: the places parcels leave from (issue 23) --------------------------------------

_LOCATION_KEY = r"^[a-z0-9][a-z0-9_-]{0,39}$"
MAIN_LOCATION = "main"  # the key of `chronopost.shipper` when no `locations.sites` is configured


def _time_quoted(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 13:00 as the number 780 (as routing's cutoffs refuse it too).
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"got the number {value}: write times in quotes, e.g. '15:30'")
    return value


class PickupDefaultsConfig(_Section):
    """`locations.sites.<key>.pickup`: the window a pickup on demand asks for when the caller
    gives none (Europe/Paris wall clock, like the API's)."""

    ready_time: dt.time
    closing_time: dt.time
    instructions: str = Field("", max_length=255)

    _times_quoted = field_validator("ready_time", "closing_time", mode="before")(_time_quoted)

    @model_validator(mode="after")
    def _window(self) -> PickupDefaultsConfig:
        if self.closing_time <= self.ready_time:
            raise ValueError("closing_time must be after ready_time")
        return self


class LocationConfig(_Section):
    """`locations.sites.<key>`: one warehouse or shop: its address (printed as sender, where the
    driver comes), its Chronopost contract(s), its cut-offs and holidays, its return address.

    Left out: `account_number` ships under `chronopost.account_number` (its families under
    `chronopost.accounts`), `holiday_country`/`timezone` follow `routing:`, `return_address`
    is the location's own address."""

    name: str = Field(min_length=1, max_length=100)
    name2: str = ""
    line1: str = Field(min_length=1)
    line2: str = ""
    postal_code: str = Field(min_length=1)
    city: str = Field(min_length=1)
    country: str = "FR"
    contact_name: str = "Expeditions"
    civility: Literal["E", "L", "M"] = "M"
    phone: str = Field(min_length=1)
    email: str = ""
    aliases: tuple[str, ...] = ()  # other values of the location field that name it
    account_number: str | None = Field(None, pattern=r"^\s*\d{1,8}\s*$")
    sub_account: str = Field("", pattern=r"^\s*\d{0,3}\s*$")
    accounts: AccountsConfig = AccountsConfig()  # its own contract per product family
    cutoff: dt.time | None = None  # every product's cut-off here (Europe/Paris wall clock)
    cutoffs: dict[str, dt.time] = Field(default_factory=dict)  # product code → its cut-off
    holiday_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    timezone: str | None = None
    return_address: ShipperConfig | None = None
    pickup: PickupDefaultsConfig | None = None  # a pickup's window when the caller gives none

    _cutoff_quoted = field_validator("cutoff", mode="before")(_time_quoted)

    @field_validator("cutoffs", mode="before")
    @classmethod
    def _cutoffs_quoted(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        # Product codes as Chronopost spells them (YAML reads an unquoted 01 as the number 1).
        return {
            (str(k).zfill(2) if str(k).isdigit() and len(str(k)) == 1 else str(k).upper()):
            _time_quoted(v)
            for k, v in value.items()
        }  # fmt: skip

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def shipper(self) -> ShipperConfig:
        """The location's address as the ShipperConfig every party builder reads."""
        return ShipperConfig(
            name=self.name, name2=self.name2, line1=self.line1, line2=self.line2,
            postal_code=self.postal_code, city=self.city, country=self.country,
            contact_name=self.contact_name, civility=self.civility, phone=self.phone,
            email=self.email,
        )  # fmt: skip


class LocationRule(_Section):
    """`locations.rules[]`: the first rule whose conditions all match picks its location;
    a condition left out matches anything."""

    location: str
    countries: tuple[str, ...] = ()  # destination country (ISO alpha-2)
    postal_prefixes: tuple[str, ...] = ()  # destination postal code starts with one
    products: tuple[str, ...] = ()  # the Chronopost product routing picks
    # Mapped facts (`mapping.facts`, e.g. a stock flag In_Stock_Lyon__c) → value or values.
    facts: dict[str, Any] = Field(default_factory=dict)

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.strip().upper() for c in value)

    @field_validator("products", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return tuple(
            str(v).zfill(2) if str(v).isdigit() and len(str(v)) == 1 else str(v).upper()
            for v in value
        )


class LocationsConfig(_Section):
    """`locations:` in chronoforce.yaml. Without `sites`, the one location is
    `chronopost.shipper` with `chronopost.account_number` and `chronopost.accounts` (key
    `main`); with them, `default` names the one orders go to when nothing else decides."""

    default: str = ""  # a key of `sites`; "" = the first one
    sites: dict[str, LocationConfig] = Field(default_factory=dict)
    rules: tuple[LocationRule, ...] = ()

    @field_validator("sites")
    @classmethod
    def _keys(cls, sites: dict[str, LocationConfig]) -> dict[str, LocationConfig]:
        for key in sites:
            if not re.match(_LOCATION_KEY, key):
                raise ValueError(
                    f"location key {key!r}: lower-case letters, digits, '-' or '_' (≤ 40)"
                )
        names: dict[str, str] = {}
        for key, site in sites.items():
            for name in (key, *site.aliases):
                other = names.setdefault(name.strip().casefold(), key)
                if other != key:
                    raise ValueError(f"{name!r} names both locations {other!r} and {key!r}")
        return sites

    @model_validator(mode="after")
    def _known(self) -> LocationsConfig:
        keys = list(self.sites) or [MAIN_LOCATION]
        if self.default and self.default not in keys:
            raise ValueError(f"default {self.default!r} is not a location ({', '.join(keys)})")
        for index, rule in enumerate(self.rules):
            if rule.location not in keys:
                raise ValueError(
                    f"rules.{index}.location {rule.location!r} is not a location "
                    f"({', '.join(keys)})"
                )
        return self

    @property
    def default_key(self) -> str:
        return self.default or next(iter(self.sites), MAIN_LOCATION)
