"""Is this deployment able to work? The database answers, its schema is at the head migration,
and the queue answers. Shared by `GET /ready` and `chronoforce doctor`.

It only reads (one `SELECT 1`, the Alembic revision, the queue depth) and never shows a URL,
since database and queue URLs may carry passwords.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from chronoforce.queue import make_huey, ping
from chronoforce.store.db import current_revision, head_revision


def readiness(settings: Any, store: Any, queue_name: str) -> dict[str, str]:
    """`{"database": …, "migrations": …, "queue": …}`, each "ok" or what is wrong."""
    checks: dict[str, str] = {}
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
        ping(make_huey(settings.queue_url, settings.database_url, name=queue_name))
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"unreachable: {type(exc).__name__}"
    return checks
