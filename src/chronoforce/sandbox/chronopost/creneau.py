"""The Creneau service (Chrono Precise delivery slots): searchDeliverySlot, confirmDeliverySlotV2.

Issue 23. Facts: SPEC-FACTS.md §6 ([D] §2.5, §3.5; [S] §3.7-3.8), error codes error_codes.csv
(service "slots"). Credentials travel in the SOAP Header ([S] Annexe 3, [D] §2.5.2.a), so this
module reads them from the envelope around the operation element.

Where the documents are silent the sandbox chooses (docs/sandbox-chronopost.md, "Creneau
service"): the slot grid, tariff levels, zones, quota, transaction lifetime, product/service/as
codes. State (transactions, bookings) lives in the store's meta table as JSON; a label request
with appointmentValue is checked against the bookings (`check_appointment`). It must never
store a password.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import holidays
from lxml import etree

from chronoforce.sandbox.chronopost.context import PARIS, BusinessError, Context
from chronoforce.sandbox.chronopost.soap import add, add_all
from chronoforce.sandbox.chronopost.tables import INVALID_DATA

SEARCH = "searchDeliverySlot"
CONFIRM = "confirmDeliverySlotV2"
OPERATIONS = (SEARCH, CONFIRM)
NAMESPACE = "http://cxf.soap.ws.creneau.chronopost.fr/"
CALLER_TOOL = "RDVWS"  # [D] §2.5.2.a
PRODUCT_TYPES = ("RDV", "FRESH", "FREEZE", "AMBIENT")  # [D] §2.5.2.a (AMBIENT: [D] only)
LEVELS = ("N1", "N2", "N3", "N4")
WINDOW_DAYS = 14  # dateEnd > today + 14 -> today + 14 ([D] §2.5.2.a)
DEFAULT_SPAN_DAYS = 6  # no dateEnd: a week of slots (sandbox choice; [S] makes it optional)
# Sandbox choices (UNCONFIRMED): 2-hour slots between 08:00 and 22:00 ([D]: shown hours), the
# last two are evening slots (slotType S), their tariff levels, and how many bookings one slot
# takes before it is full (error 10).
GRID = ((8, 10, "N2"), (10, 12, "N1"), (12, 14, "N1"), (14, 16, "N1"), (16, 18, "N2"),
        (18, 20, "N3"), (20, 22, "N4"))  # fmt: skip
EVENING_FROM = 18
SATURDAY_LEVEL = "N3"
TRANSACTION_LIFETIME = timedelta(minutes=30)
DEFAULT_QUOTA = 3
# Zones (UNCONFIRMED sandbox lists): Corsica and overseas are not covered (error 84, "route
# not covered"); 48xxx is covered but every slot is full (error 71, "no slot found").
OUT_OF_ZONE_PREFIXES = ("20", "97", "98")
NO_SLOT_PREFIXES = ("48",)
SUNDAY_PREFIXES = ("75",)  # Paris opens Sunday morning slots: Precise Sunday ([D] §2.5.3)
SUNDAY_GRID = ((9, 11, "N4"), (11, 13, "N4"))
# confirmDeliverySlotV2's product / service / as ([D] §2.5.3, §3.5; products.csv): 2O Chrono
# Rendez-Vous, 2E Fresh Rendez-Vous (service 961: [D] §4.6), 2F Freeze Rendez-Vous. The other
# service codes and the Sunday asCode are sandbox choices (UNCONFIRMED).
PRODUCT_SERVICE = {
    "RDV": ("2O", "976"),
    "FRESH": ("2E", "961"),
    "FREEZE": ("2F", "962"),
    "AMBIENT": ("2O", "977"),
}
SUNDAY_AS_CODE = "A17"
# codeStatus ([S] §3.7.5): 1 closed by Chronopost, 2 closed by the shipper, 3 full, 4 holiday.
BY_CHRONOPOST, BY_SHIPPER, FULL, HOLIDAY = "1", "2", "3", "4"

# Error codes (error_codes.csv, service "slots").
BAD_LOGIN = (30, "wrong login or password")
START_DATE_MANDATORY = (40, "start date mandatory")
START_AFTER_END = (41, "start date after end date")
PRODUCT_TYPE_MANDATORY = (61, "product type mandatory")
PRODUCT_TYPE_UNKNOWN = (62, "product type unknown")
NO_SLOT = (71, "no slot found for the given data")
RECIPIENT_ZIP_MANDATORY = (80, "destination postcode mandatory")
RECIPIENT_COUNTRY_MANDATORY = (81, "destination country mandatory")
SHIPPER_ZIP_MANDATORY = (82, "shipper postcode mandatory")
SHIPPER_COUNTRY_MANDATORY = (83, "shipper country mandatory")
ROUTE_NOT_COVERED = (84, "route not covered")
QUOTA = (10, "quota reached")
SLOT_CLOSED = (11, "slot closed")
SLOT_UNKNOWN = (12, "slot does not exist")
UID_MANDATORY = (20, "UID mandatory")
EXPIRED = (21, "session expired (transaction ID invalid) - search again")
DATE_MANDATORY = (42, "selected date mandatory")
DATE_PAST = (43, "selected date in the past")
CLOSED_DAY = (44, "selected date is a closed day")
MESH_MANDATORY = (50, "tile code mandatory")
MESH_UNKNOWN = (51, "tile code does not exist")
RANK_MANDATORY = (90, "rank mandatory")
CODE_SLOT_MANDATORY = (70, "slot code does not exist")


def _text(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = element.findtext(name)
    return value.strip() if value is not None and value.strip() else None


def header_account(op: etree._Element) -> str | None:
    """The accountNumber of the SOAP Header around `op` (for the request log)."""
    header = _header(op)
    return None if header is None else header.findtext(f"{{{NAMESPACE}}}accountNumber")


def _header(op: etree._Element) -> etree._Element | None:
    envelope = op.getroottree().getroot()
    return next((c for c in envelope if etree.QName(c).localname == "Header"), None)


def _authenticate(ctx: Context, op: etree._Element) -> str:
    """Credentials from the SOAP Header only ([S] Annexe 3): absent or wrong is error 30."""
    header = _header(op)
    account = password = None
    if header is not None:
        account = header.findtext(f"{{{NAMESPACE}}}accountNumber")
        password = header.findtext(f"{{{NAMESPACE}}}password")
    found = ctx.authenticate(account, password)
    if found is None:
        raise BusinessError.of(BAD_LOGIN)
    return found


def _require(op: etree._Element, name: str, error: tuple[int, str]) -> str:
    value = _text(op, name)
    if value is None:
        raise BusinessError.of(error)
    return value


def _product_type(op: etree._Element) -> str:
    value = _require(op, "productType", PRODUCT_TYPE_MANDATORY).upper()
    if value == "FROZEN":  # [S] V1's spelling of FREEZE
        value = "FREEZE"
    if value not in PRODUCT_TYPES:
        raise BusinessError.of(PRODUCT_TYPE_UNKNOWN)
    return value


def _parse_when(raw: str) -> datetime:
    """dateTime or date, naive taken as Paris time; [S] writes dates JJ/MM/AAAA."""
    if "/" in raw:
        value = datetime.strptime(raw[:10], "%d/%m/%Y")
    else:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else value.astimezone(PARIS)


def _holidays(year: int) -> Any:
    return holidays.country_holidays("FR", years=(year, year + 1))


@dataclass(frozen=True)
class SlotView:
    code: str
    day: date
    start: int
    end: int
    level: str
    status: str  # O / F
    code_status: str  # "" when open
    raw_rank: int
    rank: int | None


def _closed_by_shipper(raw: list[str]) -> list[tuple[datetime, datetime]]:
    """shipperDeliverySlotClosed `start/end` pairs; bad formats are ignored ([D] §2.5.2.a)."""
    spans = []
    for item in raw:
        for part in item.replace(";", ",").split(","):
            if "/" not in part or part.count("/") != 1:
                continue
            first, last = part.split("/")
            try:
                spans.append((_parse_when(first.strip()), _parse_when(last.strip())))
            except ValueError:
                continue
    return spans


def _day_grid(day: date, zip_code: str) -> tuple[tuple[int, int, str], ...]:
    if day.isoweekday() == 7:
        return SUNDAY_GRID if zip_code.startswith(SUNDAY_PREFIXES) else ()
    if day.isoweekday() == 6:
        return tuple((s, e, SATURDAY_LEVEL) for s, e, _ in GRID)
    return GRID


def slot_code(start: int, end: int) -> str:
    return f"C{start:02d}{end:02d}"


def _today(ctx: Context) -> date:
    return ctx.clock.now().astimezone(PARIS).date()


def _window(ctx: Context, op: etree._Element) -> tuple[datetime, date]:
    """The first moment a slot may start and the last day ([D] window rules, §2.5.2.a)."""
    today = _today(ctx)
    begin = _parse_when(_require(op, "dateBegin", START_DATE_MANDATORY))
    raw_end = _text(op, "dateEnd")
    end = _parse_when(raw_end).date() if raw_end else None
    if end is not None and begin.date() > end:
        raise BusinessError.of(START_AFTER_END)
    delivery = (_text(op, "isDeliveryDate") or "false").lower() in ("true", "1")
    if begin.date() <= today:  # dateBegin <= today -> today + 1 ([D]; [S]: today -> +1)
        begin = datetime.combine(today + timedelta(days=1), datetime.min.time(), PARIS)
    if not delivery:  # a hand-over date: delivery the next working day (D+1)
        day = begin.date() + timedelta(days=1)
        days_off = _holidays(day.year)
        while day.isoweekday() == 7 or day in days_off:
            day += timedelta(days=1)
        begin = datetime.combine(day, datetime.min.time(), PARIS)
    last = end or begin.date() + timedelta(days=DEFAULT_SPAN_DAYS)
    last = min(last, today + timedelta(days=WINDOW_DAYS))
    return begin, last


def _bookings_key(account: str) -> str:
    return f"creneau:bookings:{account}"


def _bookings(ctx: Context, account: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(ctx.store.get_meta(_bookings_key(account), "[]"))
    return loaded


def _taken(ctx: Context, account: str, mesh: str, day: date, code: str) -> int:
    return sum(
        1
        for b in _bookings(ctx, account)
        if b["mesh"] == mesh and b["date"] == day.isoformat() and b["code"] == code
    )


def _slots(ctx: Context, op: etree._Element, account: str, mesh: str) -> list[SlotView]:
    begin, last = _window(ctx, op)
    closed = _closed_by_shipper([e.text or "" for e in op.findall("shipperDeliverySlotClosed")])
    slot_type = (_text(op, "slotType") or "").upper()
    hidden = {
        level.strip().upper()
        for item in op.findall("rateLevelsNotShow")
        for level in (item.text or "").replace(";", ",").split(",")
    }
    views: list[SlotView] = []
    day, raw_rank, rank = begin.date(), 0, 0
    quota = ctx.slot_quota
    while day <= last:
        days_off = _holidays(day.year)
        chronopost_closed = day.isoweekday() == 7 and not _day_grid(day, mesh)
        for start, end, level in _day_grid(day, mesh) or GRID:
            if (slot_type == "J" and start >= EVENING_FROM) or (
                slot_type == "S" and start < EVENING_FROM
            ):
                continue
            if level in hidden:
                continue
            starts = datetime.combine(day, datetime.min.time(), PARIS).replace(hour=start)
            if starts < begin:
                continue
            ends = starts.replace(hour=end)
            code = slot_code(start, end)
            cause = ""
            if chronopost_closed or mesh.startswith(NO_SLOT_PREFIXES):
                cause = BY_CHRONOPOST
            elif day in days_off:
                cause = HOLIDAY
            elif any(a < ends and starts < b for a, b in closed):
                cause = BY_SHIPPER
            elif _taken(ctx, account, mesh, day, code) >= quota:
                cause = FULL
            raw_rank += 1
            if not cause:
                rank += 1
            views.append(
                SlotView(code, day, start, end, level, "F" if cause else "O", cause, raw_rank,
                         rank if not cause else None)
            )  # fmt: skip
        day += timedelta(days=1)
    return views


def search_delivery_slot(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """searchDeliverySlot: the slots of the window, open (O) and closed (F), with ranks."""
    account = _authenticate(ctx, op)
    product_type = _product_type(op)
    zip_code = _require(op, "recipientZipCode", RECIPIENT_ZIP_MANDATORY)
    country = _require(op, "recipientCountry", RECIPIENT_COUNTRY_MANDATORY).upper()
    _require(op, "shipperZipCode", SHIPPER_ZIP_MANDATORY)
    _require(op, "shipperCountry", SHIPPER_COUNTRY_MANDATORY)
    if country != "FR" or zip_code.startswith(OUT_OF_ZONE_PREFIXES):
        raise BusinessError.of(ROUTE_NOT_COVERED)
    mesh = zip_code  # meshCode = the recipient's postcode ([D] §2.5.2.b)
    views = _slots(ctx, op, account, mesh)
    if not any(v.status == "O" for v in views):
        raise BusinessError.of(NO_SLOT)
    transaction = secrets.token_hex(12)
    state = {
        "account": account,
        "mesh": mesh,
        "product_type": product_type,
        "created": ctx.clock.timestamp(),
        "slots": {
            f"{v.day.isoformat()}/{v.code}": {"rank": v.rank, "start": v.start, "end": v.end,
                                               "level": v.level, "status": v.status,
                                               "cause": v.code_status}
            for v in views
        },
    }  # fmt: skip
    ctx.store.set_meta(f"creneau:tx:{transaction}", json.dumps(state))
    add_all(result, [("code", 0), ("message", ""), ("meshCode", mesh)])
    for v in views:
        slot = add(result, "slotList")
        add_all(
            slot,
            [
                ("deliverySlotCode", v.code),
                ("deliveryDate", f"{v.day.isoformat()}T00:00:00"),  # [D] format
                ("dayOfWeek", v.day.isoweekday()),
                ("startHour", v.start),
                ("startMinutes", 0),
                ("endHour", v.end),
                ("endMinutes", 0),
                ("tariffLevel", v.level),
                ("status", v.status),
                ("codeStatus", v.code_status or None),
                ("note", 0 if v.status == "F" else (5 if v.level == "N1" else 3)),
                ("incentiveFlag", v.level == "N1" and v.status == "O"),
                ("rawRank", v.raw_rank),
                ("rank", v.rank),
            ],
        )
    add(result, "transactionID", transaction)


def confirm_delivery_slot_v2(ctx: Context, op: etree._Element, result: etree._Element) -> None:
    """confirmDeliverySlotV2: books the slot; answers productCode, serviceCode and asCode."""
    account = _authenticate(ctx, op)
    product_type = _product_type(op)
    code = _require(op, "codeSlot", CODE_SLOT_MANDATORY)
    mesh = _require(op, "meshCode", MESH_MANDATORY)
    transaction = _require(op, "transactionID", UID_MANDATORY)
    rank = _require(op, "rank", RANK_MANDATORY)
    selected = _parse_when(_require(op, "dateSelected", DATE_MANDATORY)).date()
    raw = ctx.store.get_meta(f"creneau:tx:{transaction}", "")
    if not raw:
        raise BusinessError.of(EXPIRED)
    state = json.loads(raw)
    expired = ctx.clock.timestamp() - state["created"] > TRANSACTION_LIFETIME.total_seconds()
    if state["account"] != account or expired:
        raise BusinessError.of(EXPIRED)
    if mesh != state["mesh"]:
        raise BusinessError.of(MESH_UNKNOWN)
    if selected <= _today(ctx):
        raise BusinessError.of(DATE_PAST)
    days_off = _holidays(selected.year)
    if selected in days_off or (selected.isoweekday() == 7 and not _day_grid(selected, mesh)):
        raise BusinessError.of(CLOSED_DAY)
    slot = state["slots"].get(f"{selected.isoformat()}/{code}")
    if slot is None:
        raise BusinessError.of(SLOT_UNKNOWN)
    if slot["status"] != "O" or str(slot["rank"]) != rank:
        raise BusinessError.of(QUOTA if slot["cause"] == FULL else SLOT_CLOSED)
    if _taken(ctx, account, mesh, selected, code) >= ctx.slot_quota:
        raise BusinessError.of(QUOTA)
    product, service = PRODUCT_SERVICE[product_type]
    as_code = SUNDAY_AS_CODE if selected.isoweekday() == 7 else None
    bookings = _bookings(ctx, account)
    bookings.append(
        {
            "mesh": mesh,
            "date": selected.isoformat(),
            "code": code,
            "start": slot["start"],
            "end": slot["end"],
            "level": slot["level"],
            "product": product,
            "service": service,
            "as": as_code,
            "transaction": transaction,
        }
    )
    ctx.store.set_meta(_bookings_key(account), json.dumps(bookings))
    add_all(result, [("code", 0), ("message", "")])
    answer = add(result, "productServiceV2")
    add_all(answer, [("productCode", product), ("serviceCode", service), ("asCode", as_code)])


def check_appointment(
    ctx: Context, account: str, op: etree._Element, skybill: etree._Element, zip_code: str
) -> dict[str, Any] | None:
    """A label's appointmentValue against the account's confirmed bookings ([D] §3.5).

    None when the request has no appointment. A Precise product without one, or an appointment
    whose slot, level, product, service or as code differs from a booking, is refused
    (error 33, the shipping service's "invalid data"; sandbox choice)."""
    appointment = op.find("scheduledValue/appointmentValue")
    product = _text(skybill, "productCode") or ""
    if appointment is None:
        if product in {p for p, _ in PRODUCT_SERVICE.values()}:
            raise BusinessError(INVALID_DATA, "appointmentValue mandatory for Chrono Precise")
        return None
    start_raw = _require_shipping(appointment, "timeSlotStartDate")
    end_raw = _require_shipping(appointment, "timeSlotEndDate")
    start, end = _parse_when(start_raw), _parse_when(end_raw)
    level = _text(appointment, "timeSlotTariffLevel") or "N1"
    service = _text(skybill, "service") or "0"
    as_code = _text(skybill, "as")
    same_slot = [
        b
        for b in _bookings(ctx, account)
        if b["mesh"] == zip_code
        and b["date"] == start.date().isoformat()
        and b["start"] == start.hour
        and b["end"] == end.hour
    ]
    asked = (level, product, service, as_code)
    if any((b["level"], b["product"], b["service"], b["as"]) == asked for b in same_slot):
        return {
            "slot_start": start.strftime("%Y-%m-%d %H:%M"),
            "slot_end": end.strftime("%H:%M"),
            "slot_level": level,
        }
    if same_slot:
        wanted = "/".join(
            str(v or "") for v in (same_slot[0]["level"], same_slot[0]["product"],
                                   same_slot[0]["service"], same_slot[0]["as"])
        )  # fmt: skip
        raise BusinessError(
            INVALID_DATA,
            f"appointment does not match its confirmed slot: expected level/product/service/as "
            f"{wanted}",
        )
    raise BusinessError(INVALID_DATA, "appointment slot was not confirmed (confirmDeliverySlotV2)")


def _require_shipping(element: etree._Element, name: str) -> str:
    value = _text(element, name)
    if value is None:
        raise BusinessError(INVALID_DATA, f"{name} mandatory for Chrono Precise")
    return value
