"""What every command module of the `chronoforce` CLI shares: settings, output, the embedded run.

Command modules import this one and never each other, so the package has no import cycle. A
mistake ends the command with one line on stderr and a non-zero exit (`fail`), never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from chronoforce.config import ConfigError, Settings, load_settings
from chronoforce.config.sections import problems
from chronoforce.domain.errors import ChronoforceError
from chronoforce.logs import configure_logging, get_logger
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.queue import TaskSet, make_huey
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.worker import release_unstarted, runner_for, worker_config

# Tables are data: off a terminal (a pipe, a file, a test) rich would cut them at 80 columns and
# squeeze dates to `2026-12…`; this width keeps every column whole. A terminal uses its own.
PIPE_WIDTH = 200

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

log = get_logger(component="cli")


def make_console(stderr: bool = False) -> Console:
    """A rich console for this run: the terminal's width, or PIPE_WIDTH when not a terminal
    ($COLUMNS still wins, as rich reads it)."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, width=width)


class _LazyConsole:
    """`console.print(...)` on a console made for each print, so the stdout and $COLUMNS of
    that invocation apply (CliRunner swaps both; a console made at import time would not)."""

    def print(self, *objects: Any, **options: Any) -> None:
        make_console().print(*objects, **options)


console = _LazyConsole()


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command: one line on stderr, exit `code` (1: nothing done, 2: bad input)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def settings_from(ctx: typer.Context) -> Settings:
    """The settings of this invocation, loaded once (errors end the command cleanly)."""
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "settings" not in root.obj:
        try:
            root.obj["settings"] = checked(load_settings(root.obj.get("config_file")))
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        cfg = root.obj["settings"].logging
        configure_logging(cfg.level, cfg.format)
    settings: Settings = root.obj["settings"]
    return settings


def checked(settings: Settings) -> Settings:
    """`settings` once the field mapping, the Salesforce adapter's own model, also validates:
    every command refuses a bad file at load, naming the key and the file."""
    where = f"{settings.source}: invalid configuration"
    try:
        MappingConfig.from_settings(settings.mapping)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {problems(exc, 'mapping')}") from exc
    except (TypeError, ValueError, ChronoforceError) as exc:  # a field spec of the wrong shape
        raise ConfigError(f"{where}: key 'mapping': {exc}") from exc
    return settings


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def runtime_of(ctx: typer.Context, *, cluster: bool = False) -> Any:
    """The pipeline's runtime built from this invocation's settings (the caller closes it);
    `cluster`: with the cluster's gates, for a command that runs the pipeline (`run_until`)."""
    settings = settings_from(ctx)
    try:
        return build_runtime(settings, cluster=cluster)
    except ConfigError as exc:
        fail(f"configuration error: {exc}", 2)


class WebThread:
    """The web app (health, readiness, webhook, API, console) served beside the pipeline."""

    def __init__(self, runtime: Any) -> None:
        # Imported here for start-up time: uvicorn and FastAPI load only when `run` serves.
        import uvicorn

        from chronoforce.web.app import create_app

        web = runtime.settings.web
        config = uvicorn.Config(
            create_app(runtime.settings, runtime),
            host=web.host,
            port=web.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="cf-web", daemon=True)

    def __enter__(self) -> WebThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def label_threads(concurrency: int) -> int:
    """Label threads for `concurrency` carrier calls: more threads than calls, so one thread's
    database work (lease, storing the label) overlaps the others' calls and no slot waits."""
    return concurrency + max(2, concurrency // 2)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C call `stop` (a graceful stop); a second one interrupts at
    once. Only the main thread can take signals: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _: FrameType | None) -> None:
        signal.signal(signum, signal.default_int_handler)  # the next one: KeyboardInterrupt
        stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_until(
    runtime: Any,
    *,
    workers: int,
    until_idle: bool,
    max_seconds: float | None,
    web: bool = False,
) -> bool:
    """Detect, label with `workers` huey threads, poll tracking, flush (and serve the web app
    when `web`): the embedded one-machine mode. The periodic jobs take cluster turns, so a
    `run` beside `worker` processes never doubles their work.

    SIGTERM or Ctrl-C stops it as `worker` stops: no new carrier call starts, the calls in
    flight finish within `worker.shutdown_grace_s`, leases of work not started are released.
    Returns False when a periodic job outlived the grace (its rows come back on their own).
    `runtime` comes from `build_runtime(settings, cluster=True)`: its gates are the cluster's."""
    settings = runtime.settings
    config = worker_config(settings.worker)  # a model_copy(update=…) may hold a mapping
    if runtime.labels.gates.breaker is None:
        # It takes cluster turns beside any worker: the cluster's gates, built with it.
        raise ValueError("run_until needs a runtime built with build_runtime(..., cluster=True)")
    huey = make_huey(settings.queue_url, settings.database_url, name=config.queue_name)
    tasks = TaskSet(huey, lambda: runtime)
    consumer = tasks.consumer(
        workers or label_threads(settings.chronopost.concurrency),
        shutdown_timeout=config.shutdown_grace_s,
    )
    runner = runner_for(runtime, tasks, config)
    stopping = threading.Event()
    runtime.labels.stopping = stopping.is_set

    def stop(why: str) -> None:
        log.info("run stopping", signal=why, grace_s=config.shutdown_grace_s)
        stopping.set()  # label tasks release their shipment instead of calling the carrier
        consumer.stop_flag.set()  # huey's threads take no new task
        runner.stop_event.set()

    periodic = threading.Thread(
        target=runner.run,
        kwargs={"until_idle": until_idle, "max_seconds": max_seconds},
        name="cf-periodic",
        daemon=True,
    )
    serving = WebThread(runtime) if web else contextlib.nullcontext()
    consumer.start()  # installs huey's signal handlers; stop_on_signals replaces them
    try:
        with stop_on_signals(stop), serving:
            periodic.start()
            while periodic.is_alive():
                periodic.join(timeout=0.2)  # short waits: the main thread takes the signals
    finally:
        runner.stop_event.set()
        consumer.stop(graceful=True)  # running tasks finish, within the grace
        periodic.join(timeout=max(1.0, config.shutdown_grace_s))
        if stopping.is_set():
            log.info("run stopped", released=release_unstarted(runtime))
            try:
                runtime.flush()  # what is labeled reaches Salesforce now rather than next start
            except Exception as exc:  # the outbox keeps the rows: the next run sends them
                log.warning("flush at stop failed", error=str(exc)[:300])
        else:
            runtime.flush()
    return not periodic.is_alive()
