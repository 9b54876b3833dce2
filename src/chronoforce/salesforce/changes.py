"""Change detection by SOQL delta on SystemModstamp: what changed since a watermark, page by page.

The watermark is data the caller passes in and stores (in the `watermark` table, in the same
transaction as the work a page caused). A read starts at the watermark; the first read and then
one read every `overlap_every` start an overlap window before it, so rows committed late (with a
stamp older than one already read) are found within that time. Reading the window on every
read would download every order still waiting to ship again each time, which during a burst of
thousands is most of what detection costs. Pairs (Id, SystemModstamp) it already delivered are
dropped. It never loads a whole result set: records stream from `query_iter` in pages.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from chronoforce.salesforce.mapping import MappingConfig, soql_for_trigger, value_at
from chronoforce.salesforce.soql import soql_datetime

DEFAULT_OVERLAP = dt.timedelta(seconds=60)
PAGE_SIZE = 200  # one collection's worth: the pipeline records and writes back in 200s


class Querying(Protocol):
    def query_iter(self, query: str) -> Iterator[dict[str, Any]]: ...


def parse_modstamp(value: str) -> dt.datetime:
    """Salesforce's `2024-05-01T10:00:00.000+0000` or our `…Z` watermark, as aware UTC."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]  # +0000 → +00:00 for fromisoformat on every 3.11
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def watermark_of(value: str) -> str:
    """The canonical watermark text: fixed-width UTC, so later values sort after earlier ones."""
    return soql_datetime(parse_modstamp(value))


@dataclass(frozen=True)
class Change:
    sf_id: str
    modstamp: str  # canonical form (watermark_of)
    record: dict[str, Any]


@dataclass(frozen=True)
class ChangePage:
    """Up to PAGE_SIZE changes and the watermark to store once they are recorded."""

    changes: list[Change]
    watermark: str | None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [c.record for c in self.changes]


@dataclass
class DeltaReader:
    """Reads the trigger object's changes; remembers delivered keys inside the overlap window.

    After a restart the memory is empty, so at most one overlap window is delivered again;
    consumers must be idempotent for that (the pipeline's shipment rows are unique per record).
    """

    client: Querying
    mapping: MappingConfig
    overlap: dt.timedelta = DEFAULT_OVERLAP
    page_size: int = PAGE_SIZE
    overlap_every: dt.timedelta = DEFAULT_OVERLAP  # how often a read looks back `overlap`
    clock: Callable[[], float] = time.monotonic
    _overlap_read_at: float | None = field(default=None, init=False, repr=False)
    _drained: str | None = field(default=None, init=False, repr=False)  # read to its end at
    _seen: dict[tuple[str, str], dt.datetime] = field(default_factory=dict, repr=False)
    _mark: str | None = field(default=None, init=False, repr=False)

    def read(self, watermark: str | None) -> Iterator[ChangePage]:
        """Changes since `watermark` (None: everything matching the trigger condition)."""
        since, after = None, False
        if watermark:
            start = parse_modstamp(watermark)
            now = self.clock()
            last = self._overlap_read_at
            if last is None or now - last >= self.overlap_every.total_seconds():
                start -= self.overlap
                self._overlap_read_at = now
            else:
                # Every record stamped at the watermark was delivered by a read this reader
                # finished (many orders share one stamp when made together): start after it.
                after = self._drained == watermark_of(watermark)
            since = soql_datetime(start)
        yield from self._pages(soql_for_trigger(self.mapping, since, after=after), watermark)
        self._drained = self._mark  # reached only once the whole result was read
        self._forget_before(self._mark)

    def full_scan(self, since: dt.date | dt.datetime | None = None) -> Iterator[ChangePage]:
        """Backfill: every record matching the trigger condition changed since a date."""
        literal = None
        if isinstance(since, dt.datetime):
            literal = soql_datetime(since if since.tzinfo else since.replace(tzinfo=dt.UTC))
        elif isinstance(since, dt.date):
            literal = soql_datetime(dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC))
        # A scan delivers each record once: remembering them would grow with the org.
        yield from self._pages(soql_for_trigger(self.mapping, literal), None, remember=False)

    def _pages(
        self, query: str, watermark: str | None, *, remember: bool = True
    ) -> Iterator[ChangePage]:
        self._mark = watermark_of(watermark) if watermark else None
        records = iter(self.client.query_iter(query))
        while chunk := list(islice(records, self.page_size)):
            changes = [c for c in (self._change(r, remember) for r in chunk) if c is not None]
            # A page of only repeats still moves the watermark: yield it too.
            yield ChangePage(changes=changes, watermark=self._mark)

    def _change(self, record: Mapping[str, Any], remember: bool = True) -> Change | None:
        raw = value_at(record, self.mapping.modstamp_field)
        sf_id = str(record.get("Id") or "")
        if not raw or not sf_id:
            return None
        stamp = parse_modstamp(str(raw))
        modstamp = soql_datetime(stamp)
        if self._mark is None or modstamp > self._mark:
            self._mark = modstamp
        key = (sf_id, modstamp)
        if key in self._seen:
            return None
        if remember:
            self._seen[key] = stamp
        return Change(sf_id=sf_id, modstamp=modstamp, record=dict(record))

    def _forget_before(self, mark: str | None) -> None:
        """Keep only keys a later read's overlap window can return again."""
        if mark is None:
            return
        horizon = parse_modstamp(mark) - self.overlap
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
