"""Product routing: which Chronopost product ships an order, when it leaves, when it arrives.

Rules from configuration are tried in their written order and the first one whose conditions
and product fit wins; cutoffs are Europe/Paris wall-clock times with French public holidays and
weekends. Pure: no I/O, time comes in as `now`. It must never pick a product that cannot carry a
parcel or reach the destination, and never choose silently: every decision says why.

Decisions where the specification was silent (all overridable in `routing:` of the YAML):
- relay point chosen ⇔ relay product: a parcel too heavy for the relay network is a
  `RoutingError` for a person to settle, not a silent switch to home delivery.
- Saturday delivery (service 6) is asked only when the promised day really is a Saturday; when
  the product does not offer it, or the parcel goes abroad (never allowed there), the option is
  dropped and the reason says so.
- working days are French ones (national holidays, not Alsace-Moselle's extra two) for every
  destination; international promises are indicative working-day counts.
- `from_mapping` merges `products` into the defaults by code; a `rules` list replaces them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chronoforce.domain.clock import as_utc
from chronoforce.domain.errors import RoutingError
from chronoforce.domain.models import Parcel, ShipmentRequest

__all__ = [
    "DEFAULT_RULES",
    "DOM_COUNTRIES",
    "EU_COUNTRIES",
    "Conditions",
    "DeliveryOptions",
    "Product",
    "Promise",
    "RoutingDecision",
    "RoutingFacts",
    "RoutingRules",
    "Rule",
    "Skipped",
    "Zone",
    "add_working_days",
    "is_working_day",
    "next_working_day",
    "promised_delivery_date",
    "route",
    "zone_of",
]


class Zone(StrEnum):
    """Destination zones products are sold for."""

    FR = "FR"  # metropolitan France incl. Corsica, and Monaco
    EU = "EU"  # the other member states of the European Union
    DOM = "DOM"  # French overseas departments and territories
    WORLD = "WORLD"  # everything else


# EU-27 without France (source: europa.eu, "EU countries", member list as of 2025).
EU_COUNTRIES: tuple[str, ...] = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip
# ISO codes of French overseas departments and territories (ISO 3166-1).
DOM_COUNTRIES: tuple[str, ...] = (
    "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF",
)  # fmt: skip


def zone_of(country: str, postal_code: str = "", eu: Iterable[str] = EU_COUNTRIES) -> Zone:
    """The zone of a destination; FR with an overseas postal code (97x, 98x but Monaco) is DOM."""
    code = country.strip().upper()
    postal = postal_code.strip()
    if code == "MC":
        return Zone.FR
    if code == "FR":
        overseas = postal.startswith("97") or (postal.startswith("98") and postal[:3] != "980")
        return Zone.DOM if overseas else Zone.FR
    if code in DOM_COUNTRIES:
        return Zone.DOM
    return Zone.EU if code in set(eu) else Zone.WORLD


# --- working days --------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_working_day(day: dt.date, country: str = "FR") -> bool:
    """Monday to Friday and not a public holiday of `country` (holidays package)."""
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def _is_saturday_delivery_day(day: dt.date, country: str) -> bool:
    return day.weekday() == 5 and day not in _holidays(country, day.year)


def next_working_day(day: dt.date, country: str = "FR") -> dt.date:
    """The first working day strictly after `day`."""
    day += dt.timedelta(days=1)
    while not is_working_day(day, country):
        day += dt.timedelta(days=1)
    return day


def add_working_days(
    day: dt.date, count: int, country: str = "FR", *, saturday: bool = False
) -> dt.date:
    """`count` delivery days after `day`; with `saturday`, a non-holiday Saturday counts too."""
    for _ in range(count):
        day += dt.timedelta(days=1)
        while not (
            is_working_day(day, country) or (saturday and _is_saturday_delivery_day(day, country))
        ):
            day += dt.timedelta(days=1)
    return day


# --- the rule model (parsed from the YAML by config.py) -----------------------------------


def _product_key(code: Any) -> str:
    """Codes as Chronopost spells them; YAML reads an unquoted 01 or 16 as a number."""
    text = str(code).strip().upper()
    return text.zfill(2) if text.isdigit() and len(text) == 1 else text  # "1" is Chrono 13 "01"


def _product_code(value: Any) -> Any:
    return _product_key(value) if isinstance(value, int | str) and value != "" else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _quoted_time(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 13:00 as the number 780, which pydantic would take as seconds.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"got the number {value}: write times in quotes, e.g. '13:00'")
    return value


class Promise(_Model):
    """When a product delivers: `working_days` after the ship date, before `before` if set."""

    working_days: int = Field(1, ge=0, le=30)
    before: dt.time | None = None
    zone_days: dict[Zone, int] = Field(default_factory=dict)  # per-zone working days

    _before_quoted = field_validator("before", mode="before")(_quoted_time)

    def days_for(self, zone: Zone) -> int:
        return self.zone_days.get(zone, self.working_days)


class Product(_Model):
    """One Chronopost product and its limits per parcel (weights kg, lengths cm)."""

    code: str = Field(pattern=r"^[0-9A-Z]{1,2}$")  # Chronopost productCode, ≤ 2 characters
    name: str
    zones: tuple[Zone, ...]
    relay: bool = False  # delivers to a relay point: needs one chosen
    max_weight_kg: Decimal = Field(Decimal(30), gt=0)
    max_length_cm: Decimal | None = Decimal(150)  # longest side
    max_length_girth_cm: Decimal | None = Decimal(300)  # longest side + 2 × each other side
    cutoff: dt.time = dt.time(17, 0)  # Europe/Paris; later orders ship the next working day
    promise: Promise = Promise()
    saturday_delivery: bool = False  # service 6 offered

    _cutoff_quoted = field_validator("cutoff", mode="before")(_quoted_time)
    _code_spelled = field_validator("code", mode="before")(_product_code)


def _fact_values(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple | set | frozenset) else (value,)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


class Conditions(_Model):
    """What a rule needs to match; empty lists and None mean "any"."""

    countries: tuple[str, ...] = ()
    exclude_countries: tuple[str, ...] = ()
    zones: tuple[Zone, ...] = ()
    postal_prefixes: tuple[str, ...] = ()
    exclude_postal_prefixes: tuple[str, ...] = ()
    relay: bool | None = None  # a relay point was chosen
    min_parcel_weight_kg: Decimal | None = None  # the heaviest parcel
    max_parcel_weight_kg: Decimal | None = None
    min_order_value: Decimal | None = None
    max_order_value: Decimal | None = None
    priority: bool | None = None
    customer_tiers: tuple[str, ...] = ()
    facts: dict[str, Any] = Field(default_factory=dict)  # mapped field → value or list of values

    @field_validator("countries", "exclude_countries")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c.strip().upper() for c in value)


class Rule(_Model):
    """If `when` matches, ship with `product`; `saturday_delivery` None follows the order."""

    name: str = Field(min_length=1)
    product: str
    when: Conditions = Conditions()
    saturday_delivery: bool | None = None

    _product_spelled = field_validator("product", mode="before")(_product_code)


class RoutingRules(_Model):
    """Products and rules in the order they are tried; `routing:` of chronoforce.yaml."""

    timezone: str = "Europe/Paris"
    holiday_country: str = "FR"
    eu_countries: tuple[str, ...] = EU_COUNTRIES
    products: tuple[Product, ...]
    rules: tuple[Rule, ...]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        codes = [_product_key(p.code) for p in self.products]
        if len(set(codes)) != len(codes):
            raise ValueError(f"a product code appears twice in {codes}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"a rule name appears twice in {names}")
        for rule in self.rules:
            if _product_key(rule.product) not in codes:
                raise ValueError(f"rule {rule.name!r} names unknown product {rule.product!r}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def product(self, code: str) -> Product | None:
        key = _product_key(code)
        return next((p for p in self.products if _product_key(p.code) == key), None)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | RoutingRules | None) -> RoutingRules:
        """The defaults with `raw` applied: products merged by code, `rules` replaced whole
        (rules already built, e.g. `Settings.routing`, are returned as they are)."""
        if isinstance(raw, RoutingRules):
            return raw
        if not raw:
            return DEFAULT_RULES
        data = DEFAULT_RULES.model_dump()
        data.update({key: value for key, value in raw.items() if key != "products"})
        if "products" in raw:
            data["products"] = _merge_products(data["products"], raw["products"])
        return cls.model_validate(data)


def _merge_products(defaults: list[dict[str, Any]], extra: Any) -> Any:
    """Configured products over the defaults, field by field; unknown codes are added."""
    if not isinstance(extra, list):
        return extra  # validation names the problem
    merged = {_product_key(p["code"]): p for p in defaults}
    added: list[Any] = []
    for item in extra:
        key = _product_key(item.get("code", "")) if isinstance(item, Mapping) else None
        if key is None or key not in merged:
            added.append(item)
            continue
        promise = item.get("promise", {})
        if isinstance(promise, Mapping):
            promise = {**merged[key]["promise"], **promise}
        merged[key] = {**merged[key], **item, "promise": promise}
    return [*merged.values(), *added]


# --- what goes in, what comes out -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """What routing looks at, mapped from the Salesforce order."""

    country: str
    postal_code: str = ""
    parcels: tuple[Parcel, ...] = ()
    order_value: Decimal | None = None
    relay_point_id: str = ""
    priority: bool = False
    customer_tier: str = ""
    deliver_by: dt.date | None = None  # the promise made to the customer, if any
    saturday_delivery: bool = False  # the order asks for it
    product_override: str = ""  # a product code chosen in Salesforce
    override_field: str = "product_override"  # its Salesforce field, named in errors
    facts: Mapping[str, Any] = field(default_factory=dict)  # any other mapped field

    @classmethod
    def from_request(cls, request: ShipmentRequest, **more: Any) -> RoutingFacts:
        """Facts from a prepared request; `more` adds order value, priority, tier, facts…"""
        address = request.recipient.address
        base: dict[str, Any] = {
            "country": address.country,
            "postal_code": address.postal_code,
            "parcels": request.parcels,
            "relay_point_id": request.options.relay_point_id,
            "saturday_delivery": request.options.saturday_delivery,
        }
        return cls(**{**base, **more})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule that did not pick its product, and why."""

    rule_name: str
    product_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    saturday_delivery: bool = False  # service 6 on the label
    relay_point_id: str = ""


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The chosen product and its dates; `reason` is one sentence a person can check."""

    product_code: str
    product_name: str
    service: str  # Chronopost skybill service: "0" normal, "6" Saturday delivery
    ship_date: dt.date
    promised_date: dt.date
    options: DeliveryOptions
    reason: str
    rule_name: str
    skipped: tuple[Skipped, ...] = ()
    promised_before: dt.time | None = None


# --- matching -------------------------------------------------------------------------------


def _kg(value: Decimal) -> str:
    return f"{value.normalize():f} kg"


def _heaviest(facts: RoutingFacts) -> Decimal:
    return max((p.weight_kg for p in facts.parcels), default=Decimal(0))


def _destination_unmet(when: Conditions, facts: RoutingFacts, zone: Zone) -> str | None:
    country, postal = facts.country.strip().upper(), facts.postal_code.strip()
    if when.countries and country not in when.countries:
        return f"country {country} is not one of {', '.join(when.countries)}"
    if country in when.exclude_countries:
        return f"country {country} is excluded"
    if when.zones and zone not in when.zones:
        return f"zone {zone} is not one of {', '.join(when.zones)}"
    if when.postal_prefixes and not postal.startswith(when.postal_prefixes):
        return f"postal code {postal} does not start with {', '.join(when.postal_prefixes)}"
    if when.exclude_postal_prefixes and postal.startswith(when.exclude_postal_prefixes):
        return f"postal code {postal} is excluded"
    if when.relay is not None and when.relay != bool(facts.relay_point_id):
        return "no relay point was chosen" if when.relay else "a relay point was chosen"
    return None


def _order_unmet(when: Conditions, facts: RoutingFacts) -> str | None:
    heaviest = _heaviest(facts)
    if when.min_parcel_weight_kg is not None and heaviest < when.min_parcel_weight_kg:
        return f"heaviest parcel {_kg(heaviest)} is under {_kg(when.min_parcel_weight_kg)}"
    if when.max_parcel_weight_kg is not None and heaviest > when.max_parcel_weight_kg:
        return f"heaviest parcel {_kg(heaviest)} is over {_kg(when.max_parcel_weight_kg)}"
    value = facts.order_value
    for bound, low in ((when.min_order_value, True), (when.max_order_value, False)):
        if bound is None:
            continue
        if value is None:
            return "the order value is unknown"
        if (value < bound) if low else (value > bound):
            return f"order value {value} is {'under' if low else 'over'} {bound}"
    if when.priority is not None and when.priority != facts.priority:
        return "not a priority order" if when.priority else "a priority order"
    tiers = when.customer_tiers
    if tiers and not any(_same(facts.customer_tier, t) for t in tiers):
        return f"customer tier {facts.customer_tier or '(none)'!r} is not one of {', '.join(tiers)}"
    for name, wanted in when.facts.items():
        actual = facts.facts.get(name)
        if not any(_same(actual, w) for w in _fact_values(wanted)):
            return f"{name} is {actual!r}, not {wanted!r}"
    return None


def _parcel_unfit(product: Product, index: int, parcel: Parcel) -> str | None:
    name = f"{product.name} ({product.code})"
    if parcel.weight_kg > product.max_weight_kg:
        return (
            f"parcel {index} weighs {_kg(parcel.weight_kg)}, over the "
            f"{_kg(product.max_weight_kg)} of {name}"
        )
    sides = [s for s in (parcel.length_cm, parcel.width_cm, parcel.height_cm) if s is not None]
    if not sides:
        return None
    longest = max(sides)
    if product.max_length_cm is not None and longest > product.max_length_cm:
        return f"parcel {index} is {longest} cm long, over the {product.max_length_cm} cm of {name}"
    girth = longest + 2 * (sum(sides) - longest)
    limit = product.max_length_girth_cm
    if len(sides) == 3 and limit is not None and girth > limit:
        return f"parcel {index} measures {girth} cm length + girth, over the {limit} cm of {name}"
    return None


def _product_unfit(product: Product, facts: RoutingFacts, zone: Zone) -> str | None:
    """Why `product` cannot carry this shipment, or None when it can."""
    if zone not in product.zones:
        return f"{product.name} does not serve zone {zone} ({facts.country.upper()})"
    if product.relay and not facts.relay_point_id:
        return f"{product.name} delivers to a relay point and none was chosen"
    if facts.relay_point_id and not product.relay:
        return (
            f"{product.name} delivers to the door but relay point {facts.relay_point_id} was chosen"
        )
    for index, parcel in enumerate(facts.parcels, start=1):
        problem = _parcel_unfit(product, index, parcel)
        if problem:
            return problem
    return None


# --- dates ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    ship_date: dt.date
    promised_date: dt.date
    saturday: bool
    notes: tuple[str, ...]


def _ship_date(product: Product, local: dt.datetime, country: str) -> tuple[dt.date, str]:
    """Today if it is a working day and the cutoff has not passed, else the next working day."""
    today = local.date()
    if not is_working_day(today, country):
        return next_working_day(today, country), f"{today} is not a working day"
    if local.time() >= product.cutoff:
        cutoff = product.cutoff.strftime("%H:%M")
        return next_working_day(today, country), f"{local:%H:%M} is past the {cutoff} cutoff"
    return today, ""


def _plan(
    product: Product, now: dt.datetime, rules: RoutingRules, zone: Zone, wants_saturday: bool
) -> _Plan:
    country = rules.holiday_country
    ship, late = _ship_date(product, now.astimezone(rules.zone), country)
    days = product.promise.days_for(zone)
    promised = add_working_days(ship, days, country)
    notes = [late] if late else []
    saturday = False
    if wants_saturday and zone is not Zone.FR:
        # Service 6 is for France only ([S] §3.12.4, rev 2.5.8; [D] §2.5 international).
        notes.append(f"Saturday delivery is never available abroad ({zone})")
    elif wants_saturday and not product.saturday_delivery:
        notes.append(f"Saturday delivery is not offered with {product.name}")
    elif wants_saturday:
        on_saturday = add_working_days(ship, days, country, saturday=True)
        if on_saturday.weekday() == 5:
            promised, saturday = on_saturday, True
            notes.append("Saturday delivery (service 6)")
        else:
            notes.append(f"Saturday delivery not needed, it arrives on {on_saturday:%A}")
    return _Plan(ship, promised, saturday, tuple(notes))


def promised_delivery_date(
    product_code: str,
    ship_date: dt.date,
    rules: RoutingRules | None = None,
    *,
    zone: Zone = Zone.FR,
    saturday: bool = False,
) -> dt.date:
    """The day `product_code` delivers when shipped on `ship_date` (Saturday only if offered)."""
    rules = rules or DEFAULT_RULES
    product = rules.product(product_code)
    if product is None:
        raise RoutingError(
            f"product {product_code!r} is not in the product table",
            code="UNKNOWN_PRODUCT",
            field="product_code",
        )
    return add_working_days(
        ship_date,
        product.promise.days_for(zone),
        rules.holiday_country,
        saturday=saturday and product.saturday_delivery,
    )


# --- the decision ---------------------------------------------------------------------------


def _decision(
    product: Product,
    plan: _Plan,
    facts: RoutingFacts,
    rule_name: str,
    head: str,
    skipped: Sequence[Skipped] = (),
) -> RoutingDecision:
    before = product.promise.before
    arrives = f"delivered {plan.promised_date}" + (f" before {before:%H:%M}" if before else "")
    parts = [f"{head} to {facts.country.upper()} {facts.postal_code}".rstrip()]
    parts.append(f"ships {plan.ship_date}, {arrives}")
    parts += plan.notes
    if skipped:
        parts.append("skipped " + ", ".join(f"'{s.rule_name}' ({s.reason})" for s in skipped))
    return RoutingDecision(
        product_code=product.code,
        product_name=product.name,
        service="6" if plan.saturday else "0",
        ship_date=plan.ship_date,
        promised_date=plan.promised_date,
        options=DeliveryOptions(plan.saturday, facts.relay_point_id),
        reason="; ".join(parts) + ".",
        rule_name=rule_name,
        skipped=tuple(skipped),
        promised_before=before,
    )


def _try_rule(
    rule: Rule, facts: RoutingFacts, now: dt.datetime, rules: RoutingRules, zone: Zone
) -> tuple[Product, _Plan] | str:
    """The product and dates of `rule`, or why it does not apply."""
    why = _destination_unmet(rule.when, facts, zone) or _order_unmet(rule.when, facts)
    product = rules.product(rule.product)
    if why or product is None:  # the product exists: RoutingRules checks it
        return why or f"unknown product {rule.product}"
    why = _product_unfit(product, facts, zone)
    if why:
        return why
    wants = facts.saturday_delivery if rule.saturday_delivery is None else rule.saturday_delivery
    plan = _plan(product, now, rules, zone, wants)
    if facts.deliver_by is not None and plan.promised_date > facts.deliver_by:
        return (
            f"{product.name} would deliver on {plan.promised_date}, after the deliver-by date "
            f"{facts.deliver_by}"
        )
    return product, plan


def _override(
    facts: RoutingFacts, now: dt.datetime, rules: RoutingRules, zone: Zone
) -> RoutingDecision:
    """The product chosen in Salesforce, if it can carry this shipment; else a RoutingError."""
    code, where = facts.product_override.strip(), facts.override_field
    product = rules.product(code)
    if product is None:
        known = ", ".join(f"{p.code} {p.name}" for p in rules.products)
        raise RoutingError(
            f"{where} asks for product {code!r}, which is not one of ours ({known})",
            code="PRODUCT_OVERRIDE_INVALID",
            field=where,
        )
    why = _product_unfit(product, facts, zone)
    if why:
        raise RoutingError(
            f"{where} asks for {product.name} ({product.code}), which cannot ship this: {why}",
            code="PRODUCT_OVERRIDE_INVALID",
            field=where,
        )
    plan = _plan(product, now, rules, zone, facts.saturday_delivery)
    if facts.deliver_by is not None and plan.promised_date > facts.deliver_by:
        late = f"kept although it delivers after the deliver-by date {facts.deliver_by}"
        plan = _Plan(plan.ship_date, plan.promised_date, plan.saturday, (*plan.notes, late))
    head = f"{where} asked for {product.name} ({product.code})"
    return _decision(product, plan, facts, "override", head)


def route(
    request_facts: RoutingFacts, now: dt.datetime, rules: RoutingRules | None = None
) -> RoutingDecision:
    """Pick the product: a valid Salesforce override, else the first rule that fits in time."""
    facts, rules = request_facts, rules or DEFAULT_RULES
    now = as_utc(now, name="now")
    if not facts.parcels:
        raise RoutingError("a shipment needs at least one parcel to be routed", field="parcels")
    zone = zone_of(facts.country, facts.postal_code, rules.eu_countries)
    if facts.product_override.strip():
        return _override(facts, now, rules, zone)
    skipped: list[Skipped] = []
    for rule in rules.rules:
        outcome = _try_rule(rule, facts, now, rules, zone)
        if isinstance(outcome, str):
            skipped.append(Skipped(rule.name, rule.product, outcome))
            continue
        product, plan = outcome
        head = f"Rule '{rule.name}' chose {product.name} ({product.code})"
        return _decision(product, plan, facts, rule.name, head, skipped)
    reasons = "; ".join(f"'{s.rule_name}': {s.reason}" for s in skipped) or "no rules configured"
    raise RoutingError(
        f"no Chronopost product fits this shipment to {facts.country.upper()} "
        f"{facts.postal_code}: {reasons}",
        field=_blocking_field(facts, rules, zone),
    )


def _blocking_field(facts: RoutingFacts, rules: RoutingRules, zone: Zone) -> str:
    """The field a person changes when no rule fits: the review queue shows it on the row."""
    serving = [p for p in rules.products if zone in p.zones]
    if not serving:
        return "country"
    parcels = list(enumerate(facts.parcels, start=1))
    if all(any(_parcel_unfit(p, i, parcel) for i, parcel in parcels) for p in serving):
        return "parcels"
    return facts.override_field  # the rules skip it, but a chosen product may carry it


# --- defaults: a French e-commerce shop -----------------------------------------------------
# Codes and weight limits: reference notes (karrio units, ShipStation docs): Chrono 13 "01",
# Chrono 18 "16", Chrono Relais "86" (20 kg), Chrono Classic "44" (EU), Chrono Express "17";
# Chrono Relais Europe "49" and Chrono Reverse 13 "4T" from products.csv ([S] Annexe 8, [D] §3).
# Home sizes: longest side 150 cm, length + girth 300 cm (conseils-finance.fr, Chronopost
# dimensions 2025). Relay sizes: 100 cm and 250 cm (chronopost.fr, Chrono Swap Relais page,
# same relay Pickup network). Cutoffs and international working days are our defaults: set
# yours from your pickup contract.
_DEFAULTS: dict[str, Any] = {
    "products": [
        {
            "code": "01",
            "name": "Chrono 13",
            "zones": ["FR"],
            "promise": {"working_days": 1, "before": "13:00"},
            "saturday_delivery": True,
        },
        {
            "code": "16",
            "name": "Chrono 18",
            "zones": ["FR"],
            "promise": {"working_days": 1, "before": "18:00"},
            "saturday_delivery": True,
        },
        {
            "code": "86",
            "name": "Chrono Relais",
            "zones": ["FR"],
            "relay": True,
            "max_weight_kg": 20,
            "max_length_cm": 100,
            "max_length_girth_cm": 250,
            "promise": {"working_days": 1, "before": "13:00"},
        },
        {
            # Relay points in Europe ([D] §3.2; products.csv: 20 kg, no Saturday abroad).
            "code": "49",
            "name": "Chrono Relais Europe",
            "zones": ["EU"],
            "relay": True,
            "max_weight_kg": 20,
            "max_length_cm": 100,
            "max_length_girth_cm": 250,
            "cutoff": "16:00",
            "promise": {"working_days": 3},
        },
        {
            # A return product ([D] §3.6): only chosen by an override (the return label flow).
            "code": "4T",
            "name": "Chrono Reverse 13",
            "zones": ["FR"],
            "promise": {"working_days": 1, "before": "13:00"},
        },
        {
            "code": "44",
            "name": "Chrono Classic",
            "zones": ["EU"],
            "cutoff": "16:00",
            "promise": {"working_days": 3},
        },
        {
            "code": "17",
            "name": "Chrono Express",
            "zones": ["EU", "DOM", "WORLD"],
            "cutoff": "16:00",
            "promise": {"working_days": 3, "zone_days": {"EU": 2}},
        },
    ],
    "rules": [
        {"name": "relay-france", "product": "86", "when": {"zones": ["FR"], "relay": True}},
        {"name": "priority-france", "product": "01", "when": {"zones": ["FR"], "priority": True}},
        {
            "name": "vip-france",
            "product": "01",
            "when": {"zones": ["FR"], "customer_tiers": ["gold", "vip"]},
        },
        {"name": "home-france", "product": "16", "when": {"zones": ["FR"]}},
        {"name": "europe", "product": "44", "when": {"zones": ["EU"]}},
        {"name": "relay-europe", "product": "49", "when": {"zones": ["EU"], "relay": True}},
        {"name": "europe-express", "product": "17", "when": {"zones": ["EU"]}},
        {"name": "world", "product": "17", "when": {"zones": ["DOM", "WORLD"]}},
    ],
}

DEFAULT_RULES: RoutingRules = RoutingRules.model_validate(_DEFAULTS)
