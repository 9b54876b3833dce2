"""The web app's clock: the one `create_app` was given (domain/clock.py), read per request.

Token expiry, the webhook's signature window, the console's "now" all read it, so a test (or a
replay) that injects a clock moves every one of them together (issue 16)."""

from __future__ import annotations

from fastapi import Request

from chronoforce.domain.clock import SYSTEM_CLOCK, Clock


def clock_of(request: Request) -> Clock:
    """The app's injected clock; the system's for an app built without one."""
    found = getattr(request.app.state, "clock", None)
    return found if isinstance(found, Clock) else SYSTEM_CLOCK
