"""Shipper locations (issue 23): which place an order leaves from, and why.

An order names its location in a mapped Salesforce field (`mapping.location`, e.g. the package's
`Order.Chronopost_Location__c` or the org's warehouse field), whose value is a location key or
one of its aliases; else the first of `locations.rules` that matches (destination country,
postal prefix, the product routing picks, mapped facts such as a stock flag); else the default
location. The choice carries its reason, stored on the shipment. A value naming no location is
never guessed: `UnknownLocationError` names the record, the field and the known keys.

Labels, pickups, rates, returns and Chrono Precise take from the chosen `Site` its sender
address, its routing rules (cut-offs, holidays) and its key, which the Chronopost adapter turns
into the site's contract (chronopost/config.py `ChronopostAccounts.for_location`). They all
choose through `Locations.choose_for`: the location already stored on the shipment row first (a
label made at lyon is picked up, returned and re-quoted from lyon), else `choose` with the
product the use case knows (docs/locations.md says which). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from chronoforce.config import Settings, ShipperConfig
from chronoforce.config.sections import (
    MAIN_LOCATION,
    LocationRule,
    LocationsConfig,
    PickupDefaultsConfig,
    section,
)
from chronoforce.domain.address import require_sendable
from chronoforce.domain.errors import MappingError, RoutingError
from chronoforce.domain.models import Address, Civility, Contact, Party
from chronoforce.domain.routing import RoutingFacts, RoutingRules, route
from chronoforce.salesforce.mapping import MappingConfig, value_at

DEFAULT_REASON = "default: no location field"
LEGACY_REASON = "labeled before locations existed: the default"

# What a use case knows of the product a `products:` rule asks for: a code, a way to work it
# out only when a rule asks (routing is not free), or nothing.
ProductSource = str | Callable[[], str | None] | None


class UnknownLocationError(MappingError):
    """The order's location field holds a value that names no configured location."""

    default_code = "UNKNOWN_LOCATION"

    def __init__(self, message: str, *, candidates: tuple[str, ...], **context: Any) -> None:
        super().__init__(message, **context)
        self.candidates = candidates


def party_of(config: ShipperConfig, role: Literal["shipper", "recipient"] = "shipper") -> Party:
    """A configured address of ours as a party, checked like any other (issue 20)."""
    party = Party(
        Address(
            config.name, config.name2, config.line1, config.line2, config.postal_code,
            config.city, config.country,
        ),
        Contact(config.contact_name, Civility(config.civility), config.phone, "", config.email),
    )  # fmt: skip
    return require_sendable(party, role)


def _code(value: str) -> str:
    text = str(value).strip().upper()
    return text.zfill(2) if text.isdigit() and len(text) == 1 else text


@dataclass(frozen=True)
class Site:
    """One location as the use cases need it."""

    key: str
    shipper: ShipperConfig
    return_address: ShipperConfig
    cutoff: dt.time | None = None
    cutoffs: Mapping[str, dt.time] = field(default_factory=dict)
    holiday_country: str | None = None
    timezone: str | None = None
    pickup: PickupDefaultsConfig | None = None  # a pickup's window when none is asked

    def party(self) -> Party:
        return self._party

    @cached_property
    def _party(self) -> Party:  # checked once: every label of the location prints it
        return party_of(self.shipper)

    def rules(self, base: RoutingRules) -> RoutingRules:
        """`base` with this location's cut-offs, holiday country and time zone."""
        if not (self.cutoff or self.cutoffs or self.holiday_country or self.timezone):
            return base
        products = tuple(
            p.model_copy(
                update={"cutoff": self.cutoffs.get(_code(p.code), self.cutoff or p.cutoff)}
            )
            for p in base.products
        )
        update: dict[str, Any] = {"products": products}
        if self.holiday_country:
            update["holiday_country"] = self.holiday_country
        if self.timezone:
            update["timezone"] = self.timezone
        return base.model_copy(update=update)


@dataclass(frozen=True)
class Choice:
    site: Site
    reason: str
    stored: bool = False  # taken from a shipment row (where it already left from)

    @property
    def key(self) -> str:
        return self.site.key


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual.strip().casefold() == wanted.strip().casefold()
    if isinstance(wanted, bool) and isinstance(actual, str):  # a checkbox read as text
        return actual.strip().lower() == str(wanted).lower()
    return bool(actual == wanted)


@dataclass
class Locations:
    """The configured locations, the default, the rules and the mapped field."""

    sites: dict[str, Site]
    default: str
    rules: tuple[LocationRule, ...] = ()
    field_paths: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # casefolded key or alias → key
    _rules_cache: dict[tuple[str, int], RoutingRules] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, mapping: MappingConfig) -> Locations:
        # Typed at load; a caller's model_copy(update=…) may hand plain mappings in.
        config = section(LocationsConfig, "locations", settings.locations)
        api: Any = settings.api
        returns = api.get("return_address") if isinstance(api, Mapping) else api.return_address
        if returns is not None:  # the warehouse returns went to before locations
            returns = section(ShipperConfig, "api.return_address", returns)
        if not config.sites:
            shipper = settings.chronopost.shipper
            main = Site(MAIN_LOCATION, shipper, returns or shipper)
            sites = {MAIN_LOCATION: main}
            return cls(
                sites, MAIN_LOCATION, config.rules, mapping.location, {MAIN_LOCATION: MAIN_LOCATION}
            )
        sites = {
            key: Site(
                key=key,
                shipper=site.shipper(),
                return_address=site.return_address or site.shipper(),
                cutoff=site.cutoff,
                cutoffs=dict(site.cutoffs),
                holiday_country=site.holiday_country,
                timezone=site.timezone,
                pickup=site.pickup,
            )
            for key, site in config.sites.items()
        }
        aliases = {
            name.strip().casefold(): key
            for key, site in config.sites.items()
            for name in (key, *site.aliases)
        }
        return cls(sites, config.default_key, config.rules, mapping.location, aliases)

    def site(self, key: str | None) -> Site:
        """The site of a stored key; an empty or unknown one (an older row) is the default."""
        return self.sites.get(key or "", self.sites[self.default])

    def routing(self, site: Site, base: RoutingRules) -> RoutingRules:
        cache_key = (site.key, id(base))
        rules = self._rules_cache.get(cache_key)
        if rules is None:
            rules = self._rules_cache[cache_key] = site.rules(base)
        return rules

    def choose_for(
        self,
        record: Mapping[str, Any],
        facts: RoutingFacts | Callable[[], RoutingFacts],
        product: ProductSource = None,
        *,
        stored: Any = None,
    ) -> Choice:
        """The one way every use case chooses (issue 23): where `stored` (a shipment row, or
        anything with `location`, `location_reason`, `id`, `intent`, `generation`) already left
        from, else the order's field, a rule (with `product` for a `products:` one), the default.

        A stored key no longer configured is chosen again; a row labeled before locations
        existed (no stored key, `generation` > 0) belongs to the default, as its slip does."""
        if stored is not None:
            key = str(getattr(stored, "location", "") or "")
            what = f"{getattr(stored, 'intent', '') or 'outbound'} shipment {stored.id}"
            if key in self.sites:
                why = str(getattr(stored, "location_reason", "") or "stored")
                return Choice(self.sites[key], f"{what} left from {key} ({why})", stored=True)
            if not key and int(getattr(stored, "generation", 0) or 0) > 0:
                return Choice(self.sites[self.default], f"{what} {LEGACY_REASON}", stored=True)
        ask = product if callable(product) else (lambda: product)
        return self.choose(record, facts() if callable(facts) else facts, ask)

    def choose(
        self,
        record: Mapping[str, Any],
        facts: RoutingFacts,
        product: Callable[[], str | None] = lambda: None,
    ) -> Choice:
        """The order's location: its field, else the first matching rule, else the default."""
        record_id = str(record.get("Id") or "")
        for path in self.field_paths:
            value = value_at(record, path)
            if value in (None, ""):
                continue
            text = str(value).strip()
            key = self.aliases.get(text.casefold())
            if key is None:
                known = tuple(sorted(self.sites))
                raise UnknownLocationError(
                    f"{path} = {text!r} names no location; known locations: {', '.join(known)}",
                    candidates=known,
                    record_id=record_id,
                    field=path,
                )
            return Choice(self.sites[key], f"field {path} = {key}")
        for index, rule in enumerate(self.rules, start=1):
            why = _matches(rule, facts, product)
            if why is not None:
                return Choice(self.sites[rule.location], f"rule {index}: {why}")
        reason = DEFAULT_REASON + (", no rule matched" if self.rules else "")
        return Choice(self.sites[self.default], reason)


def _matches(
    rule: LocationRule, facts: RoutingFacts, product: Callable[[], str | None]
) -> str | None:
    """What made `rule` match (e.g. "country BE"), or None when it does not."""
    said: list[str] = []
    country, postal = facts.country.strip().upper(), facts.postal_code.strip()
    if rule.countries:
        if country not in rule.countries:
            return None
        said.append(f"country {country}")
    if rule.postal_prefixes:
        prefix = next((p for p in rule.postal_prefixes if postal.startswith(p)), None)
        if prefix is None:
            return None
        said.append(f"postal code {postal} starts with {prefix}")
    if rule.products:
        code = product()
        if code is None or _code(code) not in rule.products:
            return None
        said.append(f"product {code}")
    for name, wanted in rule.facts.items():
        actual = facts.facts.get(name)
        values = tuple(wanted) if isinstance(wanted, list | tuple) else (wanted,)
        if not any(_same(actual, w) for w in values):
            return None
        said.append(f"{name} = {actual}")
    return ", ".join(said) or "matches every order"


def routed_product(
    facts: RoutingFacts, now: dt.datetime, rules: RoutingRules
) -> Callable[[], str | None]:
    """The product the base `routing:` rules pick for `facts` (with the order's override),
    worked out only when a `products:` rule asks; None when routing refuses the order."""

    def product() -> str | None:
        try:
            return route(facts, now, rules).product_code
        except RoutingError:
            return None

    return product


def location_key(shipment: Any, default: str = MAIN_LOCATION) -> str:
    """The location a stored shipment left from (the end-of-day slip groups by it); a row made
    before locations existed belongs to `default`."""
    return str(getattr(shipment, "location", "") or default)
