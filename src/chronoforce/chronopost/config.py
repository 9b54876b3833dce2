"""Where and as whom chronoforce talks to Chronopost: endpoint, credentials, service paths.

Plain frozen values built by the configuration layer; they must never read the environment or
files themselves, and a credentials value must never print its password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
