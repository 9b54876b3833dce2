"""Walking a mapped field path (`ShipToContact.Phone`) through the org's describes.

Shared by the mapping check (`mapping_check.py`) and the start-up read of the org's shape
(`org_shape.py`). It only reads describes, each fetched once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from chronoforce.domain.errors import SalesforceValidationError

Problem = Literal[
    "unknown_object", "unknown_relationship", "unknown_field", "wrong_type", "query_refused"
]


class Describer(Protocol):
    def describe(self, sobject: str) -> dict[str, Any]: ...

    def query_iter(self, query: str) -> Any: ...


@dataclass(frozen=True)
class MappingProblem:
    key: str  # the mapping key, e.g. recipient.city
    path: str  # the Salesforce field path, e.g. ShipToContact.Phone
    sobject: str  # the object the failing step was looked up on
    problem: Problem
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class _Org:
    """Describes fetched once, unknown objects remembered."""

    def __init__(self, client: Describer) -> None:
        self.client = client
        self.fields: dict[str, dict[str, dict[str, Any]] | None] = {}

    def of(self, sobject: str) -> dict[str, dict[str, Any]] | None:
        if sobject not in self.fields:
            try:
                described = self.client.describe(sobject)
            except SalesforceValidationError:
                self.fields[sobject] = None
            else:
                self.fields[sobject] = {
                    str(f["name"]).lower(): f for f in described.get("fields", [])
                }
        return self.fields[sobject]


def _resolve(
    org: _Org, sobject: str, path: str, key: str
) -> tuple[dict[str, Any] | None, MappingProblem | None]:
    """Walk `Account.Owner.Name` from `sobject`; the field's describe or the problem."""
    *relations, last = path.split(".")
    current = sobject
    for relation in relations:
        fields = org.of(current)
        if fields is None:
            return None, MappingProblem(
                key, path, current, "unknown_object", f"{current} does not exist"
            )
        ref = next(
            (
                f
                for f in fields.values()
                if str(f.get("relationshipName") or "").lower() == relation.lower()
            ),
            None,
        )
        if ref is None or not ref.get("referenceTo"):
            return None, MappingProblem(
                key,
                path,
                current,
                "unknown_relationship",
                f"{current} has no relationship {relation}",
            )
        current = str(ref["referenceTo"][0])
    fields = org.of(current)
    if fields is None:
        return None, MappingProblem(
            key, path, current, "unknown_object", f"{current} does not exist"
        )
    found = fields.get(last.lower())
    if found is None:
        return None, MappingProblem(
            key, path, current, "unknown_field", f"{current} has no field {last}"
        )
    return found, None
