"""sObject Collections (`/composite/sobjects`): up to 200 records per call, per-record results.

One call is one API request. With allOrNone every record is rolled back when one fails; without
it each record commits or fails alone. Result order always equals request order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chronoforce.sandbox.salesforce.errors import ApiError, RecordErrors
from chronoforce.sandbox.salesforce.ids import MalformedId, to_18
from chronoforce.sandbox.salesforce.org import MultipleMatches, Org
from chronoforce.sandbox.salesforce.records import to_storage

if TYPE_CHECKING:
    from chronoforce.sandbox.salesforce.rest import Reply

MAX_RECORDS = 200
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}


class _RollBack(Exception):
    """Raised inside the outer transaction to undo an allOrNone call."""


def _errors(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, RecordErrors):
        return [e.collection() for e in exc.errors]
    if isinstance(exc, ApiError):
        return [exc.collection()]
    if isinstance(exc, MultipleMatches):
        return [
            {
                "statusCode": "DUPLICATE_EXTERNAL_ID",
                "fields": [],
                "message": f"more than one record found for external id field: {exc.urls}",
            }
        ]
    raise exc


class Collections:
    def __init__(self, org: Org) -> None:
        self.org = org
        # An unknown (or FLS-hidden) field inside a collection: Salesforce does not document
        # the answer; a body that does not map to sObjects is "not well formed", so the whole
        # request is refused by default (REAL-ORG-FACTS.md R6, unconfirmed). "record": per record.
        self.unknown_field: str = "request"

    def _check_well_formed(self, records: list[Any], sobject: str | None) -> None:
        """A request-level 400 for what makes the body not map to sObjects (R5, R6)."""
        for record in records:
            if not isinstance(record, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
            name = sobject or self._type(record)
            obj = self.org.sobject_or_invalid_type(name)
            if self.unknown_field != "request":
                continue
            for key in record:
                if key != "attributes" and obj.field(key) is None:
                    raise ApiError(
                        400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {name}"
                    )

    def handle(
        self, method: str, body: Any, query: dict[str, list[str]], params: dict[str, str]
    ) -> Reply:
        from chronoforce.sandbox.salesforce.rest import Reply

        if method == "GET":
            return Reply(200, self._retrieve(query, params.get("t"), body))
        if method == "DELETE":
            ids = ",".join(query.get("ids", [])).split(",")
            ids = [i for i in ids if i]
            all_or_none = query.get("allOrNone", ["false"])[0].lower() == "true"
            self._check_size(len(ids))
            return Reply(200, self._run(ids, all_or_none, self._delete_one))
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must contain 'records'.")
        records = body["records"]
        self._check_size(len(records))
        self._check_well_formed(records, params.get("t") if "f" in params else None)
        all_or_none = bool(body.get("allOrNone", False))
        if method == "POST":
            return Reply(200, self._run(records, all_or_none, self._create_one))
        if "f" in params:

            def upsert_one(record: Any) -> dict[str, Any]:
                return self._upsert_one(record, params["t"], params["f"])

            return Reply(200, self._run(records, all_or_none, upsert_one))
        return Reply(200, self._run(records, all_or_none, self._update_one))

    def _check_size(self, count: int) -> None:
        if count > MAX_RECORDS:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than "
                f"{MAX_RECORDS} records into this call",
            )

    def _run(self, items: list[Any], all_or_none: bool, one: Any) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        failed = False
        try:
            with self.org.store.transaction():
                for item in items:
                    try:
                        with self.org.store.transaction():  # a savepoint per record
                            results.append(one(item))
                    except (ApiError, RecordErrors, MultipleMatches) as exc:
                        failed = True
                        result: dict[str, Any] = {"success": False, "errors": _errors(exc)}
                        record_id = _given_id(item)
                        if record_id:
                            result = {"id": record_id, **result}
                        results.append(result)
                if failed and all_or_none:
                    raise _RollBack
        except _RollBack:
            return [
                r if not r["success"] else {"success": False, "errors": [dict(ROLLED_BACK)]}
                for r in results
            ]
        return results

    def _type(self, record: Any) -> str:
        if not isinstance(record, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object", [])
        attributes = record.get("attributes")
        if not isinstance(attributes, dict) or not attributes.get("type"):
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        return str(attributes["type"])

    def _create_one(self, record: Any) -> dict[str, Any]:
        sobject = self._type(record)
        if _given_id(record):
            raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        return {"id": self.org.create(sobject, record), "success": True, "errors": []}

    def _update_one(self, record: Any) -> dict[str, Any]:
        sobject = self._type(record)
        record_id = _given_id(record)
        if not record_id:
            raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
        body = {k: v for k, v in record.items() if k.lower() != "id"}
        obj = self.org.sobject(sobject)
        canonical = self.org.record_id(obj, record_id)
        values = to_storage(obj, body, False, self.org.prefixes)
        with self.org.store.transaction() as tx:
            self.org.apply_update(tx, obj, canonical, values)
        return {"id": canonical, "success": True, "errors": []}

    def _upsert_one(self, record: Any, sobject: str, field_name: str) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object", [])
        key = next((k for k in record if k.lower() == field_name.lower()), None)
        if key is None or record[key] in (None, ""):
            raise ApiError(400, "MISSING_ARGUMENT", f"{field_name} not specified", [field_name])
        body = {k: v for k, v in record.items() if k != key}
        record_id, created = self.org.upsert(sobject, field_name, str(record[key]), body)
        return {"id": record_id, "success": True, "errors": [], "created": created}

    def _delete_one(self, record_id: Any) -> dict[str, Any]:
        try:
            canonical = to_18(str(record_id))
        except MalformedId:
            raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", []) from None
        obj = next((o for o in self.org.schema.values() if o.prefix == canonical[:3]), None)
        if obj is None or obj.event:
            raise ApiError(400, "MALFORMED_ID", f"malformed id {record_id}", [])
        self.org.delete(obj.name, canonical)
        return {"id": canonical, "success": True, "errors": []}

    def _retrieve(self, query: dict[str, list[str]], sobject: str | None, body: Any) -> Any:
        ids = ",".join(query.get("ids", [])).split(",")
        fields = [f for f in ",".join(query.get("fields", [])).split(",") if f]
        if sobject is None:
            raise ApiError(400, "NOT_FOUND", "The requested resource does not exist")
        out: list[Any] = []
        for record_id in (i for i in ids if i):
            try:
                out.append(self.org.get(sobject, record_id, fields or None))
            except ApiError:
                out.append(None)
        return out


def _given_id(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        value = item.get("id", item.get("Id"))
        return str(value) if value else None
    return None
