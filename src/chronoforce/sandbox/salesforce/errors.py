"""Errors the sandbox answers with, in Salesforce's REST shapes.

`ApiError` is one entry of Salesforce's error array; it never carries secrets (no tokens, no
passwords in messages).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """`[{"message", "errorCode", "fields"}]` with an HTTP status."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def rest(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            body["fields"] = self.fields
        return body

    def collection(self) -> dict[str, Any]:
        """The per-record shape used inside sObject Collections results."""
        return {"statusCode": self.error_code, "message": self.message, "fields": self.fields or []}


class RecordErrors(Exception):
    """One record failed validation: every problem found, in Salesforce's order."""

    def __init__(self, errors: list[ApiError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def entity_deleted() -> ApiError:
    return ApiError(400, "ENTITY_IS_DELETED", "entity is deleted", [])


def malformed_id(sobject: str, value: str) -> ApiError:
    return ApiError(400, "MALFORMED_ID", f"{sobject} ID: id value of incorrect type: {value}", [])


def unable_to_lock_row(record_id: str) -> ApiError:
    # Salesforce's wording for a row held by another transaction.
    return ApiError(
        400,
        "UNABLE_TO_LOCK_ROW",
        f"unable to obtain exclusive access to this record or 1 records: {record_id}",
        [],
    )
