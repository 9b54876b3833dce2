"""The outbox: Salesforce writes queued with the work that caused them, flushed in collections.

Writes to the same record are merged, identical writes are queued once (`dedup_key`), and each
flush sends at most 200 records per sObject Collections call with allOrNone=false. A record the
org refuses becomes an exception for that record only; a locked row is retried later.
Tracking writes may be held (`hold_until`, issue 21): an object's held rows wait until the
earliest hold is over or a full collection is pending, then all of them go (`due_objects`).
REQUEST_LIMIT_EXCEEDED (or our own API reserve) pauses every flusher of the cluster
(`cluster_state` row `pause:salesforce`) until the budget may have recovered.

A voided label's file is unlinked from the records it was attached to (`unlink_file_row`): the
warehouse no longer sees it next to the new one, while the file itself stays in the integration
user's library as the record of what was printed (docs/salesforce-mapping.md says why).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from chronoforce.domain.clock import SYSTEM_CLOCK
from chronoforce.domain.errors import (
    ChronoforceError,
    PermanentError,
    RateLimitedError,
    SalesforceUnavailableError,
    SalesforceValidationError,
    TransientError,
    backoff_for,
    retry_delay,
)
from chronoforce.domain.models import LabelFormat
from chronoforce.logs import get_logger
from chronoforce.pipeline import cluster
from chronoforce.pipeline.ports import SalesforcePort, chunks
from chronoforce.salesforce import files
from chronoforce.salesforce.client import (
    CollectionRequest,
    Outcome,
    Request,
    composite_calls,
    send_all,
)
from chronoforce.salesforce.fields import LABEL_STATUS
from chronoforce.salesforce.files import FILE_KEY_FIELD  # noqa: F401 (re-exported for file rows)
from chronoforce.salesforce.soql import by_key_soql
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, LabelReprint, Manifest, Outbox, Parcel
from chronoforce.store.ops import insert_ignore

COLLECTION_SIZE = 200
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)
FILE_BATCH_BYTES = 6_000_000  # keep one collection of ContentVersions well under the body limit
MAX_ATTEMPTS = backoff_for(SalesforceUnavailableError).max_attempts
CLAIM_SECONDS = 120
PAUSE = "pause:salesforce"  # cluster_state row: Salesforce writes stopped until its expiry
TRACKING_URL = "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={numbers}"
# Order.Chronopost_Tracking_Number__c and Shipment.Chronopost_Skybill_Numbers__c are Text(255)
# (salesforce/force-app); Shipment.TrackingNumber is string(255) in the sandbox's standard
# objects, its real length unconfirmed (REAL-ORG-FACTS.md §1.2), so 255 is assumed.
TEXT_LIMIT = 255
URL_LIMIT = 255  # a Salesforce URL field holds at most 255 characters (REAL-ORG-FACTS.md §1.2)

log = get_logger(component="writeback")
Key = TypeVar("Key")


def payload_key(sf_object: str, target: str, payload: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{sf_object}:{target}:{digest[:24]}"


def outbox_row(
    *,
    sf_object: str,
    operation: str,
    payload: dict[str, Any],
    sf_id: str = "",
    external_id_field: str = "",
    shipment_id: int | None = None,
    dedup_key: str | None = None,
) -> dict[str, Any]:
    """One write to queue, as the outbox row's values (`enqueue_rows` inserts them)."""
    target = sf_id or str(payload.get(external_id_field, "")) or "new"
    return {
        "dedup_key": dedup_key or payload_key(sf_object, f"{operation}:{target}", payload),
        "shipment_id": shipment_id,
        "sf_object": sf_object,
        "sf_id": sf_id,
        "operation": operation,
        "external_id_field": external_id_field,
        "payload": payload,
    }


# A sent row, by id (run as one executemany on the session's connection).
_SENT = (
    update(Outbox)
    .where(Outbox.id == bindparam("b_id"))
    .values(state="sent", sent_at=bindparam("b_sent_at"), result=bindparam("b_result"))
)
PDF_FORMATS = frozenset(f.value for f in LabelFormat if f.is_pdf)  # the rest is ZPL


def label_file_row(
    *,
    shipment_id: int,
    generation: int,
    parcels: Sequence[tuple[int, int]],
    label_format: str,
    title: str,
    name: str,
    attach_to: Sequence[str],
) -> dict[str, Any]:
    """The outbox row of one label file (all of a shipment's parcels, one generation):
    `parcels` as (parcel id, label size); first in `attach_to` is where Salesforce files it,
    the others get links. Made once per shipment and generation (`dedup_key`)."""
    first, *others = [x for x in attach_to if x]
    suffix = "pdf" if label_format in PDF_FORMATS else "zpl"
    return outbox_row(
        sf_object="ContentVersion",
        operation="file",
        shipment_id=shipment_id,
        dedup_key=f"file:{shipment_id}:{generation}",
        payload={
            "parcel_ids": [parcel_id for parcel_id, _ in parcels],
            "size": sum(size for _, size in parcels),
            "title": title,
            "filename": f"{name}.{suffix}",
            "first_publish_location_id": first,
            "link_to": [x for x in others if x != first],
        },
    )


def pod_file_row(
    *,
    shipment_id: int,
    dedup_key: str,
    data: bytes,
    title: str,
    filename: str,
    attach_to: Sequence[str],
) -> dict[str, Any]:
    """The outbox row of a file that is not a label (a proof of delivery, pipeline/pod.py):
    its bytes travel in the row (`data_b64`), the rest as `label_file_row`. Made once per key."""
    first, *others = [x for x in attach_to if x]
    return outbox_row(
        sf_object="ContentVersion",
        operation="file",
        shipment_id=shipment_id,
        dedup_key=dedup_key,
        payload={
            "parcel_ids": [],
            "data_b64": base64.b64encode(data).decode("ascii"),
            "size": len(data),
            "title": title,
            "filename": filename,
            "first_publish_location_id": first,
            "link_to": [x for x in others if x != first],
        },
    )


def tracking_number(numbers: Sequence[str], limit: int = TEXT_LIMIT) -> str:
    """Every skybill number, comma-separated; when they do not fit, as many as fit and `+N`
    for the others (never a number cut in two)."""
    text = ",".join(numbers)
    if len(text) <= limit:
        return text
    for shown in range(len(numbers) - 1, 0, -1):
        text = ",".join(numbers[:shown]) + f" +{len(numbers) - shown}"
        if len(text) <= limit:
            return text
    return numbers[0][:limit] if numbers else ""


def tracking_url(numbers: Sequence[str], limit: int = URL_LIMIT) -> str:
    """Chronopost's tracking page for the parcels: all of them when the field holds the URL,
    else as many as it holds (the first ones)."""
    for shown in range(len(numbers), 0, -1):
        url = TRACKING_URL.format(numbers=",".join(numbers[:shown]))
        if len(url) <= limit:
            return url
    return TRACKING_URL.format(numbers="")


def label_status_row(
    *, shipment_id: int, sf_object: str, sf_id: str, status: str, version: str
) -> dict[str, Any]:
    """`Chronopost_Label_Status__c` back to what the label is, for one version of the record
    (an unchanged order set to `Requested` again: the label stands). Once per version."""
    return outbox_row(
        sf_object=sf_object,
        operation="update",
        sf_id=sf_id,
        shipment_id=shipment_id,
        payload={LABEL_STATUS.api: status},
        dedup_key=f"status:{sf_object}:{sf_id}:{version}"[:200],
    )


def unlink_file_row(*, shipment_id: int, generation: int) -> dict[str, Any]:
    """Detach the file of one voided label generation from every record it is linked to."""
    return outbox_row(
        sf_object="ContentDocumentLink",
        operation="unlink_file",
        shipment_id=shipment_id,
        dedup_key=f"unlink:{shipment_id}:{generation}",
        payload={"file_key": f"file:{shipment_id}:{generation}"[:80]},
    )


def unlink_voided_rows(session: Session, shipment_id: int) -> list[dict[str, Any]]:
    """`unlink_file_row`s for each label generation of the shipment with no live parcel left
    (queue them after voiding labels: a relabel, a cancel); queued again, they are no-ops."""
    live: dict[int, bool] = {}
    statement = select(Parcel.generation, Parcel.live).where(Parcel.shipment_id == shipment_id)
    for generation, is_live in session.execute(statement):
        live[generation] = live.get(generation, False) or bool(is_live)
    rows = [
        unlink_file_row(shipment_id=shipment_id, generation=g) for g in sorted(live) if not live[g]
    ]
    # A re-print's file of a voided generation leaves the records too (issue 21 item 5).
    voided = [g for g in sorted(live) if not live[g]]
    if voided:
        reprints = select(LabelReprint.id).where(
            LabelReprint.shipment_id == shipment_id, LabelReprint.generation.in_(voided)
        )
        rows += [
            outbox_row(
                sf_object="ContentDocumentLink",
                operation="unlink_file",
                shipment_id=shipment_id,
                dedup_key=f"unlink:{reprint_key(reprint_id)}",
                payload={"file_key": reprint_key(reprint_id)},
            )
            for reprint_id in session.scalars(reprints)
        ]
    return rows


def reprint_key(reprint_id: int) -> str:
    """The file key (ContentVersion.Chronoforce_Key__c) of one re-printed label."""
    return f"reprint:{reprint_id}"


def reprint_file_row(
    *,
    shipment_id: int,
    reprint_id: int,
    size: int,
    label_format: str,
    title: str,
    name: str,
    attach_to: Sequence[str],
) -> dict[str, Any]:
    """The outbox row of a re-printed label's file: a new file made from the re-print's bytes
    (`label_reprint`), once per re-print request (`dedup_key`), filed like the label's."""
    first, *others = [x for x in attach_to if x]
    suffix = "pdf" if label_format in PDF_FORMATS else "zpl"
    return outbox_row(
        sf_object="ContentVersion",
        operation="file",
        shipment_id=shipment_id,
        dedup_key=reprint_key(reprint_id),
        payload={
            "reprint_id": reprint_id,
            "parcel_ids": [],
            "size": size,
            "title": title,
            "filename": f"{name}.{suffix}",
            "first_publish_location_id": first,
            "link_to": [x for x in others if x != first],
        },
    )


def enqueue_rows(session: Session, rows: list[dict[str, Any]]) -> int:
    """Queue writes in the caller's transaction, in one statement; how many were new (the same
    write already queued is not queued again)."""
    return insert_ignore(session, Outbox, rows)


def enqueue(
    session: Session,
    *,
    sf_object: str,
    operation: str,
    payload: dict[str, Any],
    sf_id: str = "",
    external_id_field: str = "",
    shipment_id: int | None = None,
    dedup_key: str | None = None,
) -> bool:
    """Queue one write in the caller's transaction; False when the same write is already queued."""
    row = outbox_row(
        sf_object=sf_object,
        operation=operation,
        payload=payload,
        sf_id=sf_id,
        external_id_field=external_id_field,
        shipment_id=shipment_id,
        dedup_key=dedup_key,
    )
    return bool(enqueue_rows(session, [row]))


@dataclass
class FlushReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    limited: RateLimitedError | None = None  # the org's budget ran out during the round

    def add(self, other: FlushReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.calls += other.calls
        self.errors.extend(other.errors)
        self.limited = self.limited or other.limited


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _backoff(attempts: int, now: dt.datetime) -> dt.datetime:
    delay = backoff_for(SalesforceUnavailableError).delay(attempts)
    return now + dt.timedelta(seconds=delay)


def due_objects(
    pending: Mapping[Key, int],
    deadlines: Mapping[Key, dt.datetime],
    now: dt.datetime,
    collection: int = COLLECTION_SIZE,
) -> set[Key]:
    """The objects whose held writes go now (issue 21, `tracking.salesforce_hold_s`): the
    earliest hold is over, or a full collection is waiting. `pending` counts each object's held
    rows, `deadlines` has the earliest `hold_until` of each; all of a due object's rows go."""
    return {
        key
        for key, count in pending.items()
        if count >= collection or (key in deadlines and deadlines[key] <= now)
    }


def flush_calls(counts: Mapping[tuple[str, str], int], collection: int = COLLECTION_SIZE) -> int:
    """The API calls a flush of these rows makes before its files' links, by (object,
    operation): the record collections (200 records each) and the first file batch's two
    subrequests (its ContentVersions, the query of their documents) in Composite calls of five
    (`send_all`), then every further file batch in a call of its own. Unlinks are not counted;
    nor is a slip's lookup, which sends the records alone first."""
    records = files_ = 0
    for (_, operation), count in counts.items():
        if count <= 0 or operation == "unlink_file":
            continue
        if operation == "file":
            files_ += count
        else:
            records += -(-count // collection)
    batches = -(-files_ // collection)
    return composite_calls(records + 2 * min(batches, 1)) + max(0, batches - 1)


def released(
    pending: Mapping[tuple[str, str], int],
    deadlines: Mapping[tuple[str, str], dt.datetime],
    now: dt.datetime,
    sending: Mapping[tuple[str, str], int],
    collection: int = COLLECTION_SIZE,
) -> set[tuple[str, str]]:
    """The held objects whose rows go now: the due ones (`due_objects`), then, when the flush
    makes calls anyway, every other one that fits in the room its Composite calls leave
    (five collections or queries to a call): a held write that rides along costs no call.
    `sending` counts the rows that go regardless (never held)."""
    due = due_objects(pending, deadlines, now, collection)

    def calls(keys: set[tuple[str, str]]) -> int:
        counts = Counter(sending)
        for key in keys:
            counts[key] += pending[key]
        return flush_calls(counts, collection)

    budget = calls(due)
    if budget == 0:
        return due
    last = dt.datetime.max.replace(tzinfo=dt.UTC)
    for key in sorted(set(pending) - due, key=lambda k: (deadlines.get(k, last), k)):
        if calls(due | {key}) <= budget:
            due = due | {key}
    return due


def due_rows(session: Session, now: dt.datetime, limit: int) -> list[Outbox]:
    ready = or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now)
    by_kind = (
        select(
            Outbox.sf_object, Outbox.operation, func.count(Outbox.id), func.min(Outbox.hold_until)
        )
        .where(Outbox.state == "pending", ready)
        .group_by(Outbox.sf_object, Outbox.operation)
    )
    held = session.execute(by_kind.where(Outbox.hold_until.is_not(None))).all()
    sending = session.execute(by_kind.where(Outbox.hold_until.is_(None))).all()
    due = released(
        {(o, op): count for o, op, count, _ in held},
        {(o, op): _utc(first) for o, op, _, first in held if first is not None},
        now,
        {(o, op): count for o, op, count, _ in sending},
    )
    released_rows = [and_(Outbox.sf_object == o, Outbox.operation == op) for o, op in sorted(due)]
    statement = (
        select(Outbox)
        .where(Outbox.state == "pending", ready, or_(Outbox.hold_until.is_(None), *released_rows))
        .order_by(Outbox.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


class Flusher:
    """Sends due outbox rows; `on_failure(row, error)` records a refused write as an exception."""

    def __init__(
        self,
        store: Store,
        salesforce: SalesforcePort,
        *,
        on_failure: Any = None,
        now: Any = None,
        claim_seconds: float = CLAIM_SECONDS,
    ) -> None:
        self.claim_seconds = claim_seconds
        self.store = store
        self.salesforce = salesforce
        self.on_failure = on_failure
        self.now = now or SYSTEM_CLOCK.now

    def flush(self, limit: int = 2000) -> FlushReport:
        """Flush until nothing is due (bounded by `limit` rows per round); nothing while the
        cluster's Salesforce pause lasts."""
        total = FlushReport()
        while True:
            until = cluster.paused_until(self.store, PAUSE, self.now())
            if until is not None:
                total.errors.append(f"Salesforce writes paused until {until.isoformat()}")
                return total
            report = self._flush_round(limit)
            total.add(report)
            if report.sent + report.failed + report.retried < limit:
                return total

    def _flush_round(self, limit: int) -> FlushReport:
        """One round: every record write of the claimed rows and the first step of their files
        go together, five collections or queries to a Composite call (`send_all`); then the
        files' links, then the unlinks of voided files."""
        rows = self._claim(limit)
        report = FlushReport()
        groups: dict[tuple[str, str, str], list[Outbox]] = defaultdict(list)
        for row in rows:
            groups[(row.operation, row.sf_object, row.external_id_field)].append(row)
        batches = [
            batch
            for (operation, sf_object, ext_field), group in groups.items()
            if operation not in ("file", "unlink_file")
            for batch in self._plan_records(operation, sf_object, ext_field, group)
        ]
        requests: list[Request] = [batch.request for batch in batches]
        file_rows = [r for (operation, _, _), g in groups.items() if operation == "file" for r in g]
        if file_rows:
            outcomes, sent_files = self._send_files(file_rows, requests)
            report.add(sent_files)
        else:
            outcomes = send_all(self.salesforce, requests)
            report.calls += composite_calls(len(requests))
        limited = report.limited
        for batch, outcome in zip(batches, outcomes, strict=True):
            if isinstance(outcome, RateLimitedError):
                limited = outcome
            report.add(self._settle_batch(batch, outcome))
        for (operation, _, _), group in groups.items():
            if operation != "unlink_file":
                continue
            if limited is not None:
                self._postpone(group, limited)
                report.retried += len(group)
                continue
            try:
                report.add(self._unlink_files(group))
            except PermanentError as exc:
                failed = {str(r.id): (False, [_refusal(exc)], None) for r in group}
                report.add(self._settle({str(r.id): [r] for r in group}, failed))
                report.errors.append(str(exc))
            except TransientError as exc:
                self._postpone(group, exc)
                report.retried += len(group)
                report.errors.append(str(exc))
                if isinstance(exc, RateLimitedError):
                    limited = exc
        if limited is not None:
            self._pause(limited, [])
        return report

    def _pause(self, exc: RateLimitedError, rest: Sequence[Outbox]) -> None:
        """The org's budget is spent: stop every flusher, give the unsent rows back."""
        until = self.now() + dt.timedelta(seconds=retry_delay(exc, 1))
        cluster.pause(self.store, PAUSE, until, str(exc))
        self._postpone(rest, exc)
        log.warning("salesforce writes paused", until=until.isoformat(), code=exc.code)

    def _claim(self, limit: int) -> list[Outbox]:
        """Take due rows for CLAIM_SECONDS: another flusher skips them; a crash frees them.

        `attempts` is bumped before sending, so a row seen again with attempts > 1 may already
        have reached Salesforce: non-idempotent writes (files, links) check before resending.
        """
        now = self.now()
        with self.store.session() as session:
            rows = due_rows(session, now, limit)
            claimed: list[int] = []
            # One UPDATE … RETURNING per chunk, not one per row (bench/bench_label_burst.py: the
            # per-row claims were a large share of a flush's CPU); same conditions per row.
            for part in chunks([row.id for row in rows], COLLECTION_SIZE):
                claimed.extend(
                    session.scalars(
                        update(Outbox)
                        .where(
                            Outbox.id.in_(part),
                            Outbox.state == "pending",
                            or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
                        )
                        .values(
                            attempts=Outbox.attempts + 1,
                            next_attempt_at=now + dt.timedelta(seconds=self.claim_seconds),
                        )
                        .returning(Outbox.id)
                        .execution_options(synchronize_session=False)
                    )
                )
            fresh = list(
                session.scalars(select(Outbox).where(Outbox.id.in_(claimed)).order_by(Outbox.id))
            )
            session.expunge_all()
        return fresh

    # --- records -------------------------------------------------------------------------

    def _plan_records(
        self, operation: str, sf_object: str, ext_field: str, rows: Sequence[Outbox]
    ) -> list[_Batch]:
        """The rows of one object and operation as collections of 200 records; writes to the
        same record merged into one."""
        merged: dict[str, dict[str, Any]] = {}
        members: dict[str, list[Outbox]] = defaultdict(list)
        for row in rows:
            target = row.sf_id or str(row.payload.get(ext_field, "")) or f"new:{row.id}"
            merged.setdefault(target, {}).update(row.payload)
            members[target].append(row)
        batches = []
        for targets in chunks(list(merged), COLLECTION_SIZE):
            records = []
            for target in targets:
                record = {"attributes": {"type": sf_object}, **merged[target]}
                if operation == "update":
                    record["Id"] = target
                records.append(record)
            request = CollectionRequest(operation, sf_object, records, ext_field or None)
            batches.append(_Batch(sf_object, request, {t: members[t] for t in targets}))
        return batches

    def _settle_batch(self, batch: _Batch, outcome: Outcome) -> FlushReport:
        """What the org answered for one collection, written to its rows."""
        if isinstance(outcome, TransientError):
            rows = [r for group in batch.members.values() for r in group]
            self._postpone(rows, outcome)
            log.warning("outbox postponed", sf_object=batch.sf_object, error=str(outcome))
            return FlushReport(retried=len(rows), errors=[str(outcome)])
        if isinstance(outcome, ChronoforceError):
            # A refusal no split could pin on a record (another SalesforcePort, a bad object
            # name): every row of the batch becomes an exception, the others go on.
            failed = {target: (False, [_refusal(outcome)], None) for target in batch.members}
            report = self._settle(batch.members, failed)
            report.errors.append(str(outcome))
            return report
        results = cast(list[Any], outcome)
        outcomes = {
            target: (result.success, list(result.errors), result.id)
            for target, result in zip(batch.members, results, strict=True)
        }
        notes = {
            t: list(getattr(r, "notes", ())) for t, r in zip(batch.members, results, strict=True)
        }
        for target, said in notes.items():
            for note in said:  # a value shortened to fit the org's field (salesforce/fit.py)
                log.info("value made to fit", sf_object=batch.sf_object, sf_id=target, note=note)
        return self._settle(batch.members, outcomes, notes)

    def _settle(
        self,
        members: Mapping[str, list[Outbox]],
        outcomes: Mapping[str, tuple[bool, list[Any], str | None]],
        notes: Mapping[str, list[str]] | None = None,
    ) -> FlushReport:
        report = FlushReport()
        now = self.now()
        notes = notes or {}
        sent = [
            {
                "b_id": stale.id,
                "b_sent_at": now,
                "b_result": {
                    "id": record_id,
                    **({"notes": notes[target]} if notes.get(target) else {}),
                },
            }
            for target, (success, _, record_id) in outcomes.items()
            if success
            for stale in members[target]
        ]
        refused = {target: o for target, o in outcomes.items() if not o[0]}
        with self.store.session() as session:
            if sent:
                # One executemany of plain UPDATEs: no rows loaded, the write lock held briefly.
                session.connection().execute(_SENT, sent)
                report.sent += len(sent)
                _resolve_retried(session, members, outcomes)
            wanted = [stale.id for target in refused for stale in members[target]]
            loaded = {
                row.id: row
                for part in chunks(wanted, COLLECTION_SIZE)
                for row in session.scalars(select(Outbox).where(Outbox.id.in_(part)))
            }
            for target, (_, errors, _) in refused.items():
                for stale in members[target]:
                    row = loaded.get(stale.id)
                    if row is None:
                        continue
                    codes = {_status_code(e) for e in errors}
                    row.result = {"errors": [_error_dict(e) for e in errors]}
                    row.last_error = ", ".join(sorted(codes))[:500]
                    if codes & RETRYABLE_CODES and row.attempts < MAX_ATTEMPTS:
                        row.next_attempt_at = _backoff(row.attempts, now)
                        report.retried += 1
                    else:
                        row.state = "failed"
                        report.failed += 1
                        self._record_failure(session, row, errors)
        return report

    # --- voided files ------------------------------------------------------------------

    def _unlink_files(self, rows: Sequence[Outbox]) -> FlushReport:
        """Unshare voided labels' files (`salesforce/files.py`), then settle each row."""
        report = FlushReport()
        done = files.unshare(
            self.salesforce, [str(row.payload.get("file_key", "")) for row in rows]
        )
        report.calls += done.calls
        outcomes: dict[str, tuple[bool, list[Any], str | None]] = {}
        for row in rows:
            key = files.file_key(str(row.payload.get("file_key", "")))
            doc = done.document.get(key)
            if doc is None and not self._skip_unsent_file(key):
                continue  # the file is being sent right now: unlink it on the next flush
            errors = [
                e for link in done.links.get(doc or "", []) for e in done.failed.get(link, [])
            ]
            outcomes[str(row.id)] = (not errors, errors, doc)
        report.add(self._settle({str(row.id): [row] for row in rows}, outcomes))
        return report

    def _skip_unsent_file(self, key: str) -> bool:
        """A voided label's file not made yet is never sent; False while a flusher holds it."""
        now = self.now()
        with self.store.session() as session:
            row = session.scalar(select(Outbox).where(Outbox.dedup_key == key))
            if row is None or row.state != "pending":
                return True
            claimed = row.attempts > 0 and row.next_attempt_at is not None
            if claimed and _utc(row.next_attempt_at) > now:  # type: ignore[arg-type]
                return False
            row.state, row.sent_at = "sent", now
            row.result = {"skipped": "the label was voided before its file was sent"}
        return True

    def _record_failure(self, session: Session, row: Outbox, errors: list[Any]) -> None:
        first = _error_dict(errors[0]) if errors else {"statusCode": "UNKNOWN", "message": ""}
        error = SalesforceValidationError(
            first.get("message") or "Salesforce refused the write",
            code=str(first.get("statusCode") or "SALESFORCE_VALIDATION"),
            record_id=row.sf_id,
            field=",".join(first.get("fields") or []),
            operation=f"writeback:{row.sf_object}",
            request_payload=json.dumps(row.payload, default=str)[:20000],
            response_payload=json.dumps(row.result, default=str),
        )
        log.warning("salesforce refused write", sf_id=row.sf_id, code=error.code)
        if self.on_failure is not None:
            self.on_failure(session, row, error)

    def _postpone(self, rows: Sequence[Outbox], exc: TransientError) -> None:
        now = self.now()
        retry_after = getattr(exc, "retry_after", None)
        with self.store.session() as session:
            for stale in rows:
                row = session.get(Outbox, stale.id)
                if row is None:
                    continue
                row.last_error = str(exc)[:500]
                row.next_attempt_at = now + dt.timedelta(
                    seconds=retry_after if retry_after else retry_delay(exc, row.attempts)
                )

    # --- files ---------------------------------------------------------------------------

    def _send_files(
        self, rows: Sequence[Outbox], along: Sequence[Request] = ()
    ) -> tuple[list[Outcome], FlushReport]:
        """Files in batches of 200 (or FILE_BATCH_BYTES); the first batch carries `along` (the
        round's record collections) in its Composite calls: their outcomes, and the report.

        A batch that fails before its files go (a lookup, a retried upload's query) keeps its
        own rows for later (or refuses them) and `along` goes with the next batch, or alone;
        once the org's budget is spent, nothing more is sent."""
        report = FlushReport()
        batches: list[list[Outbox]] = [[]]
        size = 0
        for row in rows:
            if len(batches[-1]) >= COLLECTION_SIZE or size >= FILE_BATCH_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(row)
            size += int(row.payload.get("size", 50_000))
        outcomes: list[Outcome] | None = None
        if any(_needs_lookup(row) for row in rows):  # its record may be in `along`: first
            outcomes = send_all(self.salesforce, along)
            report.calls += composite_calls(len(along))
            report.limited = next((o for o in outcomes if isinstance(o, RateLimitedError)), None)
        for batch in batches:
            if report.limited is not None:
                self._postpone(batch, report.limited)
                report.retried += len(batch)
                continue
            carry = along if outcomes is None else ()
            try:
                answers, sent = self._send_file_batch(batch, carry)
            except TransientError as exc:  # nothing of this batch (nor `carry`) was sent
                self._postpone(batch, exc)
                report.retried += len(batch)
                report.errors.append(str(exc))
                if isinstance(exc, RateLimitedError):
                    report.limited = exc
                continue
            except PermanentError as exc:
                failed = {str(r.id): (False, [_refusal(exc)], None) for r in batch}
                report.add(self._settle({str(r.id): [r] for r in batch}, failed))
                report.errors.append(str(exc))
                continue
            report.add(sent)
            if outcomes is None:
                outcomes = answers
        if outcomes is None:
            if report.limited is not None:
                outcomes = [report.limited for _ in along]
            else:
                outcomes = send_all(self.salesforce, along)
                report.calls += composite_calls(len(along))
        return outcomes, report

    def _labels(self, rows: Sequence[Outbox]) -> dict[int, bytes]:
        """Label bytes of every parcel the rows' files hold: one query per chunk, not per file."""
        ids = sorted({int(i) for row in rows for i in row.payload.get("parcel_ids", [])})
        found: dict[int, bytes] = {}
        with self.store.session() as session:
            for part in chunks(ids, COLLECTION_SIZE):
                statement = select(Parcel.id, Parcel.label_bytes).where(Parcel.id.in_(part))
                found.update((i, data or b"") for i, data in session.execute(statement))
        return found

    def _reprints(self, rows: Sequence[Outbox]) -> dict[int, bytes]:
        """Bytes of the re-printed labels the rows' files hold (issue 21 item 5)."""
        ids = sorted({int(r.payload["reprint_id"]) for r in rows if r.payload.get("reprint_id")})
        found: dict[int, bytes] = {}
        with self.store.session() as session:
            for part in chunks(ids, COLLECTION_SIZE):
                statement = select(LabelReprint.id, LabelReprint.label_bytes).where(
                    LabelReprint.id.in_(part)
                )
                found.update((i, data or b"") for i, data in session.execute(statement))
        return found

    def _file_data(
        self, row: Outbox, labels: Mapping[int, bytes], reprints: Mapping[int, bytes]
    ) -> bytes:
        if "manifest_id" in row.payload:  # an end-of-day slip's PDF (pipeline/manifest.py)
            return self._manifest_pdf(int(row.payload["manifest_id"]))
        if "data_b64" in row.payload:  # a file that is not a label (pod_file_row)
            return base64.b64decode(row.payload["data_b64"])
        reprint_id = row.payload.get("reprint_id")
        if reprint_id:  # a re-printed label (pipeline/reprint.py)
            return reprints.get(int(reprint_id), b"")
        parcel_ids = sorted(int(i) for i in row.payload["parcel_ids"] if int(i) in labels)
        return merge_labels([labels[i] for i in parcel_ids])

    def _manifest_pdf(self, manifest_id: int) -> bytes:
        with self.store.session() as session:
            data = session.scalar(select(Manifest.pdf).where(Manifest.id == manifest_id))
            return bytes(data or b"")

    def _locate(self, batch: Sequence[Outbox]) -> tuple[list[Outbox], list[Outbox], int]:
        """Files filed on a record known by its external id (`first_publish_location`): its
        Id looked up now; (ready, waiting, calls) — a record not written yet postpones its file."""
        wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in batch:
            if _needs_lookup(row):
                where = row.payload["first_publish_location"]
                wanted[(where["sf_object"], where["key_field"])].add(str(where["key"]))
        if not wanted:
            return list(batch), [], 0
        found: dict[tuple[str, str, str], str] = {}
        for (sf_object, key_field), keys in wanted.items():
            soql = by_key_soql(sf_object, key_field, sorted(keys))
            for record in self.salesforce.query_iter(soql):
                found[(sf_object, key_field, str(record[key_field]))] = str(record["Id"])
        ready, waiting = [], []
        for row in batch:
            where = row.payload.get("first_publish_location")
            if not where or row.payload.get("first_publish_location_id"):
                ready.append(row)
                continue
            record_id = found.get((where["sf_object"], where["key_field"], str(where["key"])))
            if record_id:
                row.payload = {**row.payload, "first_publish_location_id": record_id}
                ready.append(row)
            else:
                waiting.append(row)
        return ready, waiting, len(wanted)

    def _send_file_batch(
        self, batch: Sequence[Outbox], along: Sequence[Request] = ()
    ) -> tuple[list[Outcome], FlushReport]:
        """Put the files up (`salesforce/files.py`) with `along` in the same calls, then settle
        each row: `along`'s outcomes, and the report."""
        report = FlushReport()
        try:
            batch, waiting, report.calls = self._locate(batch)
        except PermanentError as exc:
            # The record a file is filed on cannot be looked up (its object or key field is
            # missing, or not readable): those files fail with the reason, nothing of theirs is
            # up; the other files of the batch go on.
            blocked = [r for r in batch if _needs_lookup(r)]
            error = {"statusCode": exc.code, "message": str(exc)[:300]}
            refused: dict[str, tuple[bool, list[Any], str | None]] = {
                str(r.id): (False, [error], None) for r in blocked
            }
            report.add(self._settle({str(r.id): [r] for r in blocked}, refused))
            batch, waiting = [r for r in batch if not _needs_lookup(r)], []
        if waiting:
            self._postpone(
                waiting, SalesforceUnavailableError("the file's record is not written yet")
            )
            report.retried += len(waiting)
        if not batch:
            answers = send_all(self.salesforce, along)
            report.calls += composite_calls(len(along))
            return answers, report
        uploads = [
            files.FileUpload(
                key=row.dedup_key,
                title=row.payload["title"],
                filename=row.payload["filename"],
                first_publish_location_id=row.payload["first_publish_location_id"],
                link_to=tuple(row.payload.get("link_to", [])),
                retried=row.attempts > 1,
            )
            for row in batch
        ]

        def data(indexes: Sequence[int]) -> list[bytes]:
            todo = [batch[i] for i in indexes]
            labels, reprints = self._labels(todo), self._reprints(todo)
            return [self._file_data(row, labels, reprints) for row in todo]

        done = files.upload(self.salesforce, uploads, data, along)
        report.calls += done.calls
        outcomes = {
            str(row.id): (document is not None, errors, document)
            for row, document, errors in zip(batch, done.documents, done.errors, strict=True)
        }
        failure = done.failure
        if isinstance(failure, TransientError):  # the files without a document: later
            late = [r for r in batch if not outcomes[str(r.id)][0]]
            self._postpone(late, failure)
            report.retried += len(late)
            report.errors.append(str(failure))
            outcomes = {k: o for k, o in outcomes.items() if o[0]}
            if isinstance(failure, RateLimitedError):
                report.limited = failure
        elif failure is not None:  # refused: those files become exceptions, with the reason
            outcomes = {
                k: o if o[0] else (False, [_refusal(failure)], None) for k, o in outcomes.items()
            }
            report.errors.append(str(failure))
        report.add(self._settle({k: [r] for r in batch if (k := str(r.id)) in outcomes}, outcomes))
        return done.along, report


@dataclass(frozen=True)
class _Batch:
    """One collection of a flush round: its request and the rows behind each record."""

    sf_object: str
    request: CollectionRequest
    members: dict[str, list[Outbox]]


def _needs_lookup(row: Outbox) -> bool:
    """A file filed on a record known only by its external id (`Flusher._locate`)."""
    return bool(
        row.payload.get("first_publish_location")
        and not row.payload.get("first_publish_location_id")
    )


def _resolve_retried(
    session: Session,
    members: Mapping[str, list[Outbox]],
    outcomes: Mapping[str, tuple[bool, list[Any], str | None]],
) -> None:
    """A refused write retried from the review queue went through: its exception is over."""
    retried = {
        row.shipment_id
        for target, (success, _, _) in outcomes.items()
        if success
        for row in members[target]
        if row.attempts > 1 and row.shipment_id is not None
    }
    if not retried:
        return
    session.execute(
        update(ExceptionRow)
        .where(
            ExceptionRow.shipment_id.in_(sorted(retried)),
            ExceptionRow.state == "retrying",
            ExceptionRow.operation.like("writeback:%"),
        )
        .values(state="resolved", resolution_note="written on retry")
        .execution_options(synchronize_session=False)
    )


def merge_labels(parts: list[bytes]) -> bytes:
    """Several parcels' labels as one file: PDFs concatenated page by page, ZPL appended."""
    if len(parts) == 1:
        return parts[0]
    if not parts or not parts[0].startswith(b"%PDF"):
        return b"\n".join(parts)
    from io import BytesIO

    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(BytesIO(part))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _refusal(exc: ChronoforceError) -> dict[str, Any]:
    return {
        "statusCode": exc.code,
        "message": exc.message,
        "fields": [f for f in exc.field.split(",") if f],
    }


def _status_code(error: Any) -> str:
    return str(_error_dict(error).get("statusCode", ""))


def _error_dict(error: Any) -> dict[str, Any]:
    if isinstance(error, Mapping):
        return dict(error)
    return {
        "statusCode": getattr(error, "status_code", getattr(error, "statusCode", "")),
        "message": getattr(error, "message", str(error)),
        "fields": list(getattr(error, "fields", []) or []),
    }
