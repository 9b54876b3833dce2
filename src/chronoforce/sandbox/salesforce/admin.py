"""Admin endpoints under /_sandbox/: seed, reset, inspect, faults, budget, stats, clock.

They are protected by nothing but loopback: any request from another address gets 403. They
must never be mounted under /services/ (clients must not mistake them for Salesforce's API).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chronoforce.sandbox.salesforce.errors import ApiError

if TYPE_CHECKING:
    from chronoforce.sandbox.salesforce.sandbox import SalesforceSandbox

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


async def _args(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def admin_routes(sb: SalesforceSandbox) -> list[Route]:
    def endpoint(action: Any) -> Any:
        async def handler(request: Request) -> Response:
            client = request.client.host if request.client else ""
            if client not in LOOPBACK:
                return JSONResponse({"error": "admin endpoints answer loopback only"}, 403)
            try:
                args = await _args(request)
                result = action(request, args)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
            except ApiError as exc:
                return JSONResponse([exc.rest()], exc.status)
            return JSONResponse(result)

        return handler

    def seed(request: Request, args: dict[str, Any]) -> Any:
        ids = sb.seed(orders=int(args.get("orders", 100)), seed=int(args.get("seed", 0)))
        created = {name: len(values) for name, values in ids.items()}
        return {"created": created, "ids": ids if created.get("Order", 0) <= 1000 else None}

    def reset(request: Request, args: dict[str, Any]) -> Any:
        sb.reset()
        return {"reset": True}

    def records(request: Request, args: dict[str, Any]) -> Any:
        return sb.records(request.path_params["sobject"])

    def faults(request: Request, args: dict[str, Any]) -> Any:
        return sb.set_faults(**args)

    def expire(request: Request, args: dict[str, Any]) -> Any:
        sb.expire_sessions()
        return {"expired": True}

    def budget(request: Request, args: dict[str, Any]) -> Any:
        sb.set_api_budget(max=args.get("max"), used=args.get("used"))
        return sb.limits()["DailyApiRequests"]

    def stats(request: Request, args: dict[str, Any]) -> Any:
        if request.method == "POST":
            sb.reset_stats()
        return sb.stats()

    def clock(request: Request, args: dict[str, Any]) -> Any:
        if request.method == "POST":
            sb.advance_clock(dt.timedelta(seconds=float(args.get("advance_seconds", 0))))
        return {"now": sb.now().isoformat()}

    def changes(request: Request, args: dict[str, Any]) -> Any:
        params = request.query_params
        after = params.get("after")
        events = sb.read_changes(
            params["topic"], int(after) if after else None, int(params.get("limit", "100"))
        )
        return [{"replayId": r, "createdAt": c, "payload": p} for r, c, p in events]

    def summary(request: Request, args: dict[str, Any]) -> Any:
        return sb.summary()

    def refresh_token(request: Request, args: dict[str, Any]) -> Any:
        token = sb.issue_refresh_token(
            str(args["client_id"]), str(args.get("username", "")) or None
        )
        return {"refresh_token": token}

    return [
        Route("/_sandbox/seed", endpoint(seed), methods=["POST"]),
        Route("/_sandbox/reset", endpoint(reset), methods=["POST"]),
        Route("/_sandbox/records/{sobject}", endpoint(records), methods=["GET"]),
        Route("/_sandbox/faults", endpoint(faults), methods=["POST"]),
        Route("/_sandbox/expire-sessions", endpoint(expire), methods=["POST"]),
        Route("/_sandbox/api-budget", endpoint(budget), methods=["POST"]),
        Route("/_sandbox/stats", endpoint(stats), methods=["GET"]),
        Route("/_sandbox/stats/reset", endpoint(stats), methods=["POST"]),
        Route("/_sandbox/clock", endpoint(clock), methods=["GET", "POST"]),
        Route("/_sandbox/changes", endpoint(changes), methods=["GET"]),
        Route("/_sandbox/summary", endpoint(summary), methods=["GET"]),
        Route("/_sandbox/refresh-token", endpoint(refresh_token), methods=["POST"]),
    ]
