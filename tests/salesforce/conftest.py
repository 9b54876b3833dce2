"""The Salesforce sandbox over HTTPS on loopback, and chronoforce clients logged in to it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from chronoforce.config import SalesforceConfig, Secrets
from chronoforce.salesforce.client import SalesforceClient
from chronoforce.salesforce.connection import connect
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls

DEMO_CLIENT_ID = "chronoforce-demo"
DEMO_CLIENT_SECRET = "chronoforce-demo-secret"
JWT_CLIENT_ID = "chronoforce-jwt"


@dataclass
class Org:
    sandbox: Any
    url: str
    ca_file: Path
    clients: list[SalesforceClient] = field(default_factory=list)

    def config(self, **over: Any) -> SalesforceConfig:
        values: dict[str, Any] = {
            "instance_url": self.url,
            "login_url": self.url,
            "auth": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "ca_file": self.ca_file,
        }
        values.update(over)
        return SalesforceConfig(**values)

    def client(
        self, on_call: Any = None, secrets: Secrets | None = None, **over: Any
    ) -> SalesforceClient:
        """A logged-in client, closed before the server stops (keep-alive would delay it)."""
        secrets = secrets or Secrets(sf_client_secret=SecretStr(DEMO_CLIENT_SECRET))
        client = SalesforceClient(connect(self.config(**over), secrets, on_call=on_call))
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture(scope="session")
def jwt_app() -> tuple[str, str]:
    """(private key PEM, certificate PEM) of the JWT connected app every test org trusts."""
    return key_and_certificate()


def key_and_certificate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "chronoforce-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture()
def make_key_pair() -> Any:
    return key_and_certificate


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, jwt_app: tuple[str, str]
) -> Iterator[tuple[Any, BackgroundServer, Path]]:
    """One sandbox server per test module (starting one per test costs seconds); reset per test."""
    from chronoforce.sandbox.salesforce import ConnectedApp, SalesforceSandbox

    tls = ensure_tls(tmp_path_factory.mktemp("tls"))
    app = ConnectedApp(JWT_CLIENT_ID, certificate_pem=jwt_app[1])
    sandbox = SalesforceSandbox(db_path=":memory:", connected_apps=[app])
    # Idle keep-alive connections would hold a graceful shutdown for its full default.
    server = BackgroundServer(sandbox.app, tls=tls, options={"timeout_graceful_shutdown": 1})
    with server:
        yield sandbox, server, tls.ca_cert


@pytest.fixture()
def org(served: tuple[Any, BackgroundServer, Path]) -> Iterator[Org]:
    """The module's org, emptied: no records, no faults, a full API budget, no counts."""
    sandbox, server, ca_file = served
    sandbox.reset()
    sandbox.set_faults(lock_row_share=0.0, status_503_share=0.0)
    sandbox.set_api_budget(max=100_000, used=0)
    sandbox.reset_stats()
    org = Org(sandbox, server.url, ca_file)
    yield org
    org.close()


@pytest.fixture()
def client(org: Org) -> SalesforceClient:
    return org.client()


@pytest.fixture()
def orders() -> Any:
    """`orders(client, n, **fields)`: n orders ready to ship; returns their ids."""
    return make_orders


# --- records made through our own client ------------------------------------------------


def created_ids(results: list[Any]) -> list[str]:
    failed = [r for r in results if not r.success]
    assert not failed, failed[:3]
    return [r.id for r in results]


def make_orders(client: SalesforceClient, count: int, **fields: Any) -> list[str]:
    """`count` orders ready to ship (trigger condition true), one account and contact each 50."""
    (account,) = created_ids(
        client.collection(
            "create", "Account", [{"Name": "Boulangerie Dupont", "AccountNumber": "C-42"}]
        )
    )
    (contact,) = created_ids(
        client.collection(
            "create",
            "Contact",
            [
                {
                    "LastName": "Curie",
                    "FirstName": "Marie",
                    "Phone": "0145000001",
                    "AccountId": account,
                }
            ],
        )
    )
    orders = [
        {
            "AccountId": account,
            "ShipToContactId": contact,
            "EffectiveDate": "2024-05-01",
            "Status": "Draft",
            "ShippingStreet": f"{n + 1} rue de la Paix",
            "ShippingPostalCode": "75002",
            "ShippingCity": "Paris",
            "ShippingCountry": "France",
            "Chronopost_Ship__c": True,
            "Chronopost_Label_Status__c": "Requested",
            "Chronopost_Weight_Kg__c": 1.5,
            **fields,
        }
        for n in range(count)
    ]
    return created_ids(client.collection("create", "Order", orders))
