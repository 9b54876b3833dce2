"""SOAP 1.1 plumbing for the sandbox: read an envelope, check it against our WSDL, write answers.

Like Apache CXF it answers a SOAP Fault for XML that is not well-formed or does not match the
schema; business errors are never faults (they go in the body). It must never log passwords.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from lxml import etree

from chronoforce.schemas import chronopost_wsdl

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
CONTENT_TYPE = "text/xml; charset=UTF-8"

# No DTDs, no entities, no network: a sandbox must not be a XXE target.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)


class SoapFault(Exception):
    """A request the SOAP stack refuses: answered with a SOAP 1.1 Fault (HTTP 500)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ServiceSchema:
    """The request side of one service, read from chronoforce's own WSDL."""

    name: str
    namespace: str
    operations: frozenset[str]
    schema: etree.XMLSchema

    def validate(self, operation: etree._Element) -> str:
        """The operation's local name, or a SoapFault as CXF would answer."""
        qname = etree.QName(operation)
        if qname.namespace != self.namespace or qname.localname not in self.operations:
            raise SoapFault(
                "soap:Client",
                f"Unexpected wrapper element {{{qname.namespace or ''}}}{qname.localname} found. "
                f"Expected one of the operations of {{{self.namespace}}}{self.name}.",
            )
        if not self.schema.validate(operation):
            # lxml-stubs do not type the error log's entries.
            last = self.schema.error_log.last_error  # type: ignore[attr-defined]
            message = last.message if last is not None else "invalid request"
            raise SoapFault("soap:Client", f"Unmarshalling Error: {message}")
        return qname.localname


@cache
def service_schema(service: str) -> ServiceSchema:
    root = etree.parse(str(chronopost_wsdl(service)), _PARSER).getroot()
    schema_el = root.find(f"{{{WSDL}}}types/{{{XSD}}}schema")
    assert schema_el is not None, f"{service}.wsdl has no embedded schema"
    namespace = root.get("targetNamespace", "")
    operations = frozenset(
        op.get("name", "") for op in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation")
    )
    # Re-parse the schema as its own document so its in-scope prefixes (tns, xsd) travel along.
    schema_doc = etree.fromstring(etree.tostring(schema_el), _PARSER)
    port_type = root.find(f"{{{WSDL}}}portType")
    name = port_type.get("name", service) if port_type is not None else service
    return ServiceSchema(name, namespace, operations, etree.XMLSchema(schema_doc))


def read_operation(body: bytes) -> etree._Element:
    """The single element inside soap:Body, or a SoapFault."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("soap:Client", f"Error reading XMLStreamReader: {exc}") from exc
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("soap:VersionMismatch", "A SOAP 1.1 message must have soap:Envelope.")
    body_el = root.find(f"{{{SOAP_ENV}}}Body")
    children = [] if body_el is None else [c for c in body_el if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault("soap:Client", "The SOAP body must hold exactly one operation element.")
    return children[0]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return repr(round(value, 2))
    if isinstance(value, bytes):
        return value.decode("ascii")
    return str(value)


def add(parent: etree._Element, name: str, value: Any = None) -> etree._Element:
    """Append an unqualified child (Chronopost's elementFormDefault) and return it."""
    child = etree.SubElement(parent, name)
    if value is not None:
        child.text = _text(value)
    return child


def add_all(parent: etree._Element, pairs: list[tuple[str, Any]]) -> None:
    """Append children in the given (schema) order, leaving out those whose value is None."""
    for name, value in pairs:
        if value is not None:
            add(parent, name, value)


def response(namespace: str, operation: str) -> tuple[etree._Element, etree._Element]:
    """A new envelope and its `<return>` element for `operation`'s response."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    wrapper = etree.SubElement(
        body, f"{{{namespace}}}{operation}Response", nsmap={"ns2": namespace}
    )
    return envelope, etree.SubElement(wrapper, "return")


def serialize(envelope: etree._Element) -> bytes:
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def fault(code: str, message: str) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    element = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    add(element, "faultcode", code)
    add(element, "faultstring", message)
    return serialize(envelope)


def redacted(operation: etree._Element) -> str:
    """The request as text with every password replaced, for the request log."""
    copy = etree.fromstring(etree.tostring(operation), _PARSER)
    for element in copy.iter("password"):
        element.text = "****"
    return etree.tostring(copy, encoding="unicode")
