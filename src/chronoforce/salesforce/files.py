"""Salesforce's file protocol as chronoforce uses it: ContentVersions made once, shared, unshared.

A file goes up as a ContentVersion published on its first record (`FirstPublishLocationId`) and
carrying our key in the external id `Chronoforce_Key__c`, so a retried upload finds the file an
interrupted one made instead of making a second; ContentDocumentLinks share it with the other
records. Unsharing deletes those links, never the owner's (a User's) and never the file. It must
never send a link a retry may already have sent, nor settle anything: the caller (the outbox,
`pipeline/writeback.py`) decides what each outcome means for its rows.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from chronoforce.domain.errors import ChronoforceError
from chronoforce.salesforce.client import (
    CollectionRequest,
    Outcome,
    QueryRequest,
    RecordResult,
    Request,
    composite_calls,
    send_all,
)
from chronoforce.salesforce.fields import (
    FILE_DATA,
    FILE_FIRST_RECORD,
    FILE_KEY,
    FILE_NAME,
    FILE_TITLE,
    LINK_DOCUMENT,
    LINK_RECORD,
    LINK_SHARE_TYPE,
    LINK_VISIBILITY,
)
from chronoforce.salesforce.soql import in_list

COLLECTION_SIZE = 200  # sObject Collections limit per request (REST API reference)
FILE_KEY_FIELD = FILE_KEY.api  # external id on ContentVersion: a file is made once
KEY_LENGTH = 80  # Chronoforce_Key__c is Text(80), unique (salesforce/force-app)
USER_PREFIX = "005"  # the owner's (a User's) link to a file cannot be deleted
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})


class FilesPort(Protocol):
    """What the protocol needs of a Salesforce client (`SalesforceClient` has it)."""

    def query_iter(self, soql: str) -> Iterator[dict[str, Any]]: ...

    def collection(
        self,
        op: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        external_id_field: str | None = None,
        all_or_none: bool = False,
    ) -> Sequence[Any]: ...

    def delete(self, ids: Sequence[str]) -> Sequence[Any]: ...


@dataclass(frozen=True)
class FileUpload:
    """One file to put up: `key` (our external id), where it is filed first, who else sees it;
    `retried` when an earlier attempt may already have made it or its links."""

    key: str
    title: str
    filename: str
    first_publish_location_id: str
    link_to: tuple[str, ...] = ()
    retried: bool = False


@dataclass
class UploadOutcome:
    """Per file, in input order: the document made or found (None when not), and the errors
    of its ContentVersion create; `calls` is every API call the upload made; `along` the
    outcomes of the collections sent with the files; `failure` a call that failed."""

    documents: list[str | None] = field(default_factory=list)
    errors: list[list[Any]] = field(default_factory=list)
    calls: int = 0
    along: list[Outcome] = field(default_factory=list)
    failure: ChronoforceError | None = None


@dataclass
class UnshareOutcome:
    """`document` by file key (files not made are absent); per document the links deleted or
    meant to be; `failed` link ids with their errors (a link already gone is not a failure)."""

    document: dict[str, str] = field(default_factory=dict)
    links: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, list[Any]] = field(default_factory=dict)
    calls: int = 0


def file_key(key: str) -> str:
    """Our key as `Chronoforce_Key__c` holds it."""
    return key[:KEY_LENGTH]


def versions_query(keys: Sequence[str]) -> str:
    """The ContentVersions carrying these keys of ours (with their document)."""
    return (
        f"SELECT Id, ContentDocumentId, {FILE_KEY_FIELD} FROM ContentVersion "
        f"WHERE {FILE_KEY_FIELD} IN {in_list(keys)}"
    )


def content_version(upload: FileUpload, data: bytes) -> dict[str, Any]:
    """The ContentVersion record of one file."""
    return {
        "attributes": {"type": "ContentVersion"},
        FILE_TITLE.api: upload.title,
        FILE_NAME.api: upload.filename,
        FILE_DATA.api: base64.b64encode(data).decode("ascii"),
        FILE_FIRST_RECORD.api: upload.first_publish_location_id,
        FILE_KEY_FIELD: file_key(upload.key),
    }


def existing_versions(
    salesforce: FilesPort, uploads: Sequence[FileUpload], force: bool = False
) -> dict[str, dict[str, Any]]:
    """Files an interrupted upload may already have made, by our key."""
    retried = [file_key(u.key) for u in uploads if force or u.retried]
    if not retried:
        return {}
    return {r[FILE_KEY_FIELD]: r for r in salesforce.query_iter(versions_query(retried))}


def upload(
    salesforce: FilesPort,
    uploads: Sequence[FileUpload],
    data: Callable[[Sequence[int]], Sequence[bytes]],
    along: Sequence[Request] = (),
) -> UploadOutcome:
    """Make the files not made yet (one collection; `data(indexes)` gives the bytes of those
    `uploads` only, in order), adopt those an interrupted upload made, and link each file to its
    other records.

    The ContentVersions and the query of their documents by our key go in one Composite call
    (`send_all`), with `along` — other collections of the same flush, whose outcomes come back
    in `outcome.along` — then the links. The query finds the files just made and those a key
    already taken (DUPLICATE_VALUE) says an interrupted upload made. A call that fails leaves
    its error in `outcome.failure` (nothing after it is sent); the caller retries the rows.
    """
    outcome = UploadOutcome()
    existing = existing_versions(salesforce, uploads)
    outcome.calls += 1 if any(u.retried for u in uploads) else 0
    todo = [i for i, u in enumerate(uploads) if file_key(u.key) not in existing]
    wave: list[Request] = list(along)
    if todo:
        contents = data(todo)
        records = [content_version(uploads[i], d) for i, d in zip(todo, contents, strict=True)]
        wave.append(CollectionRequest("create", "ContentVersion", records))
        wave.append(QueryRequest(versions_query([file_key(uploads[i].key) for i in todo])))
    answers = send_all(salesforce, wave) if wave else []
    outcome.calls += composite_calls(len(wave))
    outcome.along = answers[: len(along)]
    versions: dict[int, tuple[bool, list[Any], str | None]] = {}
    if todo:
        created, found = answers[len(along)], answers[len(along) + 1]
        for answer in (created, found):
            if isinstance(answer, ChronoforceError):
                return _failed(outcome, answer, len(uploads))
        assert isinstance(found, list) and isinstance(created, list)
        for i, result in zip(todo, cast(list[RecordResult], created), strict=True):
            versions[i] = (result.success, list(result.errors), result.id)
        existing.update({str(r[FILE_KEY_FIELD]): r for r in found if isinstance(r, dict)})
        # Made after the query ran (a collection refused as a whole is split and sent again
        # once the Composite call is over): their documents, by id.
        late = [
            str(versions[i][2])
            for i in todo
            if versions[i][0] and versions[i][2] and file_key(uploads[i].key) not in existing
        ]
        if late:
            soql = (
                f"SELECT Id, ContentDocumentId, {FILE_KEY_FIELD} FROM ContentVersion "
                f"WHERE Id IN {in_list(late)}"
            )
            try:
                existing.update({str(r[FILE_KEY_FIELD]): r for r in salesforce.query_iter(soql)})
            except ChronoforceError as exc:  # up, not linked: retried, they are adopted
                return _failed(outcome, exc, len(uploads))
            outcome.calls += 1
    document_of: dict[int, str] = {}
    for i, u in enumerate(uploads):
        made = existing.get(file_key(u.key))
        if made and (i not in versions or versions[i][0] or _taken(versions[i][1])):
            document_of[i] = str(made["ContentDocumentId"])
    try:
        outcome.calls += link(salesforce, uploads, document_of)
    except ChronoforceError as exc:  # the files are up, not their links: none is done yet
        outcome.failure = exc  # (retried, they are adopted and their missing links made)
        document_of = {}
    outcome.documents = [document_of.get(i) for i in range(len(uploads))]
    outcome.errors = [versions.get(i, (False, [], None))[1] for i in range(len(uploads))]
    return outcome


def _taken(errors: Sequence[Any]) -> bool:
    """Our key already taken: an earlier, interrupted upload made this file (adopt it)."""
    return any(_status_code(e) == "DUPLICATE_VALUE" for e in errors)


def _failed(outcome: UploadOutcome, error: ChronoforceError, count: int) -> UploadOutcome:
    """No file of the batch is done: `error` says why (the caller retries or refuses them)."""
    outcome.failure = error
    outcome.documents = [None] * count
    outcome.errors = [[] for _ in range(count)]
    return outcome


def link(
    salesforce: FilesPort, uploads: Sequence[FileUpload], document_of: Mapping[int, str]
) -> int:
    """Link each file to the other records (ContentDocumentLink), once; the calls made."""
    wanted = {
        (document_of[i], entity)
        for i, u in enumerate(uploads)
        if document_of.get(i)
        for entity in u.link_to
        if entity
    }
    calls = 0
    if wanted and any(u.retried for u in uploads):
        soql = (
            "SELECT ContentDocumentId, LinkedEntityId FROM ContentDocumentLink "
            f"WHERE ContentDocumentId IN {in_list(sorted({d for d, _ in wanted}))}"
        )
        have = {(r["ContentDocumentId"], r["LinkedEntityId"]) for r in salesforce.query_iter(soql)}
        wanted -= have
        calls += 1
    links = [
        {
            "attributes": {"type": "ContentDocumentLink"},
            LINK_DOCUMENT.api: document,
            LINK_RECORD.api: entity,
            LINK_SHARE_TYPE.api: "V",
            LINK_VISIBILITY.api: "AllUsers",
        }
        for document, entity in sorted(wanted)
    ]
    requests: list[Request] = [
        CollectionRequest("create", "ContentDocumentLink", links[start : start + COLLECTION_SIZE])
        for start in range(0, len(links), COLLECTION_SIZE)
    ]
    for answer in send_all(salesforce, requests):
        if isinstance(answer, ChronoforceError):
            raise answer
    return calls + composite_calls(len(requests))


def unshare(salesforce: FilesPort, keys: Sequence[str]) -> UnshareOutcome:
    """Delete the links of our files to records (not the owner's): one query for the
    documents, one for their links, one delete collection per 200 links."""
    outcome = UnshareOutcome()
    wanted_keys = sorted({file_key(k) for k in keys})
    outcome.document = {
        r[FILE_KEY_FIELD]: r["ContentDocumentId"]
        for r in salesforce.query_iter(versions_query(wanted_keys))
    }
    outcome.calls += 1
    links: dict[str, list[str]] = defaultdict(list)
    if outcome.document:
        soql = (
            "SELECT Id, ContentDocumentId, LinkedEntityId FROM ContentDocumentLink "
            f"WHERE ContentDocumentId IN {in_list(sorted(set(outcome.document.values())))}"
        )
        for record in salesforce.query_iter(soql):
            if not str(record["LinkedEntityId"]).startswith(USER_PREFIX):
                links[record["ContentDocumentId"]].append(record["Id"])
        outcome.calls += 1
    outcome.links = dict(links)
    wanted = [i for d in sorted(set(outcome.document.values())) for i in links.get(d, [])]
    for start in range(0, len(wanted), COLLECTION_SIZE):
        part = wanted[start : start + COLLECTION_SIZE]
        results = salesforce.delete(list(part))
        outcome.calls += 1
        for link_id, result in zip(part, results, strict=True):
            errors = list(result.errors)
            if not result.success and not {_status_code(e) for e in errors} <= GONE_CODES:
                outcome.failed[link_id] = errors
    return outcome


def _status_code(error: Any) -> str:
    if isinstance(error, Mapping):
        return str(error.get("statusCode", ""))
    return str(getattr(error, "status_code", getattr(error, "statusCode", "")))
