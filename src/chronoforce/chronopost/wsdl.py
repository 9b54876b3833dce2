"""zeep over chronoforce's own Chronopost WSDLs: loaded once per process, used offline.

zeep serializes and decodes the rarely called operations (and is the yardstick the fast codec
is tested against). It must never send anything: our transport does the HTTP.

Answers are read leniently (zeep `strict=False`, any sequence order): an element the WSDL does
not know is ignored, since Chronopost adds fields without notice. What still cannot be read is
a CarrierAnswerError: permanent, with the payload kept, never retried as if the network failed.
"""

from __future__ import annotations

import threading
from typing import Any

import zeep
from lxml import etree
from zeep.wsdl.definitions import Binding

from chronoforce.chronopost.config import Service
from chronoforce.domain.errors import CarrierAnswerError, CarrierValidationError
from chronoforce.schemas import chronopost_wsdl

_lock = threading.Lock()
# zeep ships py.typed but leaves its constructors unannotated.
_LENIENT = zeep.Settings(strict=False, xsd_ignore_sequence_order=True)
_clients: dict[Service, zeep.Client] = {}


def zeep_client(service: Service) -> zeep.Client:
    """The process-wide zeep client of one service (first call parses the WSDL, ~5 ms)."""
    client = _clients.get(service)
    if client is None:
        with _lock:
            client = _clients.get(service)
            if client is None:
                wsdl = str(chronopost_wsdl(service.value))
                client = zeep.Client(wsdl, settings=_LENIENT)  # type: ignore[no-untyped-call]
                _clients[service] = client
    return client


def _binding(service: Service) -> Binding:
    return next(iter(zeep_client(service).wsdl.bindings.values()))


def zeep_request(service: Service, operation: str, values: dict[str, Any]) -> bytes:
    """The envelope zeep writes for `operation` with these values (zeep checks required parts)."""
    try:
        # The binding's operation serializes directly: Client.create_message would take a
        # request field named `service` (the relay search has one) for its own argument.
        message = _binding(service).get(operation).create(**values).content  # type: ignore[no-untyped-call]
    except (zeep.exceptions.Error, ValueError) as exc:
        # Our values broke the schema (a required part missing, a wrong type, a control
        # character lxml refuses with ValueError): the same input can never pass.
        raise CarrierValidationError(
            f"{operation} request does not fit the WSDL: {exc}",
            code="CARRIER_REQUEST_INVALID",
            operation=operation,
        ) from exc
    return bytes(etree.tostring(message, xml_declaration=True, encoding="UTF-8"))


def zeep_result(service: Service, operation: str, root: etree._Element) -> Any:
    """The decoded `return` of an answer (zeep objects: attribute access, Python types)."""
    try:
        operation_ = _binding(service).get(operation)  # type: ignore[no-untyped-call]
        return operation_.process_reply(root)
    except (zeep.exceptions.Error, ValueError, TypeError) as exc:
        # A value of the wrong type (text where a number is due) even read leniently.
        raise CarrierAnswerError(
            f"answer to {operation} does not match the WSDL: {exc}",
            code="CARRIER_BAD_ANSWER",
            operation=operation,
        ) from exc
