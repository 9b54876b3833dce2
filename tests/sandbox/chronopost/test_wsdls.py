"""chronoforce's own Chronopost WSDLs match the official schemas: operations, names, namespaces.

Each WSDL is loaded with zeep (as our client does) and its schema is compared, element by
element, with the reference XSD from ../shared/reference/chronopost/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import xmlschema
import zeep
from lxml import etree

from chronoforce.schemas import chronopost_wsdl

XSD = "http://www.w3.org/2001/XMLSchema"

SERVICES = {
    "shipping": (
        "http://cxf.shipping.soap.chronopost.fr/",
        "ShippingServiceWS.xsd",
        {
            "shippingMultiParcelV5",
            "shippingMultiParcelV4",
            "getReservedSkybill",
            "getReservedSkybillWithTypeAndMode",
            "creerEnlevementNational",
            "annulerEnlevements",
        },
    ),
    "tracking": (
        "http://cxf.tracking.soap.chronopost.fr/",
        "TrackingServiceWS.xsd",
        {
            "trackSkybillV2",
            "trackWithSenderRef",
            "cancelSkybill",
            "searchPOD",
            "searchPODWithSenderRef",
            "trackSearch",
        },
    ),
    "quickcost": (
        "http://cxf.quickcost.soap.chronopost.fr/",
        "QuickcostServiceWS.xsd",
        {"quickCost", "calculateProducts"},
    ),
}
PATHS = {
    "shipping": "/shipping-cxf/ShippingServiceWS",
    "tracking": "/tracking-cxf/TrackingServiceWS",
    "quickcost": "/quickcost-cxf/QuickcostServiceWS",
    "relay": "/recherchebt-ws-cxf/PointRelaisServiceWS",
}


def _operations(client: zeep.Client) -> dict[str, Any]:
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    return dict(port.binding._operations)


def _embedded_schema(wsdl: Path) -> xmlschema.XMLSchema:
    root = etree.parse(str(wsdl)).getroot()
    (schema,) = root.iter(f"{{{XSD}}}schema")
    return xmlschema.XMLSchema(etree.tostring(schema).decode())


def _shape(element: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, ...]:
    """Everything a client sees of an element: name, type, occurrences, and its children's shapes."""
    xsd_type = getattr(element, "type", None)
    if xsd_type is None:  # the xs:any inside xs:anyType (annulerEnlevements' statut entries)
        return ("any", None, element.min_occurs, element.max_occurs, False, ())
    type_name = xsd_type.name if xsd_type.name else None
    children: tuple[Any, ...] = ()
    if xsd_type.is_complex() and xsd_type.has_complex_content() and type_name not in seen:
        inner = seen | {type_name} if type_name else seen
        children = tuple(_shape(child, inner) for child in xsd_type.content.iter_elements())
    return (
        element.name,
        type_name,
        element.min_occurs,
        element.max_occurs,
        bool(element.nillable),
        children,
    )


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_wsdl_operations_match_the_official_element_names_and_namespace(
    service: str, reference_dir: Path
) -> None:
    namespace, xsd_file, expected_ops = SERVICES[service]
    client = zeep.Client(str(chronopost_wsdl(service)))
    operations = _operations(client)
    assert set(operations) == expected_ops
    reference = xmlschema.XMLSchema(str(reference_dir / "chronopost" / xsd_file))
    for name, operation in operations.items():
        request = operation.input.body.qname
        response = operation.output.body.qname
        assert (request.namespace, request.localname) == (namespace, name)
        assert (response.namespace, response.localname) == (namespace, f"{name}Response")
        for qname in (request, response):
            ours = [name for name, _ in client.get_element(qname).type.elements]
            official = reference.elements[qname.localname]
            assert ours == [c.local_name for c in official.type.content.iter_elements()]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_wsdl_schema_has_the_official_types_order_and_occurrences(
    service: str, reference_dir: Path
) -> None:
    namespace, xsd_file, expected_ops = SERVICES[service]
    ours = _embedded_schema(chronopost_wsdl(service))
    reference = xmlschema.XMLSchema(str(reference_dir / "chronopost" / xsd_file))
    assert ours.target_namespace == reference.target_namespace == namespace
    for op in expected_ops:
        for name in (op, f"{op}Response"):
            assert _shape(ours.elements[name]) == _shape(reference.elements[name]), name
    # Every named type we declare exists under the same name in the official schema.
    assert set(ours.types) <= set(reference.types)


def test_wsdl_element_form_is_unqualified_inside_operations() -> None:
    for service in PATHS:
        schema = _embedded_schema(chronopost_wsdl(service))
        assert schema.element_form_default == "unqualified"


@pytest.mark.parametrize("service", sorted(PATHS))
def test_wsdl_is_soap11_document_literal_with_empty_soap_action(service: str) -> None:
    client = zeep.Client(str(chronopost_wsdl(service)))
    (svc,) = client.wsdl.services.values()
    (port,) = svc.ports.values()
    assert port.binding_options["address"].endswith(PATHS[service])
    assert type(port.binding).__name__ == "Soap11Binding"
    for operation in _operations(client).values():
        assert operation.style == "document"
        assert operation.soapaction == ""
        assert operation.input.body.type is not None


def test_relay_wsdl_offers_recherche_point_chronopost_in_the_recherche_bt_namespace() -> None:
    client = zeep.Client(str(chronopost_wsdl("relay")))
    operation = _operations(client)["recherchePointChronopost"]
    qname = operation.input.body.qname
    assert qname.namespace == "http://cxf.rechercheBt.soap.chronopost.fr/"
    names = [e[0] for e in client.get_element(qname).type.elements]
    assert names[:4] == ["accountNumber", "password", "address", "zipCode"]


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Chronopost service"):
        chronopost_wsdl("pickup")
