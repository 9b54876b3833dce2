"""Structured logging with structlog: JSON lines off a TTY, pretty on a TTY, secrets redacted.

Every event passes through `redact_processor` before rendering, so no log line can carry a
password, token or private key, whatever a caller binds.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from chronoforce.redaction import redact

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    return redact(dict(event_dict))


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog (and the stdlib root logger) once per process."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    numeric = _LEVELS.get(level, logging.ERROR)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the stdlib: route them through the same redaction and renderer.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for noisy in ("zeep", "urllib3", "httpx", "httpcore", "huey", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(**context: Any) -> Any:
    """A logger bound with context (`shipment_id`, `sf_id`, `skybill`).

    Bound at once: a module-level logger keeps the configuration of its import time, so tests
    that configure logging onto a temporary stream cannot break later log calls.
    """
    return structlog.get_logger().bind(**context)
