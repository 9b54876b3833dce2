"""Pickup on demand for parcels already labeled: the sandbox's creerEnlevementNational.

Checks what a driver needs (an account, a French pickup address, a time window in the future
of the sandbox clock, a parcel count and weight) and answers an ESD number. Its result has its
own shape — `codeErreur` / `libelleErreur`, not `errorCode` — which `write_error` in app.py
follows. It must never book a pickup for another account's parcels.
"""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from chronoforce.sandbox.chronopost.context import BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.tables import (
    ESD_BAD_CONTRACT,
    ESD_DATE_ERROR,
    ESD_DATE_PAST,
    ESD_EMPTY,
    ESD_NOT_FRANCE,
    ESD_PACKAGES_WRONG,
    ESD_ZIP_UNKNOWN,
)

OPERATION = "creerEnlevementNational"


def _text(element: etree._Element | None, name: str) -> str:
    value = element.findtext(name) if element is not None else None
    return value.strip() if value else ""


def _empty(field: str) -> BusinessError:
    return _invalid(ESD_EMPTY, field, "is empty")


def _invalid(error: tuple[int, str], field: str, why: str) -> BusinessError:
    """An ESD error ([D] §4.3.1 codes and names), naming the field (the sandbox's wording)."""
    return BusinessError(error[0], f"{error[1]}: {field} {why}")


def _window(ctx: Context, op: etree._Element) -> tuple[datetime, datetime]:
    start_text, end_text = _text(op, "datePassage"), _text(op, "datePassageFermeture")
    if not start_text:
        raise _empty("datePassage")
    start = datetime.fromisoformat(start_text)
    end = datetime.fromisoformat(end_text) if end_text else start
    if end <= start:
        raise _invalid(ESD_DATE_ERROR, "datePassageFermeture", "not after datePassage")
    now = ctx.clock.now()
    local_now = now.replace(tzinfo=None) if start.tzinfo is None else now
    if start.date() < local_now.date():
        raise _invalid(ESD_DATE_PAST, "datePassage", "in the past")
    return start, end


def _address(op: etree._Element) -> etree._Element:
    address = op.find("adresseEnlevement")
    if address is None:
        raise _empty("adresseEnlevement")
    for field in ("codePostal", "ville"):
        if not _text(address, field):
            raise _empty(f"adresseEnlevement/{field}")
    if not (_text(address, "raisonSociale") or _text(address, "nom")):
        raise _empty("adresseEnlevement/nom")
    if (_text(address, "codePays") or "FR").upper() != "FR":
        raise _invalid(ESD_NOT_FRANCE, "adresseEnlevement/codePays", "must be FR")
    if not re.fullmatch(r"\d{5}", _text(address, "codePostal")):
        raise _invalid(ESD_ZIP_UNKNOWN, "adresseEnlevement/codePostal", "is not five digits")
    return address


def _parcels(ctx: Context, op: etree._Element, account: str) -> None:
    details = op.find("particulartiesEsd")
    if details is None:
        raise _empty("particulartiesEsd")
    if int(_text(details, "nombreEnvois") or 0) < 1:
        raise _invalid(ESD_PACKAGES_WRONG, "particulartiesEsd/nombreEnvois", "below 1")
    if float(_text(details, "poids") or 0) <= 0:
        raise _invalid(ESD_PACKAGES_WRONG, "particulartiesEsd/poids", "not above 0")
    for skybill in filter(None, re.split(r"[,; ]+", _text(details, "listeColisAnnonces"))):
        parcel = ctx.store.parcel(skybill)
        if parcel is None or parcel.account != account:
            # No documented code for a parcel of another account: the sandbox's choice.
            raise _invalid(ESD_PACKAGES_WRONG, "listeColisAnnonces", f"{skybill} is not yours")


def creer_enlevement_national(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Book a pickup; the answer carries the ESD number and the pickup date."""
    account = ctx.authenticate(
        _text(op.find("headerValue"), "accountNumber"), _text(op, "password")
    )
    if account is None:
        raise BusinessError.of(ESD_BAD_CONTRACT)
    start, _ = _window(ctx, op)
    address = _address(op)
    _parcels(ctx, op, account)
    number = ctx.store.next_counter("pickup") + 1  # counters start at 0; ids at 1
    add(result, "codeErreur", 0)
    info = add(result, "infoEnlevement")
    add_all(
        info,
        [
            ("codePostal", _text(address, "codePostal")),
            ("dateCreation", ctx.clock.now()),
            ("datePassage", start),
            ("idEnlevement", number),
            ("numeroUniqueESD", f"ESD{number:08d}{start:%Y%m%d}"),
            ("refEsdClient", _text(op, "referenceEsdClient") or None),
            ("ville", _text(address, "ville")),
        ],
    )
