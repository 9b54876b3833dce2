"""Fixtures for the Chronopost sandbox tests: one sandbox server per session, reset per test, and
zeep clients built from the OFFICIAL schemas (a small WSDL importing the reference XSDs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport

from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.chronopost.relay import RELAY_POINTS
from chronoforce.sandbox.server import BackgroundServer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OFFICIAL = {
    "shipping": (
        "http://cxf.shipping.soap.chronopost.fr/",
        "ShippingServiceWS.xsd",
        "/shipping-cxf/ShippingServiceWS",
        [
            "shippingMultiParcelV5",
            "shippingMultiParcelV4",
            "getReservedSkybill",
            "getReservedSkybillWithTypeAndMode",
        ],
    ),
    "tracking": (
        "http://cxf.tracking.soap.chronopost.fr/",
        "TrackingServiceWS.xsd",
        "/tracking-cxf/TrackingServiceWS",
        [
            "trackSkybillV2",
            "trackWithSenderRef",
            "cancelSkybill",
            "searchPOD",
            "searchPODWithSenderRef",
            "trackSearch",
        ],
    ),
    "quickcost": (
        "http://cxf.quickcost.soap.chronopost.fr/",
        "QuickcostServiceWS.xsd",
        "/quickcost-cxf/QuickcostServiceWS",
        ["quickCost", "calculateProducts"],
    ),
}


def official_wsdl(service: str, reference_dir: Path, base_url: str) -> str:
    """A WSDL around the official XSD: only messages, port type, binding and address are ours."""
    namespace, xsd, path, operations = OFFICIAL[service]
    xsd_path = (reference_dir / "chronopost" / xsd).resolve()
    messages = "".join(
        f'<wsdl:message name="{name}"><wsdl:part name="parameters" element="tns:{name}"/></wsdl:message>'
        for op in operations
        for name in (op, f"{op}Response")
    )
    port_ops = "".join(
        f'<wsdl:operation name="{op}"><wsdl:input message="tns:{op}"/>'
        f'<wsdl:output message="tns:{op}Response"/></wsdl:operation>'
        for op in operations
    )
    binding_ops = "".join(
        f'<wsdl:operation name="{op}"><soap:operation soapAction=""/>'
        '<wsdl:input><soap:body use="literal"/></wsdl:input>'
        '<wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>'
        for op in operations
    )
    return f"""<?xml version="1.0"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="{namespace}" targetNamespace="{namespace}">
  <wsdl:types><xsd:schema><xsd:import namespace="{namespace}" schemaLocation="{xsd_path}"/></xsd:schema></wsdl:types>
  {messages}
  <wsdl:portType name="PT">{port_ops}</wsdl:portType>
  <wsdl:binding name="B" type="tns:PT"><soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>{binding_ops}</wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="tns:B"><soap:address location="{base_url}{path}"/></wsdl:port></wsdl:service>
</wsdl:definitions>"""


@dataclass
class OfficialClient:
    """A zeep client on the official schema, remembering the raw response for validation."""

    client: zeep.Client
    history: HistoryPlugin
    schema: xmlschema.XMLSchema

    @property
    def service(self) -> Any:
        return self.client.service

    def last_body(self) -> etree._Element:
        envelope = self.history.last_received["envelope"]
        (element,) = envelope.find(f"{{{SOAP_ENV}}}Body")
        return element

    def assert_valid_response(self) -> etree._Element:
        """The last response body element, validated against the official XSD."""
        element = self.last_body()
        self.schema.validate(etree.tostring(element).decode())
        return element


@pytest.fixture(scope="session")
def chronopost_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ChronopostSandbox, BackgroundServer]]:
    sandbox = ChronopostSandbox(
        db_path=tmp_path_factory.mktemp("chronopost") / "sandbox.db", seed=7
    )
    server = sandbox.start()
    yield sandbox, server
    server.stop()
    sandbox.close()


@pytest.fixture()
def sandbox(chronopost_server: tuple[ChronopostSandbox, BackgroundServer]) -> ChronopostSandbox:
    sb, _ = chronopost_server
    sb.reset()
    return sb


@pytest.fixture()
def base_url(
    chronopost_server: tuple[ChronopostSandbox, BackgroundServer], sandbox: ChronopostSandbox
) -> str:
    return chronopost_server[1].url


@pytest.fixture(scope="session")
def _official_clients(
    chronopost_server: tuple[ChronopostSandbox, BackgroundServer],
    reference_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, OfficialClient]:
    folder = tmp_path_factory.mktemp("official-wsdl")
    clients = {}
    for service, (_, xsd, _, _) in OFFICIAL.items():
        path = folder / f"{service}.wsdl"
        path.write_text(official_wsdl(service, reference_dir, chronopost_server[1].url))
        history = HistoryPlugin()
        client = zeep.Client(str(path), plugins=[history], transport=Transport(timeout=10))
        schema = xmlschema.XMLSchema(str(reference_dir / "chronopost" / xsd))
        clients[service] = OfficialClient(client, history, schema)
    return clients


@pytest.fixture()
def official(
    _official_clients: dict[str, OfficialClient], sandbox: ChronopostSandbox
) -> Callable[[str], OfficialClient]:
    """`official("shipping")`: a zeep client built from the official XSD, aimed at the sandbox."""
    return _official_clients.__getitem__


# --- request builders ---------------------------------------------------------------------------

DEMO = {"account": "19869502", "password": "255562"}


def relay_recipient(point_id: str) -> dict[str, Any]:
    """recipientValue of a relay parcel as the documents want it: the point's name and address,
    who collects in Name2, e-mail and mobile ([D] §3.2)."""
    point = RELAY_POINTS[point_id]
    return {
        "recipientAdress1": point.address,
        "recipientCity": point.city,
        "recipientCountry": point.country,
        "recipientName": point.name,
        "recipientName2": "Claire Martin",
        "recipientEmail": "claire@example.fr",
        "recipientPhone": "0612345678",
        "recipientMobilePhone": "0612345678",
        "recipientPreAlert": 22,
        "recipientZipCode": point.zip,
    }


def shipment_request(
    *,
    recipient: dict[str, Any] | None = None,
    skybill: dict[str, Any] | None = None,
    ref: dict[str, Any] | None = None,
    parcels: int = 1,
    mode: str = "PDF",
    with_reservation: int = 1,  # what chronoforce sends: the label is stored ([D] §2.3.2.b8)
    password: str = DEMO["password"],
    account: int = int(DEMO["account"]),
    **extra: Any,
) -> dict[str, Any]:
    """Arguments of shippingMultiParcelV5 for a valid Chrono 13 parcel, with overrides. Naming
    a known relay point in `ref` makes the recipient that point, as a relay label needs."""
    relay_id = (ref or {}).get("idRelais")
    relay = relay_recipient(relay_id) if relay_id in RELAY_POINTS else {}
    recipient_value = {
        "recipientAdress1": "72 rue Reine Elisabeth",
        "recipientCity": "Menton",
        "recipientCountry": "FR",
        "recipientName": "HautSide",
        "recipientPreAlert": 0,
        "recipientZipCode": "06500",
        **relay,
        **(recipient or {}),
    }
    skybill_value = {
        "objectType": "MAR",
        "productCode": "01",
        "service": "0",
        "shipHour": 10,
        "weight": 2.5,
        "weightUnit": "KGM",
        "height": 10,
        "length": 20,
        "width": 15,
        **(skybill or {}),
    }
    # Several parcels: bulkNumber and skybillRank on each, always both ([D] §2.3.2.b7).
    ranks = [{"bulkNumber": parcels, "skybillRank": i} for i in range(1, parcels + 1)]
    skybills = [{**skybill_value, **rank} for rank in ranks] if parcels > 1 else [skybill_value]
    return {
        "headerValue": {"accountNumber": account, "idEmit": "CHRFR", "subAccount": 0},
        "shipperValue": [
            {
                "shipperAdress1": "28 rue du Clair Bocage",
                "shipperCity": "La Seyne-sur-Mer",
                "shipperCivility": "M",
                "shipperCountry": "FR",
                "shipperName": "Chef Royale",
                "shipperPreAlert": 0,
                "shipperZipCode": "83500",
            }
        ],
        "customerValue": {"customerPreAlert": 0},
        "recipientValue": [recipient_value],
        "refValue": [
            {
                "shipperRef": "SO-0001",
                **({"recipientRef": relay_id} if relay else {}),
                **(ref or {}),
            }
        ],
        "skybillValue": skybills,
        "skybillParamsValue": {"mode": mode, "withReservation": with_reservation},
        "password": password,
        "modeRetour": "2",  # we print our labels ([D] §2.3.2.b9)
        "numberOfParcel": parcels,
        "version": "2.0",
        "multiParcel": "Y" if parcels > 1 else "N",
        **extra,
    }


@pytest.fixture()
def ship(official: Callable[[str], OfficialClient]) -> Callable[..., Any]:
    """Create a shipment through the official-schema client; the response is schema-checked."""

    def create(operation: str = "shippingMultiParcelV5", **overrides: Any) -> Any:
        client = official("shipping")
        result = getattr(client.service, operation)(**shipment_request(**overrides))
        client.assert_valid_response()
        return result

    return create
