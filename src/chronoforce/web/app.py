"""The FastAPI app factory: /health and /ready, the tracking webhook, /api/v1, the console and
/metrics (`chronoforce web --help` lists every route group).

It only wires routers to a runtime (the store and the tracking use case); it holds no business
rules and must never answer a webhook before the events are durably stored.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from chronoforce import __version__
from chronoforce.config import Settings
from chronoforce.domain.clock import SYSTEM_CLOCK, Clock
from chronoforce.logs import get_logger
from chronoforce.pipeline.tracking import Tracking, process_inbox, tracking_config
from chronoforce.store.db import Store
from chronoforce.web import api, console, ready, webhooks
from chronoforce.web.middleware import RequestIdMiddleware

log = get_logger(component="web")

health = APIRouter(tags=["health"])


@health.get("/health")
def get_health() -> dict[str, str]:
    """Liveness: 200 whenever the process serves requests (no authentication)."""
    return {"status": "ok", "version": __version__}


class InboxDrainer:
    """A thread that ingests accepted webhook events; woken by each accepted request."""

    def __init__(self, tracking: Tracking, idle_wait: float = 1.0) -> None:
        self.tracking = tracking
        self.idle_wait = idle_wait
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cf-inbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while process_inbox(self.tracking) and not self._stop.is_set():
                    pass
            except Exception as exc:  # keep draining: the rows stay pending and are retried
                log.error("inbox processing failed", error=str(exc))
            self._wake.wait(self.idle_wait)


def create_app(
    settings: Settings,
    runtime: Any = None,
    *,
    drain_inbox: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> FastAPI:
    """The app `chronoforce web` serves. `runtime` needs a `store` (and may bring `tracking`);
    without one, the app opens the configured database itself. `clock`: what its requests
    read the time from (web/clock.py)."""
    own_store = runtime is None
    store: Store = Store(settings.database_url) if runtime is None else runtime.store
    tracking = getattr(runtime, "tracking", None)
    if not isinstance(tracking, Tracking):
        tracking = Tracking(store, tracking_config(settings.tracking))
    drainer = InboxDrainer(tracking) if drain_inbox else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if drainer is not None:
            drainer.start()
        try:
            yield
        finally:
            if drainer is not None:
                drainer.stop()
            if own_store:
                store.dispose()

    app = FastAPI(title="chronoforce", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.store = store
    app.state.tracking = tracking
    app.state.drainer = drainer
    app.include_router(health)
    app.include_router(webhooks.router)
    app.include_router(ready.router)  # /ready: database, migrations, queue (issue 9)
    api.install(app, settings, runtime)  # /api/v1: rates, relay points, pickups, returns
    console.console_config(settings.console)  # a bad `console:` section stops start-up
    app.include_router(console.router)  # login, pages, /metrics (docs/console.md)
    app.add_middleware(RequestIdMiddleware)
    return app
