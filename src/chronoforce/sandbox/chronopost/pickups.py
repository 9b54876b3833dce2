"""Pickups on demand: the sandbox's creerEnlevementNational and annulerEnlevements.

Booking checks what a driver needs (an account, a French pickup address, a time window in the
future of the sandbox clock, a parcel count and weight) and answers an ESD number of 10
characters; a second live pickup with the same refEsdClient on the same day is refused with
esd error 25 DUPLICATE_REFERENCE ([D] §4.3.1). Cancelling takes the ESD numbers of the account's
live pickups (27 ANNULATION_INVALID once cancelled, 28 ESD_NOT_FOUND otherwise). Results have
their own shapes — `codeErreur` / `libelleErreur` and `codeErreur` / `errorMessage` — which
`write_error` in app.py follows. It must never book or cancel another account's pickups.
"""

from __future__ import annotations

import json
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
CANCEL_OPERATION = "annulerEnlevements"
# Error codes of the ESD table (error_codes.csv, service "esd", [D] §4.3.1).
DUPLICATE_REFERENCE = (25, "DUPLICATE_REFERENCE: refEsdClient must be unique for one pickup date")
ANNULATION_INVALID = (27, "ANNULATION_INVALID: the pickup cannot be cancelled")
ESD_NOT_FOUND = (28, "ESD_NOT_FOUND")
ESD_NUMBER_MAX = 10  # esdNumber: 10 characters, the ESDFullNumber (field_limits.csv)


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
    reference = _text(op, "referenceEsdClient")
    if reference and _live_reference(ctx, account, reference, start):
        raise BusinessError.of(DUPLICATE_REFERENCE)
    number = ctx.store.next_counter("pickup") + 1  # counters start at 0; ids at 1
    esd = f"ESD{number:07d}"  # 10 characters; the documented format is unconfirmed
    _remember(ctx, esd, {"account": account, "reference": reference, "day": f"{start:%Y-%m-%d}"})
    add(result, "codeErreur", 0)
    info = add(result, "infoEnlevement")
    add_all(
        info,
        [
            ("codePostal", _text(address, "codePostal")),
            ("dateCreation", ctx.clock.now()),
            ("datePassage", start),
            ("idEnlevement", number),
            ("numeroUniqueESD", esd),
            ("refEsdClient", _text(op, "referenceEsdClient") or None),
            ("ville", _text(address, "ville")),
        ],
    )


def _remember(ctx: Context, esd: str, pickup: dict[str, object]) -> None:
    ctx.store.set_meta(f"pickup:{esd}", json.dumps(pickup))
    index = json.loads(ctx.store.get_meta("pickups", "[]"))
    ctx.store.set_meta("pickups", json.dumps([*index, esd]))


def _pickup(ctx: Context, esd: str) -> dict[str, object] | None:
    raw = ctx.store.get_meta(f"pickup:{esd}", "")
    return json.loads(raw) if raw else None


def _live_reference(ctx: Context, account: str, reference: str, start: datetime) -> bool:
    """A live pickup of the account under this refEsdClient for that day already exists.
    Whether a cancelled one still holds its reference is not documented: it does not here."""
    day = f"{start:%Y-%m-%d}"
    for esd in json.loads(ctx.store.get_meta("pickups", "[]")):
        known = _pickup(ctx, esd) or {}
        if (known.get("account"), known.get("reference"), known.get("day")) == (
            account, reference, day,
        ) and not known.get("cancelled"):  # fmt: skip
            return True
    return False


def annuler_enlevements(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """Cancel every pickup named (all or none): `statut` maps each ESD number to its status."""
    account = ctx.authenticate(_text(op, "accountNumber"), _text(op, "password"))
    if account is None:
        raise BusinessError.of(ESD_BAD_CONTRACT)
    numbers = [n.text.strip() for n in op.findall("esdNumber") if n.text and n.text.strip()]
    if not numbers:
        raise _empty("esdNumber")
    found: list[tuple[str, dict[str, object]]] = []
    for esd in numbers:
        if len(esd) > ESD_NUMBER_MAX:
            raise BusinessError.of(ESD_NOT_FOUND)  # longer than any ESD number: none such
        pickup = _pickup(ctx, esd)
        if pickup is None or pickup.get("account") != account:
            raise BusinessError.of(ESD_NOT_FOUND)
        if pickup.get("cancelled"):
            raise BusinessError.of(ANNULATION_INVALID)
        found.append((esd, pickup))
    for esd, pickup in found:
        ctx.store.set_meta(f"pickup:{esd}", json.dumps({**pickup, "cancelled": True}))
    add_all(result, [("codeErreur", 0), ("errorMessage", "")])
    statut = add(result, "statut")
    for esd, _ in found:
        add_all(add(statut, "entry"), [("key", esd), ("value", "ANNULE")])


def cancelled(ctx: Context, esd: str) -> bool | None:
    """Whether the pickup is cancelled (None when the sandbox never booked it): for tests."""
    pickup = _pickup(ctx, esd)
    return None if pickup is None else bool(pickup.get("cancelled"))
