"""What the pipeline needs from Salesforce and Chronopost, as protocols.

The adapters (`chronoforce.salesforce`, `chronoforce.chronopost`) satisfy them; the pipeline
depends on nothing else of theirs, so its rules read without transport details.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from chronoforce.domain.models import LabelFormat, LabelResult, ShipmentRequest, TrackingEvent


class RecordResultLike(Protocol):
    id: str | None
    success: bool

    @property
    def errors(self) -> Sequence[Any]: ...


class SalesforcePort(Protocol):
    def query_iter(self, soql: str) -> Iterator[dict[str, Any]]: ...

    def collection(
        self,
        op: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        external_id_field: str | None = None,
        all_or_none: bool = False,
    ) -> Sequence[RecordResultLike]: ...

    def delete(self, ids: Sequence[str]) -> Sequence[RecordResultLike]: ...


class CarrierPort(Protocol):
    def create_shipment(self, request: ShipmentRequest) -> LabelResult: ...

    def track(self, skybill_number: str) -> Sequence[TrackingEvent]: ...

    def cancel(
        self,
        skybill_number: str,
        *,
        created_at: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> Any: ...

    def find_by_reference(self, shipper_ref: str) -> Any: ...

    def reserved_label(self, reservation_number: str, label_format: LabelFormat) -> Any: ...


T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
