"""`chronoforce run | ship | sync | backfill`: the label pipeline from the command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

console = Console()


def _runtime(ctx: typer.Context) -> Any:
    from chronoforce.cli import settings_from
    from chronoforce.pipeline.runtime import build_runtime

    return build_runtime(settings_from(ctx))


class WebThread:
    """The web app (health, readiness, webhook, API, console) served beside the pipeline."""

    def __init__(self, runtime: Any) -> None:
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


def run_until(
    runtime: Any,
    *,
    workers: int,
    until_idle: bool,
    max_seconds: float | None,
    web: bool = False,
) -> None:
    """Detect, label with `workers` huey threads, poll tracking, flush (and serve the web app
    when `web`): the embedded one-machine mode. The periodic jobs take cluster turns, so a
    `run` beside `worker` processes never doubles their work."""
    from chronoforce.queue import TaskSet, make_huey
    from chronoforce.worker import harden, runner_for, worker_config

    settings = runtime.settings
    config = worker_config(settings.worker)
    harden(runtime, config)
    huey = make_huey(settings.queue_url, settings.database_url, name=config.queue_name)
    tasks = TaskSet(huey, lambda: runtime)
    consumer = tasks.consumer(workers or label_threads(settings.chronopost.concurrency))
    consumer.start()
    serving = WebThread(runtime) if web else contextlib.nullcontext()
    try:
        with serving:
            runner_for(runtime, tasks, config).run(until_idle=until_idle, max_seconds=max_seconds)
    finally:
        consumer.stop(graceful=True)
        runtime.flush()


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        ctx: typer.Context,
        workers: Annotated[
            int,
            typer.Option(
                help="Label threads (default: 1.5 × chronopost.concurrency; carrier calls in "
                "flight never pass chronopost.concurrency)."
            ),
        ] = 0,
        until_idle: Annotated[bool, typer.Option(help="Stop once nothing is left to do.")] = False,
        max_seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
        web: Annotated[
            bool, typer.Option("--web/--no-web", help="Serve the web app (webhook, health).")
        ] = True,
    ) -> None:
        """Detect, label, poll tracking, write back and serve the web app in one process (the
        default for one machine)."""
        runtime = _runtime(ctx)
        try:
            run_until(
                runtime,
                workers=workers,
                until_idle=until_idle,
                max_seconds=max_seconds,
                web=web,
            )
        finally:
            runtime.close()

    @app.command()
    def sync(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = True,
    ) -> None:
        """Detect changed orders, label them and flush, once."""
        runtime = _runtime(ctx)
        try:
            ids = runtime.detect()
            for shipment_id in ids:
                runtime.labels.process(shipment_id)
            report = runtime.flush()
            console.print(
                f"{len(ids)} order(s) processed; {report.sent} Salesforce write(s) in "
                f"{report.calls} call(s); {report.failed} refused"
            )
        finally:
            runtime.close()

    @app.command()
    def ship(
        ctx: typer.Context,
        order_id: Annotated[str, typer.Argument(help="The Salesforce record id.")],
    ) -> None:
        """Ship one order now, printing each step."""
        from chronoforce.salesforce.mapping import soql_for_trigger
        from chronoforce.salesforce.soql import record_id

        runtime = _runtime(ctx)
        try:
            soql = soql_for_trigger(runtime.mapping, None).split(" WHERE ")[0]
            soql += f" WHERE Id = '{record_id(order_id)}'"
            records = list(runtime.salesforce.query_iter(soql))
            if not records:
                console.print(f"no {runtime.mapping.trigger_object} {order_id}")
                raise typer.Exit(1)
            console.print(f"read {runtime.mapping.trigger_object} {order_id}")
            ids = runtime.record(records, None) or [
                s.id for s in runtime.shipments([records[0]["Id"]])
            ]
            for shipment_id in ids:
                outcome = runtime.labels.process(shipment_id)
                console.print(f"shipment {shipment_id}: {outcome}")
            report = runtime.flush()
            console.print(f"written back: {report.sent} write(s) in {report.calls} call(s)")
        finally:
            runtime.close()

    @app.command()
    def backfill(
        ctx: typer.Context,
        since: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    ) -> None:
        """Record every matching order changed since a date (resumable: intents are unique)."""
        from chronoforce.salesforce.changes import DeltaReader

        runtime = _runtime(ctx)
        try:
            start = dt.date.fromisoformat(since)
            reader = DeltaReader(runtime.salesforce, runtime.mapping)
            total = 0
            with Progress(console=console) as progress:
                task = progress.add_task("backfill", total=None)
                for page in reader.full_scan(start):
                    total += len(runtime.record(page.records, None))
                    progress.update(task, advance=len(page.records))
            console.print(f"{total} new shipment intent(s) recorded; `chronoforce run` labels them")
        finally:
            runtime.close()
