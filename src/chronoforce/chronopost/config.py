"""Where and as whom chronoforce talks to Chronopost: endpoint, credentials, service paths,
and the contract each product family ships under.

Plain frozen values built by the configuration layer; they must never read the environment or
files themselves, and a credentials value must never print its password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from chronoforce.config.sections import AccountFamily as AccountFamily
from chronoforce.config.sections import AccountsConfig as AccountsConfig
from chronoforce.config.sections import FamilyAccountConfig as FamilyAccountConfig
from chronoforce.config.sections import LocationConfig


class Service(StrEnum):
    """Chronopost's SOAP services chronoforce calls (names match `chronopost_wsdl()`)."""

    SHIPPING = "shipping"
    TRACKING = "tracking"
    QUICKCOST = "quickcost"
    RELAY = "relay"
    CRENEAU = "creneau"  # Chrono Precise slots (issue 23; [D] §2.5)

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
    Service.CRENEAU: "/rdv-cxf/services/CreneauServiceWS",  # SPEC-FACTS.md §1.1
}
_NAMESPACES = {
    Service.SHIPPING: "http://cxf.shipping.soap.chronopost.fr/",
    Service.TRACKING: "http://cxf.tracking.soap.chronopost.fr/",
    Service.QUICKCOST: "http://cxf.quickcost.soap.chronopost.fr/",
    Service.RELAY: "http://cxf.rechercheBt.soap.chronopost.fr/",
    Service.CRENEAU: "http://cxf.soap.ws.creneau.chronopost.fr/",
}


MAIN, BACKUP = "main", "backup"  # the two hosts an endpoint may have
# Chronopost's documented backup host, to use only while ws.chronopost.fr fails ([D] §2.2.1).
PRODUCTION_URL = "https://ws.chronopost.fr"
DOCUMENTED_BACKUP_URL = "https://ws2.chronopost.fr"


def backup_for(base_url: str, configured: str | None) -> str:
    """The backup host: as configured; unset, the documented one for production only (a
    sandbox or test URL never fails over to the real service)."""
    if configured is not None:
        return configured
    return DOCUMENTED_BACKUP_URL if base_url.rstrip("/") == PRODUCTION_URL else ""


@dataclass(frozen=True, slots=True)
class ChronopostEndpoint:
    """Base URL (production: https://ws.chronopost.fr), timeouts in seconds, TLS trust.

    `verify` is True (system CAs), False (never in production) or the path of a CA bundle
    (the sandbox's `ca.pem`). `backup_url` (production: DOCUMENTED_BACKUP_URL; "" = none) is
    used only while the main host is down: after `failover_after` failed calls in a row, for
    `failover_s` seconds (doubling while it stays down), then the main host is tried again.
    """

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify: bool | str = True
    max_connections: int = 16
    backup_url: str = ""
    failover_after: int = 3
    failover_s: float = 30.0

    def url(self, service: Service, host: str = MAIN) -> str:
        base = self.backup_url if host == BACKUP and self.backup_url else self.base_url
        return base.rstrip("/") + service.path

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts a lookup that must miss nothing asks: main, and the backup when set."""
        return (MAIN, BACKUP) if self.backup_url else (MAIN,)


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


@dataclass(frozen=True, slots=True)
class ChronopostAccounts:
    """The main credentials and those of each family that has its own contract."""

    main: ChronopostCredentials
    families: Mapping[AccountFamily, ChronopostCredentials] = field(default_factory=dict)
    # Shipper locations with a contract of their own (`locations.sites`, issue 23): key → theirs.
    locations: Mapping[str, ChronopostAccounts] = field(default_factory=dict)

    def for_location(self, key: str) -> ChronopostAccounts:
        """The contracts of a location; one without its own (or "") ships under these."""
        return self.locations.get(key, self) if key else self

    def for_family(self, family: AccountFamily | None) -> ChronopostCredentials:
        """A family's own credentials, falling back to the main account."""
        return self.families.get(family, self.main) if family is not None else self.main

    @property
    def every(self) -> tuple[ChronopostCredentials, ...]:
        """Main first, then each distinct family contract."""
        seen: dict[tuple[str, str], ChronopostCredentials] = {}
        located = [c for site in self.locations.values() for c in site.every]
        for credentials in (self.main, *self.families.values(), *located):
            seen.setdefault((credentials.account_number, credentials.sub_account), credentials)
        return tuple(seen.values())

    @property
    def passwords(self) -> tuple[str, ...]:
        every = (self.main, *self.families.values())
        located = [p for site in self.locations.values() for p in site.passwords]
        return tuple(dict.fromkeys([*(c.password for c in every if c.password), *located]))

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

    def with_locations(
        self, sites: Mapping[str, LocationConfig], passwords: Mapping[str, str] | None = None
    ) -> ChronopostAccounts:
        """These accounts plus the contracts of each location that has its own (issue 23).

        A location with its own `account_number` ships under it, its families under its own
        `accounts` (a family left out: its account); one without ships under the main account
        and families, its own `accounts` laid over them. Passwords: the location's (by key),
        else the main one."""
        located: dict[str, ChronopostAccounts] = {}
        for key, site in sites.items():
            if site.account_number is None and site.accounts == AccountsConfig():
                continue  # nothing of its own: the main contracts
            password = (passwords or {}).get(key) or self.main.password
            if site.account_number is not None:
                main = ChronopostCredentials(
                    site.account_number.strip(), password, site.sub_account.strip()
                )
                located[key] = ChronopostAccounts.build(main, site.accounts)
            else:
                own = ChronopostAccounts.build(self.main, site.accounts).families
                located[key] = ChronopostAccounts(self.main, {**self.families, **own})
        return ChronopostAccounts(self.main, self.families, located)
