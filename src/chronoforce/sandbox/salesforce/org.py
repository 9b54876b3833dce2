"""The sandbox org's operations: create, read, update, delete, upsert, query, files, events.

HTTP-free: the REST layer (app.py) and the Python helpers both call it. Every change writes its
Change Data Capture event in the same transaction. It never checks sessions or budgets.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from chronoforce.sandbox.salesforce.errors import ApiError, RecordErrors, not_found
from chronoforce.sandbox.salesforce.ids import MalformedId, make_id, to_18
from chronoforce.sandbox.salesforce.records import defaults, to_json, to_storage
from chronoforce.sandbox.salesforce.schema import SObject
from chronoforce.sandbox.salesforce.soql import Plan, SoqlError, compile_query
from chronoforce.sandbox.salesforce.store import RETENTION_SECONDS, Store, Tx

DEFAULT_BATCH = 2000
MAX_CURSORS = 200


class MultipleMatches(Exception):
    """An upsert key matched several records (HTTP 300 with their URLs)."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(f"{len(urls)} records match")
        self.urls = urls


def sf_time(moment: dt.datetime) -> str:
    """Salesforce's JSON date-time: UTC, milliseconds, `+0000`."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class Cursor:
    plan: Plan
    total: int
    batch: int


class Org:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], dt.datetime],
        user_id: str,
        write_hook: Callable[[str | None], None] | None = None,
    ) -> None:
        self.store = store
        self.schema = store.schema
        self.clock = clock
        self.user_id = user_id
        self.write_hook = write_hook
        self.version = "61.0"  # the API version of the request being served (changeOrigin, urls)
        self.prefixes = {name: obj.prefix for name, obj in self.schema.items()}
        self._lower = {name.lower(): obj for name, obj in self.schema.items()}
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.short_pages = 0.0  # share of query pages made shorter than asked (R17)
        self._pages_rng = random.Random(0)
        self._plans: dict[tuple[str, bool, dt.date, str], Plan] = {}

    # --- lookups -----------------------------------------------------------------------------

    def sobject(self, name: str) -> SObject:
        obj = self._lower.get(name.lower())
        if obj is None:
            raise not_found()
        return obj

    def sobject_or_invalid_type(self, name: str) -> SObject:
        """The object a request body names; INVALID_TYPE (a request-level 400) if unknown."""
        obj = self._lower.get(name.lower())
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return obj

    def record_id(self, obj: SObject, value: str) -> str:
        try:
            record_id = to_18(value)
        except MalformedId:
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {value}",
            ) from None
        if record_id[:3] != obj.prefix:
            raise ApiError(
                400, "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {value}", []
            )
        return record_id

    def url(self, obj_name: str, record_id: str) -> str:
        return f"/services/data/v{self.version}/sobjects/{obj_name}/{record_id}"

    def record_json(
        self, obj: SObject, row: dict[str, Any], fields: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": self.url(obj.name, row["Id"])}
        }
        chosen = [obj.fields[f] for f in fields] if fields else obj.visible_fields()
        for f in chosen:
            if f.type == "base64":
                out[f.name] = self.url(obj.name, row["Id"]) + f"/{f.name}"
            else:
                out[f.name] = to_json(f, row.get(f.name))
        return out

    # --- writes ------------------------------------------------------------------------------

    def _now(self) -> tuple[str, float]:
        now = self.clock()
        return sf_time(now), now.timestamp()

    def _emit(
        self, tx: Tx, obj: SObject, change: str, record_id: str, fields: dict[str, Any]
    ) -> None:
        _now, stamp = self._now()
        tx.sequence += 1
        changed = [n for n in fields if n != "SystemModstamp"] if change == "UPDATE" else []
        header = {
            "entityName": obj.name,
            "recordIds": [record_id],
            "changeType": change,
            "changedFields": changed,
            "commitTimestamp": int(stamp * 1000),
            "commitNumber": tx.commit_number,
            "commitUser": self.user_id,
            "transactionKey": tx.key,
            "sequenceNumber": tx.sequence,
            "changeOrigin": f"com/salesforce/api/rest/{self.version}",
            "nulledFields": [n for n, v in fields.items() if v is None]
            if change == "UPDATE"
            else [],
            "diffFields": [],
        }
        body = {n: to_json(obj.fields[n], v) for n, v in fields.items() if n in obj.fields}
        if change == "CREATE":
            body = {n: v for n, v in body.items() if v is not None}
        body.pop("Id", None)
        self.store.append_event(obj.topic, stamp, {"ChangeEventHeader": header, **body})

    def _check_unique(self, obj: SObject, values: dict[str, Any], record_id: str | None) -> None:
        for name, value in values.items():
            f = obj.fields[name]
            if f.unique and value is not None:
                others = [i for i in self.store.ids_where(obj, name, value) if i != record_id]
                if others:
                    raise RecordErrors(
                        [
                            ApiError(
                                400,
                                "DUPLICATE_VALUE",
                                f"duplicate value found: {name} duplicates value on record "
                                f"with id: {others[0]}",
                                [],
                            )
                        ]
                    )

    def _derive(self, obj: SObject, row: dict[str, Any]) -> None:
        """Fields Salesforce computes itself."""
        if obj.name in ("Contact", "User"):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        elif obj.name == "Case":
            row["IsClosed"] = row.get("Status") == "Closed"
        elif obj.name == "OrderItem" and row.get("Quantity") is not None:
            row["TotalPrice"] = round(float(row["Quantity"]) * float(row.get("UnitPrice") or 0), 2)

    def insert(self, tx: Tx, obj: SObject, values: dict[str, Any]) -> str:
        """Write a validated new record and its CREATE event; returns the 18-character id."""
        if self.write_hook is not None:
            self.write_hook(None)
        self._check_unique(obj, values, None)
        number = self.store.next_number(obj.name)
        record_id = make_id(obj.prefix, number)
        now, _ = self._now()
        row: dict[str, Any] = {**defaults(obj), **values, "Id": record_id, "IsDeleted": False}
        row.update(CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
        row.update(CreatedById=self.user_id, LastModifiedById=self.user_id)
        if "OwnerId" in obj.fields and row.get("OwnerId") is None:
            row["OwnerId"] = self.user_id
        for f in obj.fields.values():
            if f.auto_number:
                row[f.name] = auto_number(f.auto_number, number)
        self._derive(obj, row)
        row = {k: v for k, v in row.items() if k in obj.fields and obj.fields[k].stored}
        self.store.insert(obj, number, row)
        self._emit(tx, obj, "CREATE", record_id, row)
        self._after_change(tx, obj, row)
        return record_id

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        obj = self.sobject(sobject)
        if obj.event:
            return self.publish(obj, body)
        values = to_storage(obj, body, True, self.prefixes)
        with self.store.transaction() as tx:
            if obj.name == "ContentVersion":
                return self._create_version(tx, obj, values)
            return self.insert(tx, obj, values)

    def live_row(self, obj: SObject, record_id: str, writing: bool) -> dict[str, Any]:
        row = self.store.fetch(obj, record_id)
        if row is None:
            raise not_found()
        if row["IsDeleted"]:
            if writing:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            raise not_found()
        return row

    def apply_update(self, tx: Tx, obj: SObject, record_id: str, values: dict[str, Any]) -> None:
        row = self.live_row(obj, record_id, writing=True)
        if self.write_hook is not None:
            self.write_hook(record_id)
        self._check_unique(obj, values, record_id)
        _check_order_account(obj, row, values)
        new = {**row, **values}
        self._derive(obj, new)
        changed = {k: new[k] for k in new if new[k] != row.get(k) and k in obj.fields}
        now, _ = self._now()
        stamps = {"SystemModstamp": now}
        if changed:
            stamps.update(LastModifiedDate=now, LastModifiedById=self.user_id)
        self.store.update(obj, record_id, {**changed, **stamps})
        if changed:
            self._emit(tx, obj, "UPDATE", record_id, {**changed, "LastModifiedDate": now})
            self._after_change(tx, obj, new)

    def update(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        obj = self.sobject(sobject)
        record_id = self.record_id(obj, record_id)
        values = to_storage(obj, body, False, self.prefixes)
        with self.store.transaction() as tx:
            self.apply_update(tx, obj, record_id, values)

    def apply_delete(self, tx: Tx, obj: SObject, record_id: str) -> None:
        row = self.live_row(obj, record_id, writing=True)
        if self.write_hook is not None:
            self.write_hook(record_id)
        now, _ = self._now()
        self.store.update(
            obj,
            record_id,
            {"IsDeleted": True, "SystemModstamp": now, "LastModifiedDate": now},
        )
        self._emit(tx, obj, "DELETE", record_id, {})
        self._after_change(tx, obj, row)

    def delete(self, sobject: str, record_id: str) -> None:
        obj = self.sobject(sobject)
        record_id = self.record_id(obj, record_id)
        with self.store.transaction() as tx:
            self.apply_delete(tx, obj, record_id)

    def _after_change(self, tx: Tx, obj: SObject, row: dict[str, Any]) -> None:
        # Order.TotalAmount is a roll-up of its items (Salesforce recomputes it, with an event).
        if obj.name == "OrderItem" and row.get("OrderId"):
            order = self.schema["Order"]
            total = self.store.execute(
                'SELECT coalesce(sum("TotalPrice"), 0) FROM "OrderItem" '
                'WHERE "OrderId" = ? AND "IsDeleted" = 0',
                (row["OrderId"],),
            )[0][0]
            current = self.store.fetch(order, row["OrderId"])
            if current is not None and current["TotalAmount"] != total:
                now, _ = self._now()
                values = {"TotalAmount": total, "LastModifiedDate": now}
                self.store.update(order, row["OrderId"], {**values, "SystemModstamp": now})
                self._emit(tx, order, "UPDATE", row["OrderId"], values)

    def upsert_key(self, obj: SObject, field_name: str, value: str) -> tuple[str, list[str]]:
        """Canonical external-id field name and the live records it matches."""
        f = obj.field(field_name)
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        if f.name == "Id":
            return "Id", [self.record_id(obj, value)] if value else []
        return f.name, self.store.ids_where(obj, f.name, value)

    def upsert(
        self, sobject: str, field_name: str, value: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """Create or update by external id; returns (id, created)."""
        obj = self.sobject(sobject)
        name, matches = self.upsert_key(obj, field_name, value)
        if len(matches) > 1:
            raise MultipleMatches([self.url(obj.name, i) for i in matches])
        body = {k: v for k, v in body.items() if k.lower() != name.lower()}
        values = to_storage(obj, body, not matches, self.prefixes)
        with self.store.transaction() as tx:
            if matches:
                self.apply_update(tx, obj, matches[0], values)
                return matches[0], False
            return self.insert(tx, obj, {**values, name: value}), True

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        obj = self.sobject(sobject)
        record_id = self.record_id(obj, record_id)
        names = None
        if fields:
            names = []
            for name in fields:
                f = obj.field(name)
                if f is None:
                    raise ApiError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{name}' on sobject of type {obj.name}",
                    )
                names.append(f.name)
        return self.record_json(obj, self.live_row(obj, record_id, writing=False), names)

    # --- files and events --------------------------------------------------------------------

    def _create_version(self, tx: Tx, obj: SObject, values: dict[str, Any]) -> str:
        data: bytes = values.pop("VersionData")
        path = PurePosixPath(values["PathOnClient"])
        extension = path.suffix.lstrip(".").lower()
        file_info = {
            "FileExtension": extension or None,
            "FileType": (extension or "UNKNOWN").upper(),
            "ContentSize": len(data),
        }
        values.setdefault("Title", path.stem)
        documents = self.schema["ContentDocument"]
        document_id = values.get("ContentDocumentId")
        if document_id is None:
            document_id = self.insert(tx, documents, {"Title": values["Title"], **file_info})
            values["ContentDocumentId"] = document_id
            number = 1
        else:
            self.live_row(documents, document_id, writing=True)
            previous = self.store.ids_where(obj, "ContentDocumentId", document_id)
            for old in previous:
                self.store.update(obj, old, {"IsLatest": False})
            number = len(previous) + 1
        version_id = self.insert(tx, obj, {**values, **file_info, "VersionNumber": str(number)})
        self.store.put_blob(version_id, data)
        self.store.update(documents, document_id, {"LatestPublishedVersionId": version_id})
        if values.get("FirstPublishLocationId"):
            link = {
                "ContentDocumentId": document_id,
                "LinkedEntityId": values["FirstPublishLocationId"],
                "ShareType": "I",
                "Visibility": "AllUsers",
            }
            self.insert(tx, self.schema["ContentDocumentLink"], link)
        return version_id

    def version_data(self, record_id: str) -> bytes:
        obj = self.schema["ContentVersion"]
        record_id = self.record_id(obj, record_id)
        self.live_row(obj, record_id, writing=False)
        data = self.store.blob(record_id)
        if data is None:
            raise not_found()
        return data

    def publish(self, obj: SObject, body: dict[str, Any]) -> str:
        """Publish a platform event: stored in the event log only, never as a record."""
        values = to_storage(obj, body, True, self.prefixes)
        now, stamp = self._now()
        with self.store.transaction():
            event_id = make_id(obj.prefix, self.store._bump("event:" + obj.name))
            payload = {n: to_json(obj.fields[n], v) for n, v in values.items()}
            payload.update(CreatedDate=now, CreatedById=self.user_id)
            self.store.append_event(obj.topic, stamp, payload)
        return event_id

    def retention_start(self) -> float:
        return self.clock().timestamp() - RETENTION_SECONDS

    # --- queries -----------------------------------------------------------------------------

    def plan(self, soql: str, include_deleted: bool) -> Plan:
        key = (soql, include_deleted, self.clock().date(), self.version)
        plan = self._plans.get(key)
        if plan is None:
            plan = compile_query(soql, self.schema, key[2], include_deleted)
            if len(self._plans) > 500:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def query(self, soql: str, include_deleted: bool, batch: int = DEFAULT_BATCH) -> dict[str, Any]:
        plan = self.plan(soql, include_deleted)
        _check_link_filter(soql, self.version)
        count = int(self.store.execute(f"SELECT count(*) {plan.from_sql}", plan.params)[0][0])
        total = max(0, count - plan.offset)
        if plan.limit is not None:
            total = min(total, plan.limit)
        if plan.count_only:
            if plan.aggregate_alias is None:
                return {"totalSize": total, "done": True, "records": []}
            record = {"attributes": {"type": "AggregateResult"}, plan.aggregate_alias: total}
            return {"totalSize": 1, "done": True, "records": [record]}
        cursor = Cursor(plan, total, batch)
        return self._page(cursor, 0, "query" if not include_deleted else "queryAll")

    def query_more(self, locator: str) -> dict[str, Any]:
        cursor_id, _, start = locator.partition("-")
        cursor = self._cursors.get(cursor_id)
        if cursor is None or not start.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(start), "query", cursor_id)

    def _page(
        self, cursor: Cursor, start: int, endpoint: str, cursor_id: str | None = None
    ) -> dict[str, Any]:
        plan = cursor.plan
        size = max(0, min(self._page_size(cursor), cursor.total - start))
        sql = f"{plan.select_sql} {plan.from_sql} ORDER BY {plan.order_sql} LIMIT ? OFFSET ?"
        rows = self.store.execute(sql, [*plan.params, size, plan.offset + start])
        records = [self._query_record(plan, row) for row in rows]
        result: dict[str, Any] = {"totalSize": cursor.total, "done": True, "records": records}
        end = start + len(rows)
        if end < cursor.total:
            if cursor_id is None:
                cursor_id = "01g" + secrets.token_hex(8)[:12] + "AAA"
                self._cursors[cursor_id] = cursor
                while len(self._cursors) > MAX_CURSORS:
                    self._cursors.popitem(last=False)
            result["done"] = False
            result["nextRecordsUrl"] = f"/services/data/v{self.version}/query/{cursor_id}-{end}"
        return result

    def shorten_pages(self, share: float, seed: int) -> None:
        """Cut `share` of query pages shorter than asked, at seeded random sizes."""
        self.short_pages = share
        self._pages_rng = random.Random(seed)

    def _page_size(self, cursor: Cursor) -> int:
        """Pages hold up to the batch size, "may be fewer": at most 200 when two or more long
        text fields are selected (SOQL reference, "Changing the Batch Size in Queries"), and
        with `short_pages` a seeded share of pages is shorter still (REAL-ORG-FACTS.md R17)."""
        batch = cursor.batch
        long_text = [c for c in cursor.plan.columns if c.field.type == "textarea"]
        if len([c for c in long_text if c.field.length > 255]) >= 2:
            batch = min(batch, 200)
        if self.short_pages and self._pages_rng.random() < self.short_pages:
            batch = self._pages_rng.randint(1, batch)
        return batch

    def _query_record(self, plan: Plan, row: tuple[Any, ...]) -> dict[str, Any]:
        record_id = row[plan.id_index]
        record: dict[str, Any] = {
            "attributes": {"type": plan.sobject, "url": self.url(plan.sobject, record_id)}
        }
        for index, column in enumerate(plan.columns):
            target = record
            for depth, key in enumerate(column.path[:-1]):
                if key not in target:
                    target[key] = {"attributes": {"type": column.objects[depth], "url": ""}}
                target = target[key]
            target[column.field.name] = to_json(column.field, row[index])
        for path, index in plan.join_ids:
            holder: Any = record
            for key in path[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if not isinstance(holder, dict) or path[-1] not in holder:
                continue
            parent_id = row[index]
            if parent_id is None:
                holder[path[-1]] = None  # no parent: Salesforce writes null, not an empty object
            else:
                node = holder[path[-1]]
                node["attributes"]["url"] = self.url(node["attributes"]["type"], parent_id)
        return record


# From API 59.0 a ContentDocumentLink query must filter on Id, LinkedEntityId or
# ContentDocumentId unless "Query All Files" is on (Object Reference, ContentDocumentLink;
# REAL-ORG-FACTS.md R13). The wording of the refusal is the one real orgs are quoted with.
_LINK_QUERY = re.compile(r"\bFROM\s+ContentDocumentLink\b", re.IGNORECASE)
_LINK_FILTER = re.compile(
    r"\bWHERE\b.*\b(Id|LinkedEntityId|ContentDocumentId)\s*(=|IN\b)", re.IGNORECASE | re.DOTALL
)


def _check_order_account(obj: SObject, row: dict[str, Any], values: dict[str, Any]) -> None:
    """Order.AccountId is updatable only while the order's status category is Draft (Object
    Reference, Order; REAL-ORG-FACTS.md R14). The errorCode and wording are our choice."""
    if obj.name != "Order" or "AccountId" not in values:
        return
    if values["AccountId"] == row.get("AccountId") or (row.get("Status") or "Draft") == "Draft":
        return
    raise RecordErrors(
        [
            ApiError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                "Account ID: the account of an order can change only while it is in Draft",
                ["AccountId"],
            )
        ]
    )


def _check_link_filter(soql: str, version: str) -> None:
    if not _LINK_QUERY.search(soql) or float(version) < 59.0 or _LINK_FILTER.search(soql):
        return
    raise SoqlError(
        "MALFORMED_QUERY",
        "Implementation restriction: ContentDocumentLink requires a filter by a single Id on "
        "ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using "
        "the IN operator.",
    )


def auto_number(display_format: str, number: int) -> str:
    start = display_format.find("{")
    end = display_format.find("}")
    if start < 0 or end < start:
        return f"{display_format}{number}"
    width = end - start - 1
    return f"{display_format[:start]}{number:0{width}d}{display_format[end + 1 :]}"
