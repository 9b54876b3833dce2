"""Where and as whom chronoforce talks to Chronopost: endpoint, credentials, service paths,
and the contract each product family ships under.

Plain frozen values built by the configuration layer; they must never read the environment or
files themselves, and a credentials value must never print its password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Service(StrEnum):
    """Chronopost's SOAP services chronoforce calls (names match `chronopost_wsdl()`)."""

    SHIPPING = "shipping"
    TRACKING = "tracking"
    QUICKCOST = "quickcost"
    RELAY = "relay"

    @property
    def path(self) -> str:
        return _PATHS[self]

    @property
    def namespace(self) -> str:
        return _NAMESPACES[self]


# Paths and namespaces: ../shared/reference/chronopost/NOTES.md, "Endpoints".
_PATHS = {
    Service.SHIPPING: "/shipping-cxf/ShippingServiceWS",
    Service.TRACKING: "/tracking-cxf/TrackingServiceWS",
    Service.QUICKCOST: "/quickcost-cxf/QuickcostServiceWS",
    Service.RELAY: "/recherchebt-ws-cxf/PointRelaisServiceWS",
}
_NAMESPACES = {
    Service.SHIPPING: "http://cxf.shipping.soap.chronopost.fr/",
    Service.TRACKING: "http://cxf.tracking.soap.chronopost.fr/",
    Service.QUICKCOST: "http://cxf.quickcost.soap.chronopost.fr/",
    Service.RELAY: "http://cxf.rechercheBt.soap.chronopost.fr/",
}


@dataclass(frozen=True, slots=True)
class ChronopostEndpoint:
    """Base URL (production: https://ws.chronopost.fr), timeouts in seconds, TLS trust.

    `verify` is True (system CAs), False (never in production) or the path of a CA bundle
    (the sandbox's `ca.pem`).
    """

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify: bool | str = True
    max_connections: int = 16

    def url(self, service: Service) -> str:
        return self.base_url.rstrip("/") + service.path


@dataclass(frozen=True, slots=True)
class ChronopostCredentials:
    """Chronopost account number (digits), its password (the Chronotrace code), sub-account."""

    account_number: str
    password: str = field(repr=False)
    sub_account: str = ""

    def __post_init__(self) -> None:
        # The shipping schema types accountNumber and subAccount as xsd:int.
        if not self.account_number.strip().isdigit():
            raise ValueError("a Chronopost account number is digits only")
        if self.sub_account and not self.sub_account.strip().isdigit():
            raise ValueError("a Chronopost sub-account is digits only")


# --- accounts per product family -----------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class ChronopostAccounts:
    """The main credentials and those of each family that has its own contract."""

    main: ChronopostCredentials
    families: Mapping[AccountFamily, ChronopostCredentials] = field(default_factory=dict)

    def for_family(self, family: AccountFamily | None) -> ChronopostCredentials:
        """A family's own credentials, falling back to the main account."""
        return self.families.get(family, self.main) if family is not None else self.main

    @property
    def every(self) -> tuple[ChronopostCredentials, ...]:
        """Main first, then each distinct family contract."""
        seen: dict[tuple[str, str], ChronopostCredentials] = {}
        for credentials in (self.main, *self.families.values()):
            seen.setdefault((credentials.account_number, credentials.sub_account), credentials)
        return tuple(seen.values())

    @property
    def passwords(self) -> tuple[str, ...]:
        every = (self.main, *self.families.values())
        return tuple(dict.fromkeys(c.password for c in every if c.password))

    @classmethod
    def build(
        cls,
        main: ChronopostCredentials,
        config: AccountsConfig,
        passwords: Mapping[AccountFamily, str] | None = None,
    ) -> ChronopostAccounts:
        """Credentials of every configured family; a family without a password uses main's."""
        families: dict[AccountFamily, ChronopostCredentials] = {}
        for family in AccountFamily:
            account = config.family(family)
            if account is not None:
                password = (passwords or {}).get(family) or main.password
                families[family] = ChronopostCredentials(
                    account.account_number.strip(), password, account.sub_account.strip()
                )
        return cls(main, families)
