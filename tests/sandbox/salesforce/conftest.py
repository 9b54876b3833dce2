"""Fixtures: one Salesforce sandbox over HTTPS per test module, wiped before every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce

from chronoforce.sandbox.salesforce import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SalesforceSandbox,
)
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import TlsFiles, ensure_tls

API = "61.0"
# Idle keep-alive clients would otherwise hold uvicorn's shutdown for its full wait.
FAST_STOP = {"timeout_graceful_shutdown": 0.5}


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("sf-tls"))


@pytest.fixture(scope="module")
def server(tls: TlsFiles) -> Iterator[tuple[SalesforceSandbox, BackgroundServer]]:
    sandbox = SalesforceSandbox()
    with BackgroundServer(sandbox.app, tls=tls, options=FAST_STOP) as running:
        yield sandbox, running


@pytest.fixture()
def sb(server: tuple[SalesforceSandbox, BackgroundServer]) -> SalesforceSandbox:
    sandbox = server[0]
    sandbox.reset()
    sandbox.set_faults(lock_row_share=0, latency=0, status_503_share=0, seed=0)
    sandbox.set_api_budget(max=100_000, used=0)
    sandbox.reset_stats()
    return sandbox


@pytest.fixture()
def base_url(server: tuple[SalesforceSandbox, BackgroundServer]) -> str:
    return server[1].url


@pytest.fixture()
def http(tls: TlsFiles) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = str(tls.ca_cert)
    # requests lets REQUESTS_CA_BUNDLE override session.verify unless trust_env is off.
    session.trust_env = False
    yield session
    session.close()


@pytest.fixture()
def token(sb: SalesforceSandbox, base_url: str, http: requests.Session) -> str:
    response = http.post(
        f"{base_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture()
def api(base_url: str, http: requests.Session, token: str) -> requests.Session:
    """A requests session that sends the bearer token; paths are relative to /services/data/v61.0."""
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def data_url(base_url: str, path: str) -> str:
    return f"{base_url}/services/data/v{API}/{path.lstrip('/')}"


@pytest.fixture()
def sf(base_url: str, token: str, http: requests.Session) -> Salesforce:
    return Salesforce(instance_url=base_url, session_id=token, session=http, version=API)


def ca_path(tls: TlsFiles) -> Path:
    return tls.ca_cert
