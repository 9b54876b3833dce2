"""Request ids: every HTTP request gets one, echoed in `X-Request-ID` and bound into every log line.

A caller's own id (a load balancer's, a test's) is kept when it looks like an id; anything else is
replaced, so a header can never inject text into the logs. It must never read or log the body.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's id when it is a plain token of 8-128 characters, else a fresh one."""
    for key, value in headers:
        if key.lower() == _HEADER_KEY:
            offered = value.decode("latin-1")
            if _ACCEPTABLE.fullmatch(offered):
                return offered
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Pure ASGI middleware (no response buffering): binds `request_id` for the request's logs.

    structlog's contextvars are copied into the thread pool that runs sync endpoints, so log lines
    written there carry the id too.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(list(scope.get("headers") or ()))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_KEY
                ]
                headers.append((_HEADER_KEY, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)
