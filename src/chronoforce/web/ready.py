"""`GET /ready`: may this process take work? 200 with each check of `pipeline/health.py`
(database, migrations, queue), or 503 naming the one that failed. No auth, no URL shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chronoforce.config import WorkerConfig, section
from chronoforce.pipeline.health import readiness as _readiness

router = APIRouter(tags=["health"])


def readiness(settings: Any, store: Any) -> dict[str, Any]:
    return _readiness(settings, store, section(WorkerConfig, "worker", settings.worker).queue_name)


@router.get("/ready")
def get_ready(request: Request) -> JSONResponse:
    """Readiness: 200 when database, migrations and queue are ok, else 503 (no auth)."""
    checks = readiness(request.app.state.settings, request.app.state.store)
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
