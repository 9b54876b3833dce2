"""The work queue: huey on SQLite by default (no server), on Redis to scale out.

The queue carries shipment ids and nothing else; the database rows stay the source of truth, so a
lost or duplicated task delays work at worst and never loses or repeats it. `name` keeps several
deployments (or test runs) on one Redis apart: every key huey writes starts with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from sqlalchemy.engine import make_url

from chronoforce.logs import get_logger
from chronoforce.store.db import normalize_url

log = get_logger(component="queue")


def queue_location(queue_url: str, database_url: str) -> str:
    """Where huey keeps its queue: the explicit URL, or a file beside the SQLite database."""
    if queue_url:
        return queue_url
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return f"sqlite:///{Path(url.database).with_suffix('.queue.db')}"
    return "sqlite:///.chronoforce/queue.db"


def is_redis(location: str) -> bool:
    return location.startswith(("redis://", "rediss://", "unix://"))


def make_huey(
    queue_url: str, database_url: str, *, immediate: bool = False, name: str = "chronoforce"
) -> Huey:
    location = queue_location(queue_url, database_url)
    if is_redis(location):
        return RedisHuey(name, url=location, results=False, immediate=immediate)
    path = Path(location.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path), results=False, immediate=immediate, timeout=30)


def ping(huey: Huey) -> int:
    """The queue answers: its depth (raises when the storage is unreachable)."""
    return int(huey.pending_count())


class TaskSet:
    """chronoforce's tasks bound to one huey instance and a lazily built runtime.

    `runtime_factory` is called once per process, in the worker, so connections are never
    shared across a fork.
    """

    def __init__(self, huey: Huey, runtime_factory: Callable[[], Any]) -> None:
        self.huey = huey
        self._factory = runtime_factory
        self._runtime: Any = None
        self._lock = threading.Lock()

        @huey.task(name="chronoforce.label")  # type: ignore[untyped-decorator]
        def label(shipment_id: int) -> None:
            try:
                self.runtime().labels.process(shipment_id)
            except Exception as exc:  # the row keeps its lease until expiry; the sweeper retries
                log.error("label task failed", shipment_id=shipment_id, error=str(exc)[:500])

        @huey.task(name="chronoforce.flush")  # type: ignore[untyped-decorator]
        def flush() -> None:
            self.runtime().flush()

        self.label = label
        self.flush = flush

    def runtime(self) -> Any:
        with self._lock:
            if self._runtime is None:
                self._runtime = self._factory()
            return self._runtime

    def consumer(self, workers: int, **options: Any) -> Any:
        """Thread workers; periodic tasks are ours (runner.py), not huey's, so they run once
        per cluster rather than once per consumer."""
        settings: dict[str, Any] = {
            "workers": workers,
            "worker_type": "thread",
            "periodic": False,
            "initial_delay": 0.05,
            "backoff": 1.3,
            "max_delay": 0.5,
            "check_worker_health": True,
            **options,
        }
        return self.huey.create_consumer(**settings)

    def pending(self) -> int:
        return int(self.huey.pending_count())
