"""SOAP 1.1 plumbing shared by every operation: write envelopes fast, read answers safely.

Text is escaped here and nowhere else; answers are parsed without DTDs, entities or network.
It must never do I/O, and never turn a Fault or broken XML into anything but a typed error:
truncated XML is transient (the next answer comes whole), a well-formed answer of the wrong
shape is a permanent CarrierAnswerError (the same answer would come back on every retry).
Errors come in the body with HTTP 200 (`errorCode`, 0 = OK); codes.py says what each means.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from decimal import Decimal

from lxml import etree

from chronoforce.chronopost.codes import error_for, is_empty_answer
from chronoforce.domain.errors import CarrierAnswerError, CarrierUnavailableError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"

_local = threading.local()


def parser() -> etree.XMLParser:
    """This thread's parser: answers are data only (no DTD, no entities, no network).

    One per thread because an lxml parser serves one thread at a time; sharing one would make
    concurrent workers queue on its lock.
    """
    current: etree.XMLParser | None = getattr(_local, "parser", None)
    if current is None:
        current = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _local.parser = current
    return current


# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates, FFFE/FFFF).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\r]")


# Either of the two: most values have neither, and one search tells (the request's hot path).
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """Text content for an element: markup escaped, characters XML cannot hold removed."""
    if _SPECIAL.search(text) is None:
        return text
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub("", text)
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    # \r would be normalised to \n by any parser; the character reference keeps it as sent.
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def element(name: str, value: str) -> str:
    """`<name>value</name>`, or nothing for an empty optional value."""
    return f"<{name}>{escape(value)}</{name}>" if value else ""


def elements(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f"<{n}>{escape(v)}</{n}>" for n, v in pairs if v)


def number(value: Decimal | int | float) -> str:
    """A decimal as xsd:float text without exponent ("2.5", "30", "0.125")."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def envelope(namespace: str, operation: str, inner: str) -> bytes:
    """A document/literal SOAP 1.1 request: the operation element qualified, children not."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body>'
        f'<ns0:{operation} xmlns:ns0="{namespace}">{inner}</ns0:{operation}>'
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def parse_envelope(content: bytes, operation: str) -> etree._Element:
    """The answer's root element; malformed XML or a SOAP Fault raise CarrierUnavailableError."""
    try:
        root = etree.fromstring(content, parser())
    except etree.XMLSyntaxError as exc:
        raise CarrierUnavailableError(
            f"malformed XML in the answer to {operation}: {exc}",
            code="CARRIER_BAD_XML",
            operation=operation,
        ) from exc
    body = root.find(_BODY)
    fault = body.find(_FAULT) if body is not None else None
    if fault is not None:
        raise CarrierUnavailableError(
            f"SOAP fault from {operation}: {fault.findtext('faultcode') or ''} "
            f"{fault.findtext('faultstring') or ''}".strip(),
            code="CARRIER_SOAP_FAULT",
            operation=operation,
        )
    return root


def result_of(root: etree._Element, namespace: str, operation: str) -> etree._Element:
    """The `<return>` element of `operationResponse`, after checking its errorCode."""
    result = root.find(f"{_BODY}/{{{namespace}}}{operation}Response/return")
    if result is None:
        raise CarrierAnswerError(
            f"no {operation}Response/return in the answer",
            code="CARRIER_BAD_ANSWER",
            operation=operation,
        )
    check_error(result, operation)
    return result


def error_code(result: etree._Element, operation: str) -> int:
    """The answer's errorCode (0 when absent); a non-number is an answer we cannot read."""
    raw = (result.findtext("errorCode") or "0").strip()
    try:
        return int(raw)
    except ValueError as exc:
        raise CarrierAnswerError(
            f"errorCode {raw!r} is not a number", code="CARRIER_BAD_ANSWER", operation=operation
        ) from exc


def check_error(result: etree._Element, operation: str) -> None:
    """Raise the typed error of a non-zero errorCode; "nothing found" codes (601) pass."""
    code = error_code(result, operation)
    if code != 0 and not is_empty_answer(code, operation):
        raise error_for(code, result.findtext("errorMessage") or "", operation)


def fields(parent: etree._Element) -> dict[str, str]:
    """Every simple child's text by name in one pass (the last wins for repeated names).

    One walk over the children costs less than a findtext() per wanted name: the hot parsers
    read records (events, parcels) this way.
    """
    return {
        child.tag: child.text or ""
        for child in parent
        if isinstance(child.tag, str) and child.text is not None
    }


def text(parent: etree._Element, name: str) -> str:
    """A child's stripped text, "" when absent."""
    value = parent.findtext(name)
    return value.strip() if value else ""
