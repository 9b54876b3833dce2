"""Fixtures for the Chronopost adapter tests: real shipment requests, the official XSDs, and one
sandbox server per session (reset before each test) with a client pointed at it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from lxml import etree

from chronoforce.chronopost import (
    CarrierCall,
    ChronopostClient,
    ChronopostCredentials,
    ChronopostEndpoint,
)
from chronoforce.domain.models import (
    Address,
    Civility,
    Contact,
    Parcel,
    Party,
    References,
    ShipmentOptions,
    ShipmentRequest,
)
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.server import BackgroundServer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CREDENTIALS = ChronopostCredentials(DEMO_ACCOUNT, DEMO_PASSWORD)

# Recipients already normalized as address.py would send them.
RECIPIENTS: dict[str, Address] = {
    "FR": Address("Claire Martin", "", "72 rue Reine Elisabeth", "Bat. B", "06500", "MENTON", "FR"),
    "MC": Address(
        "Hôtel Bellevue", "", "3 boulevard Princesse Charlotte", "", "98000", "MONACO", "MC"
    ),
    "BE": Address("Jan Peeters", "", "Rue de la Loi 16", "", "1000", "BRUXELLES", "BE"),
    "DE": Address(
        "Anna Schmidt", "Schmidt GmbH", "Invalidenstrasse 117", "", "10115", "BERLIN", "DE"
    ),
    "GB": Address("Oliver Smith", "", "10 Downing Street", "", "SW1A 2AA", "LONDON", "GB"),
    "US": Address(
        "Emma Johnson", "", "350 Fifth Avenue", "Suite 3100", "10118", "NEW YORK", "US", "NY"
    ),
}
SHIPPER = Party(
    Address(
        "Boutique Lumière", "", "28 rue du Clair Bocage", "", "83500", "LA SEYNE SUR MER", "FR"
    ),
    Contact("Jean Dupont", Civility.MONSIEUR, phone="0494000000", email="expeditions@example.com"),
)


def make_request(
    product: str = "01",
    country: str = "FR",
    parcels: int = 1,
    options: ShipmentOptions | None = None,
    order_number: str = "SO-000123",
    recipient: Address | None = None,
) -> ShipmentRequest:
    """A shipment of `parcels` parcels from the shipper to a recipient in `country`."""
    weights = (Decimal("2.5"), Decimal("0.75"), Decimal("12"))
    return ShipmentRequest(
        shipper=SHIPPER,
        recipient=Party(
            recipient or RECIPIENTS[country],
            Contact(
                "Claire Martin", Civility.MADAME, mobile="0612345678", email="claire@example.fr"
            ),
        ),
        parcels=tuple(
            Parcel(weights[i % 3], Decimal(30), Decimal(20), Decimal(10))
            if i
            else Parcel(weights[0])
            for i in range(parcels)
        ),
        product_code=product,
        ship_date=dt.date(2024, 3, 4),
        references=References(order_number, customer_id="CUST-42"),
        options=options or ShipmentOptions(),
    )


@pytest.fixture()
def request_factory() -> Callable[..., ShipmentRequest]:
    return make_request


@pytest.fixture(scope="session")
def official_schemas(reference_dir: Path) -> dict[str, xmlschema.XMLSchema]:
    folder = reference_dir / "chronopost"
    return {
        "shipping": xmlschema.XMLSchema(str(folder / "ShippingServiceWS.xsd")),
        "tracking": xmlschema.XMLSchema(str(folder / "TrackingServiceWS.xsd")),
        "quickcost": xmlschema.XMLSchema(str(folder / "QuickcostServiceWS.xsd")),
    }


def operation_element(envelope: bytes) -> etree._Element:
    """The single element inside soap:Body of a request we built."""
    root = etree.fromstring(envelope)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    (body,) = root.findall(f"{{{SOAP_ENV}}}Body")
    (operation,) = list(body)
    return operation


def assert_valid(schema: xmlschema.XMLSchema, envelope: bytes) -> etree._Element:
    """Validate the operation element of `envelope` against an official XSD (raises if not)."""
    operation = operation_element(envelope)
    schema.validate(etree.tostring(operation).decode())
    return operation


@pytest.fixture(scope="session")
def chronopost_sandbox() -> Iterator[tuple[ChronopostSandbox, BackgroundServer]]:
    sandbox = ChronopostSandbox(db_path=":memory:")
    server = BackgroundServer(sandbox.app).start()
    yield sandbox, server
    server.stop()
    sandbox.close()


@pytest.fixture()
def sandbox(chronopost_sandbox: tuple[ChronopostSandbox, BackgroundServer]) -> ChronopostSandbox:
    sb, _ = chronopost_sandbox
    sb.reset()
    return sb


@pytest.fixture()
def sandbox_url(
    sandbox: ChronopostSandbox, chronopost_sandbox: tuple[ChronopostSandbox, BackgroundServer]
) -> str:
    return chronopost_sandbox[1].url


class Calls(list[CarrierCall]):
    """Every CarrierCall the client reported through on_call."""


@pytest.fixture()
def calls() -> Calls:
    return Calls()


@pytest.fixture()
def client(sandbox_url: str, calls: Calls) -> Iterator[ChronopostClient]:
    endpoint = ChronopostEndpoint(sandbox_url, connect_timeout=2.0, read_timeout=5.0)
    with ChronopostClient(endpoint, CREDENTIALS, on_call=calls.append) as chronopost:
        yield chronopost


def client_for(url: str, password: str = DEMO_PASSWORD, **endpoint: Any) -> ChronopostClient:
    return ChronopostClient(
        ChronopostEndpoint(url, **endpoint), ChronopostCredentials(DEMO_ACCOUNT, password)
    )
