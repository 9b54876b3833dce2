"""`check_mapping`: the mapping compared with the org's describe before anything runs.

Reports unknown objects, relationships and fields, and fields of the wrong type, then tries the
trigger query once (LIMIT 1) so a broken trigger condition shows too. It only reads: it must
never write to the org, and it reports every problem rather than stopping at the first.
"""

from __future__ import annotations

from typing import Any

from chronoforce.domain.errors import ChronoforceError
from chronoforce.salesforce.describe_walk import (
    Describer,
    MappingProblem,
    Problem,
    _Org,
    _resolve,
)
from chronoforce.salesforce.mapping import FieldSpec, Kind, MappingConfig, soql_for_trigger

__all__ = ["ACCEPTED", "Describer", "MappingProblem", "Problem", "check_mapping", "org_notes"]

# describe `type` values accepted for each kind of mapped value (REST API describe reference).
ACCEPTED: dict[Kind, frozenset[str]] = {
    "text": frozenset(
        {
            "string",
            "textarea",
            "phone",
            "email",
            "url",
            "picklist",
            "multipicklist",
            "combobox",
            "id",
            "reference",
            "encryptedstring",
        }
    ),
    "number": frozenset({"double", "currency", "int", "percent", "long"}),
    "boolean": frozenset({"boolean"}),
}


def _check(org: _Org, sobject: str, spec: FieldSpec) -> list[MappingProblem]:
    problems = []
    for path in spec.paths:
        described, problem = _resolve(org, sobject, path, spec.key)
        if problem is not None:
            problems.append(problem)
            continue
        kind_types = ACCEPTED.get(spec.kind)
        actual = str((described or {}).get("type", ""))
        if kind_types is not None and actual not in kind_types:
            problems.append(
                MappingProblem(
                    spec.key,
                    path,
                    sobject,
                    "wrong_type",
                    f"{path} is {actual}, {spec.key} needs a {spec.kind} field",
                )
            )
    return problems


def check_mapping(client: Describer, mapping: MappingConfig) -> list[MappingProblem]:
    """Every problem of the mapping against this org; an empty list means ready to run.

    Fallback paths this org lacks are skipped as at start-up (`org_notes` lists them); a key
    none of whose paths exists is a problem."""
    from chronoforce.salesforce.org_shape import fit_mapping

    mapping, _ = fit_mapping(client, mapping)
    org = _Org(client)
    root = mapping.trigger_object
    if org.of(root) is None:
        return [
            MappingProblem("trigger_object", root, root, "unknown_object", f"{root} does not exist")
        ]
    problems: list[MappingProblem] = []
    specs = [FieldSpec("modstamp_field", (mapping.modstamp_field,), "any"), *mapping.specs()]
    for spec in specs:
        problems += _check(org, root, spec)
    items = mapping.items
    if items is not None:
        item_specs = (
            FieldSpec("items.order_field", (items.order_field,), "text"),
            FieldSpec("items.quantity", (items.quantity,), "number"),
            FieldSpec("items.weight", (items.weight,), "number"),
        )
        for spec in item_specs:
            problems += _check(org, items.object, spec)
    if not problems:
        problems += _try_query(client, mapping)
    return problems


def org_notes(client: Any, mapping: MappingConfig) -> list[str]:
    """What `chronoforce mapping check` tells beside the problems: the org's shape (Order-only
    mode) and the fallback paths skipped because this org lacks them."""
    from chronoforce.salesforce.org_shape import fit_mapping, read_shape

    notes: list[str] = []
    if hasattr(client, "describe_global") and read_shape(client).order_only:
        notes.append(
            "Order-only mode: this org has no Shipment object (or the integration user may not "
            "read it); labels, files, tracking and Cases are written to the Order, and no query "
            "names Shipment"
        )
    notes += fit_mapping(client, mapping)[1]
    return notes


def _try_query(client: Describer, mapping: MappingConfig) -> list[MappingProblem]:
    text = soql_for_trigger(mapping, limit=1)
    try:
        for _ in client.query_iter(text):
            break
    except ChronoforceError as exc:
        if exc.transient:
            raise
        return [
            MappingProblem(
                "trigger_condition",
                mapping.trigger_condition,
                mapping.trigger_object,
                "query_refused",
                f"{exc.code}: {exc.message}",
            )
        ]
    return []
