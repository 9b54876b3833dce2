"""The sandbox's rules for return shipments (shippingMultiParcelV5/V4 with a return product).

As Chronopost documents a return (SPEC-FACTS §2.5 "Returns", [D] §3.6, [S] Annexe 8): a return
product (4R, 4S, 4T, 4U Chrono Reverse in France; 3T Chrono Retour Europe), label mode PPR, the
consumer as the shipper and the merchant as the recipient, and a `modeRetour` of 1 (label
e-mailed to shipperEmail), 2 (not sent) or 3 (post-office machine: shipperEmail and a mobile).
Refusals are errorCode 33 with the field named, like the sandbox's other checks; telling the
consumer from the merchant by "shipper is not the account holder (customerValue)" is the
sandbox's own reading (unconfirmed, docs/sandbox-chronopost.md). It never creates anything.
"""

from __future__ import annotations

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError
from chronoforce.sandbox.chronopost.tables import EU_COUNTRIES, INVALID_DATA

DOMESTIC_RETURNS = frozenset({"4R", "4S", "4T", "4U"})  # products.csv, family "return"
EUROPE_RETURNS = frozenset({"3T"})
RETURN_PRODUCTS = DOMESTIC_RETURNS | EUROPE_RETURNS
RETURN_MODES_RETOUR = frozenset({"1", "2", "3"})  # 4 is Shop2Shop's e-mail ([D] §4.5)
DOMESTIC = frozenset({"FR", "MC"})


def _text(element: etree._Element | None, name: str) -> str:
    value = element.findtext(name) if element is not None else None
    return value.strip() if value else ""


def _refuse(field: str, why: str) -> BusinessError:
    return BusinessError(INVALID_DATA, f"Invalid data: {field} ({why})")


def check_return(op: etree._Element) -> None:
    """Refuse a shipment with a return product that breaks the documented return rules."""
    codes = {_text(s, "productCode") for s in op.findall("skybillValue")}
    returns = codes & RETURN_PRODUCTS
    if not returns:
        return
    if codes - RETURN_PRODUCTS:
        raise _refuse("productCode", "return and outbound products in one call")
    modes = _text(op.find("skybillParamsValue"), "mode").upper().split("|")
    if "PPR" not in modes:
        raise _refuse("mode", "a return label is made with mode PPR")
    mode_retour = _text(op, "modeRetour")
    if mode_retour not in RETURN_MODES_RETOUR:
        raise _refuse("modeRetour", "1, 2 or 3 for a return")
    shipper, customer = op.find("shipperValue"), op.find("customerValue")
    _check_consumer(shipper, customer, mode_retour)
    _check_route(shipper, op.findall("recipientValue"), returns)


def _check_consumer(
    shipper: etree._Element | None, customer: etree._Element | None, mode_retour: str
) -> None:
    same = (_text(shipper, "shipperName"), _text(shipper, "shipperZipCode")) == (
        _text(customer, "customerName"),
        _text(customer, "customerZipCode"),
    )
    if same and _text(shipper, "shipperName"):
        raise _refuse("shipperName", "the consumer sends a return, not the customerValue merchant")
    if mode_retour in ("1", "3") and not _text(shipper, "shipperEmail"):
        raise _refuse("shipperEmail", f"modeRetour {mode_retour} reaches the consumer by e-mail")
    phone = _text(shipper, "shipperMobilePhone") or _text(shipper, "shipperPhone")
    if mode_retour == "3" and not phone:
        raise _refuse("shipperMobilePhone", "modeRetour 3 sends the machine code by SMS")


def _check_route(
    shipper: etree._Element | None, recipients: list[etree._Element], returns: set[str]
) -> None:
    country = _text(shipper, "shipperCountry").upper()
    if returns & DOMESTIC_RETURNS and country not in DOMESTIC:
        raise _refuse("shipperCountry", "Chrono Reverse is dropped off in France")
    if returns & EUROPE_RETURNS and (country in DOMESTIC or country not in EU_COUNTRIES):
        raise _refuse("shipperCountry", "Chrono Retour Europe is dropped off in Europe")
    for recipient in recipients:
        if _text(recipient, "recipientCountry").upper() != "FR":
            raise _refuse("recipientCountry", "a return goes back to the merchant in France")
