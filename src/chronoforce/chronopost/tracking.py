"""Tracking service: events of a parcel (trackSkybillV2, hot path), parcels by our reference
(trackWithSenderRef, for crash recovery) and cancellation (cancelSkybill, [S] §3.14).

No I/O here. It must never invent an event: what Chronopost did not say is not returned. A
cancel refusal is read with the label's age (codes.cancel_error_for): inside the cancel window
it is "too early", after it "taken over" or "not this contract".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from chronoforce.chronopost.codes import cancel_error_for
from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import (
    element,
    envelope,
    error_code,
    fields,
    parse_envelope,
    result_of,
    text,
)
from chronoforce.chronopost.wsdl import zeep_request, zeep_result
from chronoforce.domain.errors import CarrierAnswerError
from chronoforce.domain.models import ShipmentStatus, TrackingEvent
from chronoforce.domain.status import map_event

TRACK_OPERATION = "trackSkybillV2"
BY_REFERENCE_OPERATION = "trackWithSenderRef"
CANCEL_OPERATION = "cancelSkybill"
NAMESPACE = Service.TRACKING.namespace
LANGUAGE = "en_GB"  # karrio's samples; labels in English, codes are the same in every language
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True, slots=True)
class TrackedParcel:
    """A parcel Chronopost holds under our shipper reference (answer of find_by_reference)."""

    skybill_number: str
    events: tuple[TrackingEvent, ...]

    @property
    def cancelled(self) -> bool:
        return any(map_event(e.code).status is ShipmentStatus.CANCELLED for e in self.events)


def event_time(value: str | dt.datetime | None, operation: str) -> dt.datetime:
    """An aware time; Chronopost's offset-less times are Paris time."""
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value or "")
    except ValueError as exc:
        raise CarrierAnswerError(
            f"event date {value!r} is not a date", code="CARRIER_BAD_ANSWER", operation=operation
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=PARIS)


def build_track(skybill_number: str) -> bytes:
    """The trackSkybillV2 envelope (fast path; needs no credentials)."""
    inner = element("language", LANGUAGE) + element("skybillNumber", skybill_number)
    return envelope(NAMESPACE, TRACK_OPERATION, inner)


def build_track_zeep(skybill_number: str) -> bytes:
    values = {"language": LANGUAGE, "skybillNumber": skybill_number}
    return zeep_request(Service.TRACKING, TRACK_OPERATION, values)


def _event(values: dict[str, str], skybill: str, operation: str) -> TrackingEvent:
    return TrackingEvent(
        skybill_number=skybill,
        code=values.get("code", "").strip(),
        label=values.get("eventLabel", "").strip(),
        time=event_time(values.get("eventDate", "").strip(), operation),
        place=values.get("officeLabel", "").strip(),
        postal_code=values.get("zipCode", "").strip(),
        high_priority=values.get("highPriority", "").strip() == "true",
    )


def _events(listing: etree._Element, skybill: str, operation: str) -> tuple[TrackingEvent, ...]:
    return tuple(_event(fields(e), skybill, operation) for e in listing.iterfind("events"))


def parse_track(content: bytes, skybill_number: str) -> tuple[TrackingEvent, ...]:
    """Events of one parcel in Chronopost's order (fast path: lxml, one pass)."""
    result = result_of(parse_envelope(content, TRACK_OPERATION), NAMESPACE, TRACK_OPERATION)
    listing = result.find("listEventInfoComp")
    if listing is None:
        return ()
    skybill = text(listing, "skybillNumber") or skybill_number
    return _events(listing, skybill, TRACK_OPERATION)


def _zeep_events(
    events: Iterable[Any] | None, skybill: str, operation: str
) -> tuple[TrackingEvent, ...]:
    return tuple(
        TrackingEvent(
            skybill_number=skybill,
            code=(e.code or "").strip(),
            label=(e.eventLabel or "").strip(),
            time=event_time(e.eventDate, operation),
            place=(e.officeLabel or "").strip(),
            postal_code=(e.zipCode or "").strip(),
            high_priority=bool(e.highPriority),
        )
        for e in events or ()
    )


def parse_track_zeep(content: bytes, skybill_number: str) -> tuple[TrackingEvent, ...]:
    """The same answer decoded by zeep (yardstick and benchmark)."""
    root = parse_envelope(content, TRACK_OPERATION)
    result_of(root, NAMESPACE, TRACK_OPERATION)
    listing = zeep_result(Service.TRACKING, TRACK_OPERATION, root).listEventInfoComp
    if listing is None:
        return ()
    skybill = (listing.skybillNumber or "").strip() or skybill_number
    return _zeep_events(listing.events, skybill, TRACK_OPERATION)


def _credentials(credentials: ChronopostCredentials) -> dict[str, str]:
    return {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "language": LANGUAGE,
    }


def build_by_reference(credentials: ChronopostCredentials, shipper_ref: str) -> bytes:
    values = {**_credentials(credentials), "sendersRef": shipper_ref}
    return zeep_request(Service.TRACKING, BY_REFERENCE_OPERATION, values)


def parse_by_reference(content: bytes) -> tuple[TrackedParcel, ...]:
    root = parse_envelope(content, BY_REFERENCE_OPERATION)
    result_of(root, NAMESPACE, BY_REFERENCE_OPERATION)
    value = zeep_result(Service.TRACKING, BY_REFERENCE_OPERATION, root)
    parcels = []
    for listing in value.listParcel or ():
        skybill = (listing.skybillNumber or "").strip()
        if skybill:
            events = _zeep_events(listing.events, skybill, BY_REFERENCE_OPERATION)
            parcels.append(TrackedParcel(skybill, events))
    return tuple(parcels)


def merge_parcels(answers: Iterable[tuple[TrackedParcel, ...]]) -> tuple[TrackedParcel, ...]:
    """One parcel per skybill number over several hosts' answers, every event of each kept."""
    merged: dict[str, dict[tuple[str, dt.datetime], TrackingEvent]] = {}
    for parcels in answers:
        for parcel in parcels:
            events = merged.setdefault(parcel.skybill_number, {})
            for event in parcel.events:
                events.setdefault((event.code, event.time), event)
    return tuple(
        TrackedParcel(skybill, tuple(sorted(events.values(), key=lambda e: e.time)))
        for skybill, events in merged.items()
    )


def build_cancel(credentials: ChronopostCredentials, skybill_number: str) -> bytes:
    values = {**_credentials(credentials), "skybillNumber": skybill_number}
    return zeep_request(Service.TRACKING, CANCEL_OPERATION, values)


def parse_cancel(
    content: bytes, *, created_at: dt.datetime | None = None, now: dt.datetime | None = None
) -> int:
    """Chronopost's statusCode of an accepted cancellation (errorCode 0).

    A refusal raises CancelTooEarlyError (inside the window after `created_at`, the label's
    creation), CancelConflictError (taken over) or the table's error (codes.py).
    """
    root = parse_envelope(content, CANCEL_OPERATION)
    result = root.find(f"{_BODY}/{{{NAMESPACE}}}{CANCEL_OPERATION}Response/return")
    if result is not None and (code := error_code(result, CANCEL_OPERATION)) != 0:
        raise cancel_error_for(
            code,
            result.findtext("errorMessage") or "",
            CANCEL_OPERATION,
            created_at=created_at,
            now=now or dt.datetime.now(dt.UTC),
        )
    result_of(root, NAMESPACE, CANCEL_OPERATION)
    return int(zeep_result(Service.TRACKING, CANCEL_OPERATION, root).statusCode or 0)


_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"
