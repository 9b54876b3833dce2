"""`GET /ready`: may this process take work? The database answers, its schema is at the head
migration, and the queue answers. 200 with each check, or 503 naming the one that failed.

It only reads (one `SELECT 1`, the Alembic revision, the queue depth) and never shows a URL,
since database and queue URLs may carry passwords.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from chronoforce.queue import make_huey, ping
from chronoforce.store.db import current_revision, head_revision

router = APIRouter(tags=["health"])


def readiness(settings: Any, store: Any) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = current_revision(store.engine), head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except Exception as exc:  # any failure: not ready, and say which check failed
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    try:
        from chronoforce.worker import worker_config

        name = worker_config(settings.worker).queue_name
        ping(make_huey(settings.queue_url, settings.database_url, name=name))
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"unreachable: {type(exc).__name__}"
    return checks


@router.get("/ready")
def get_ready(request: Request) -> JSONResponse:
    """Readiness: 200 when database, migrations and queue are ok, else 503 (no auth)."""
    checks = readiness(request.app.state.settings, request.app.state.store)
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
