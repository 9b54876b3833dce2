"""Structured logging with structlog: JSON lines off a TTY, pretty on a TTY, secrets redacted.

Every event passes through `redact_processor` before rendering, so no log line can carry a
password, token or private key, whatever a caller binds. Loggers are made at import time, before
the configuration is read, so the level, the renderer and the stream live in objects every logger
shares and `configure_logging` changes in place: a logger bound earlier follows the new level
(a debug line never prints at `info`) and never writes to stdout, where `--json` output goes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

from chronoforce.redaction import redact

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class _Sink:
    """The stream every logger writes to, switched by `configure_logging`. A stream closed since
    (a test's captured output) falls back to stderr rather than failing the caller's work."""

    def __init__(self) -> None:
        self.stream: TextIO = sys.stderr

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except ValueError:  # I/O operation on a closed file
            return sys.stderr.write(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except ValueError:
            sys.stderr.flush()

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except ValueError:
            return False


_SINK = _Sink()
_THRESHOLD = [logging.INFO]  # the configured level, read on every event
_PROCESSORS: list[Any] = []  # shared with every bound logger; replaced in place


def _below_level(_: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    if _METHOD_LEVELS.get(method, logging.INFO) < _THRESHOLD[0]:
        raise structlog.DropEvent
    return event_dict


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    return redact(dict(event_dict))


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set the level, the format and the stream of every logger, made before or after."""
    _SINK.stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _SINK.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=_SINK.isatty())
    )
    numeric = _LEVELS.get(level, logging.ERROR)
    _THRESHOLD[0] = numeric
    shared = _shared()
    _PROCESSORS[:] = [_below_level, *shared, renderer]
    structlog.configure(
        processors=_PROCESSORS,
        wrapper_class=structlog.BoundLogger,
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _SINK)),  # write + flush
        cache_logger_on_first_use=False,
    )
    # Libraries log through the stdlib: route them through the same redaction and renderer.
    handler = logging.StreamHandler(_SINK)
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

    Bound at once, so a module-level logger is cheap; it still follows every later
    `configure_logging` through the shared level, processors and stream.
    """
    return structlog.get_logger().bind(**context)


# Before any configuration: info and above, to stderr (never stdout, where `--json` goes).
configure_logging()
