"""The console's write actions: retry, resolve with a note, and edit-and-retry an address.

A retry, like `chronoforce exceptions retry`, makes the next preparation read the record from
Salesforce again, so a fix made there is what the label uses. An address fix corrects the source
too: the changed fields go to Salesforce through the outbox (the same flush as every other
write) and into the stored copy; the re-read lays our queued writes over what it reads, so the
fix holds even if the label is made before the flush. A fix that still fails the address check
is refused with the check's message, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from chronoforce.domain.address import normalize_party, require_sendable
from chronoforce.domain.errors import ChronoforceError
from chronoforce.logs import get_logger
from chronoforce.pipeline import exceptions, writeback
from chronoforce.pipeline.detection import content_key
from chronoforce.salesforce.mapping import MappingConfig, map_record, value_at
from chronoforce.store.models import ExceptionRow, Shipment

log = get_logger(component="console")


class ActionError(Exception):
    """The action cannot be done as asked; the message is shown to the person who asked."""


@dataclass(frozen=True)
class AddressField:
    label: str
    sf_field: str
    value: str


_EDITABLE = (  # (label, mapping group, key): the recipient address as the mapping reads it
    ("Street", "recipient", "lines"),
    ("Postal code", "recipient", "postal_code"),
    ("City", "recipient", "city"),
    ("Country", "recipient", "country"),
    ("State / province", "recipient", "state"),
    ("Phone", "contact", "phone"),
)


def address_fields(shipment: Shipment, mapping: MappingConfig) -> list[AddressField]:
    """The editable fields: the first mapped field of each part that sits on the record itself
    (a field reached through a lookup, like Account.Phone, belongs to another record)."""
    record: dict[str, Any] = (shipment.source or {}).get("record") or {}
    out = []
    for label, group, key in _EDITABLE:
        paths = getattr(getattr(mapping, group), key)
        direct = next((p for p in paths if "." not in p), None)
        if direct:
            out.append(AddressField(label, direct, str(value_at(record, direct) or "")))
    return out


@dataclass(frozen=True)
class AddressChoice:
    """One likely fix offered by the address check: the whole form with that postal code and
    city, so that choosing it is one click (written back to Salesforce, then retried)."""

    postal_code: str
    city: str
    values: dict[str, str]


def address_choices(shipment: Shipment, mapping: MappingConfig) -> list[AddressChoice]:
    """The candidates the address check names for the stored record, as ready-made forms."""
    fields = address_fields(shipment, mapping)
    by_label = {f.label: f.sf_field for f in fields}
    postal_field, city_field = by_label.get("Postal code"), by_label.get("City")
    if not postal_field or not city_field:
        return []  # the code or the city lives on another record: the form cannot write it
    source = shipment.source or {}
    try:
        order = map_record(source.get("record") or {}, list(source.get("items") or []), mapping)
    except ChronoforceError:
        return []
    result = normalize_party(order.recipient, "recipient")
    current = {f.sf_field: f.value for f in fields}
    seen: set[tuple[str, str]] = set()
    choices = []
    for issue in sorted(result.issues, key=lambda i: i.severity != "error"):
        for code, city in issue.candidates:
            if (code, city) in seen:
                continue
            seen.add((code, city))
            values = {**current, postal_field: code, city_field: city}
            choices.append(AddressChoice(code, city, values))
    return choices


def retry(session: Session, exception_id: int, user: str) -> int | None:
    try:
        shipment_id = exceptions.retry(session, exception_id)
    except LookupError as exc:
        raise ActionError(str(exc)) from exc
    log.info("exception retried", exception_id=exception_id, user=user, shipment_id=shipment_id)
    return shipment_id


def resolve(session: Session, exception_id: int, note: str, user: str) -> None:
    note = note.strip()
    if not note:
        raise ActionError("a note is required to resolve an exception: say what was done")
    try:
        exceptions.resolve(session, exception_id, f"{note} — {user}")
    except LookupError as exc:
        raise ActionError(str(exc)) from exc
    log.info("exception resolved", exception_id=exception_id, user=user)


def fix_address(
    session: Session,
    exception_id: int,
    values: dict[str, str],
    mapping: MappingConfig,
    user: str,
    now: dt.datetime | None = None,
) -> int | None:
    """Correct the record's address fields in Salesforce and here, then retry the shipment."""
    row = session.get(ExceptionRow, exception_id)
    if row is None:
        raise ActionError(f"no exception {exception_id}")
    shipment = session.get(Shipment, row.shipment_id) if row.shipment_id else None
    if shipment is None:
        raise ActionError(f"exception {exception_id} concerns no shipment: retry it instead")
    editable = {f.sf_field: f.value for f in address_fields(shipment, mapping)}
    changed = {
        name: value.strip()
        for name, value in values.items()
        if name in editable and value.strip() != editable[name]
    }
    if not changed:
        raise ActionError("nothing was changed: edit a field, or retry as is")
    source = dict(shipment.source or {})
    record = {**(source.get("record") or {}), **changed}
    items = list(source.get("items") or [])
    try:
        require_sendable(map_record(record, items, mapping).recipient, "recipient")
    except ChronoforceError as exc:
        where = f" (field {exc.field})" if exc.field else ""
        raise ActionError(f"the address is still refused{where}: {exc.message}") from exc
    # A new dict: SQLAlchemy's JSON column only notices an assignment, not an in-place change.
    shipment.source = {**source, "record": record, "key": content_key(record, items, mapping)}
    writeback.enqueue(
        session,
        sf_object=shipment.sf_object,
        operation="update",
        sf_id=shipment.sf_id,
        payload=changed,
        shipment_id=shipment.id,
    )
    shipment_id = exceptions.retry(session, exception_id, now)
    log.info(
        "address fixed",
        exception_id=exception_id,
        sf_id=shipment.sf_id,
        fields=sorted(changed),
        user=user,
    )
    return shipment_id
