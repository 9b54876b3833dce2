"""What this org has, read from describe: objects the user can see, and mapping paths that fit.

Shipment exists only with Order Management, Field Service, B2B Commerce and a few industry clouds
(REAL-ORG-FACTS.md §1.1); an org without it runs in Order-only mode and chronoforce must never
send a query naming it. A mapping key with fallbacks (`order_id: [Order__c,
OrderSummary.OriginalOrderId, …]`) keeps only the paths this org has. It only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chronoforce.logs import get_logger
from chronoforce.salesforce.mapping import MappingConfig

log = get_logger(component="salesforce")

SHIPMENT = "Shipment"


class Describer(Protocol):
    def describe(self, sobject: str) -> dict[str, Any]: ...

    def describe_global(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OrgShape:
    """The objects the integration user can see (describeGlobal lists only those)."""

    objects: frozenset[str]  # lower-case API names

    def has(self, sobject: str) -> bool:
        return sobject.lower() in self.objects

    @property
    def order_only(self) -> bool:
        """No Shipment object: labels, files, tracking and Cases go to the Order alone."""
        return not self.has(SHIPMENT)


def read_shape(client: Describer) -> OrgShape:
    """One `GET /sobjects` (describeGlobal): the cheap, reliable probe (jsforce#423)."""
    described = client.describe_global()
    names = frozenset(str(o.get("name", "")).lower() for o in described.get("sobjects", []))
    shape = OrgShape(names)
    log.debug("salesforce org shape read", objects=len(names), order_only=shape.order_only)
    return shape


def fit_mapping(client: Any, mapping: MappingConfig) -> tuple[MappingConfig, list[str]]:
    """The mapping without the fallback paths this org lacks, and a note for each dropped one.

    A key whose every path is missing is left alone: `chronoforce mapping check` reports it
    (the trigger query would be refused). Only keys with several paths are looked at, so a
    plain mapping costs no describe call.
    """
    from chronoforce.salesforce.describe_walk import _Org, _resolve

    org = _Org(client)
    root = mapping.trigger_object
    notes: list[str] = []
    updates: dict[str, Any] = {}
    for spec in mapping.specs():
        if len(spec.paths) < 2:
            continue
        kept = tuple(p for p in spec.paths if _resolve(org, root, p, spec.key)[1] is None)
        if kept == spec.paths or not kept:
            continue
        for path in spec.paths:
            if path not in kept:
                notes.append(f"{spec.key}: {root} has no {path} in this org; path skipped")
        _set(updates, spec.key, kept)
    if not updates:
        return mapping, notes
    for note in notes:
        log.info("mapping path skipped", note=note)
    return _updated(mapping, updates), notes


def _set(updates: dict[str, Any], key: str, paths: tuple[str, ...]) -> None:
    group, _, name = key.partition(".")
    if name:
        updates.setdefault(group, {})[name] = paths
    else:
        updates[key] = paths


def _updated(mapping: MappingConfig, updates: Mapping[str, Any]) -> MappingConfig:
    values: dict[str, Any] = {}
    for key, value in updates.items():
        current = getattr(mapping, key)
        if key == "facts":
            values[key] = {**current, **value}
        elif isinstance(value, dict):
            values[key] = current.model_copy(update=value)
        else:
            values[key] = value
    return mapping.model_copy(update=values)


# Every object the pipeline writes: their describes are read at start-up so writes fit the
# org's fields (salesforce/fit.py) without a describe call in the flush path.
WRITTEN = (
    "Order",
    "Shipment",
    "Case",
    "CaseComment",
    "Chronopost_Tracking_Event__c",
    "Chronopost_Integration_Error__c",
)


def prepare_org(client: Any, mapping: MappingConfig) -> tuple[OrgShape | None, MappingConfig]:
    """At start-up: the org's shape, the mapping fitted to it, the written objects described.

    A client without describe (a test double) leaves everything as configured."""
    if not hasattr(client, "describe_global"):
        return None, mapping
    shape = read_shape(client)
    if hasattr(client, "prefetch"):
        client.prefetch([name for name in WRITTEN if shape.has(name)])
    fitted, _ = fit_mapping(client, mapping)
    return shape, fitted
