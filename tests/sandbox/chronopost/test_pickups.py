"""Pickup on demand for labeled parcels (creerEnlevementNational): chronoforce's client against
the sandbox, with request and answer validated against the OFFICIAL ShippingServiceWS.xsd."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from chronoforce.chronopost import ChronopostClient, ChronopostCredentials, ChronopostEndpoint
from chronoforce.domain.errors import CarrierAccountError, CarrierValidationError
from chronoforce.domain.models import Address, Contact, Parcel, Party, Pickup
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SHIPPER = Party(
    Address("Entrepot Gentilly", line1="3 avenue Gallieni", postal_code="94250", city="Gentilly",
            country="FR"),
    Contact("Expeditions", phone="0145000000", email="expeditions@example.com"),
)  # fmt: skip
PARCELS = (Parcel(Decimal("2.5"), Decimal(30), Decimal(20), Decimal(10)),)


def _client(base_url: str, password: str = DEMO_PASSWORD) -> ChronopostClient:
    return ChronopostClient(
        ChronopostEndpoint(base_url=base_url), ChronopostCredentials(DEMO_ACCOUNT, password)
    )


def _pickup(sandbox: ChronopostSandbox, days: int = 1) -> Pickup:
    day = sandbox.now().date() + dt.timedelta(days=days)
    return Pickup(day, dt.time(14, 0), dt.time(18, 0), "Quai 3")


@pytest.fixture(scope="module")
def official_schema(reference_dir: Path) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(reference_dir / "chronopost" / "ShippingServiceWS.xsd"))


def test_a_pickup_is_booked_and_both_messages_fit_the_official_schema(
    sandbox: ChronopostSandbox, base_url: str, official_schema: xmlschema.XMLSchema
) -> None:
    with _client(base_url) as client:
        booked = client.book_pickup(SHIPPER, _pickup(sandbox), PARCELS, (), "ORDER-42")
        call = client.last_call
    assert booked.number.startswith("ESD") and booked.pickup_id > 0
    assert booked.date is not None and booked.date.time() == dt.time(14, 0)
    [record] = sandbox.requests("creerEnlevementNational")
    assert record.error_code == 0 and "ORDER-42" in record.request
    official_schema.validate(record.request)  # what we sent
    assert call is not None
    body = etree.fromstring(call.response_xml.encode()).find(f"{{{SOAP_ENV}}}Body")
    assert body is not None
    official_schema.validate(etree.tostring(body[0]).decode())  # what the sandbox answered


def test_announced_parcels_must_belong_to_the_account(
    sandbox: ChronopostSandbox, base_url: str
) -> None:
    with _client(base_url) as client, pytest.raises(CarrierValidationError) as refused:
        client.book_pickup(SHIPPER, _pickup(sandbox), PARCELS, ("XP000000000FR",), "ORDER-43")
    assert refused.value.code == "CHRONOPOST_6"  # [D] §4.3.1 PICKUP_PACKAGES_ATTRIBUTE_WRONG
    assert refused.value.field == "listeColisAnnonces"
    assert refused.value.operation == "creerEnlevementNational"


def test_a_pickup_in_the_past_or_with_bad_credentials_is_refused(
    sandbox: ChronopostSandbox, base_url: str
) -> None:
    with _client(base_url) as client, pytest.raises(CarrierValidationError) as past:
        client.book_pickup(SHIPPER, _pickup(sandbox, days=-3), PARCELS, (), "ORDER-44")
    assert past.value.code == "CHRONOPOST_910" and past.value.field == "datePassage"
    with _client(base_url, "wrong") as client, pytest.raises(CarrierAccountError):
        client.book_pickup(SHIPPER, _pickup(sandbox), PARCELS, (), "ORDER-45")
    assert all("wrong" not in r.request for r in sandbox.requests())
