"""`chronoforce run | ship | sync | backfill | labels reprint`: the label pipeline from the
command line."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from chronoforce.cli.common import console, fail, make_console, run_until, runtime_of, settings_from
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.models import LabelFormat
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.salesforce.changes import DeltaReader
from chronoforce.salesforce.mapping import soql_for_record
from chronoforce.salesforce.soql import is_record_id

labels_app = typer.Typer(help="Labels already made: re-print a lost one.")


@labels_app.command()
def reprint(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="ORDER_OR_SKYBILL", help="Order number, Salesforce id or skybill number."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the label (default: its own name here).")
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="Label mode, e.g. PDF or Z2D (default: as it was made).")
    ] = None,
) -> None:
    """Fetch a shipment's label again from Chronopost (the one it stored: same skybill number,
    no new parcel), write it to a file and file a copy on the Order and Shipment in Salesforce.
    A cancelled label is refused."""
    try:
        label_format = LabelFormat(mode.upper()) if mode else None
    except ValueError:
        fail(f"--mode {mode!r}: one of {', '.join(m.value for m in LabelFormat)}", 2)
    from chronoforce.web.api_service import ApiService  # loads both clients: only when used

    settings = settings_from(ctx)
    service = ApiService(settings, settings.api)
    try:
        _ = service.runtime  # the full runtime, shared gates included: the file is sent below
        reprints: Any = service.reprints()
        done = reprints.reprint(reprints.find(key), label_format=label_format, requested_by="cli")
        service.flush_own_writes()  # the Salesforce file: no runner beside a one-shot command
    except ChronoforceError as exc:
        where = f" (record {exc.record_id})" if exc.record_id else ""
        fail(f"{exc.code}: {exc.message}{where}")
    finally:
        service.close()
    target = out or Path(done.filename)
    try:
        target.write_bytes(done.data)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    console.print(
        f"shipment {done.shipment_id}: label of {', '.join(done.skybill_numbers)} re-printed "
        f"({done.label_format.value}) to {target}; a copy is filed in Salesforce",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(labels_app, name="labels")

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
        default for one machine). SIGTERM or Ctrl-C stops it gracefully, like `worker`."""
        runtime = runtime_of(ctx, cluster=True)
        try:
            finished = run_until(
                runtime,
                workers=workers,
                until_idle=until_idle,
                max_seconds=max_seconds,
                web=web,
            )
        except BaseException:
            runtime.close()
            raise
        if not finished:
            # A periodic job (a long tracking round) outlived the grace: its rows are leased
            # or claimed in the database and come back on their own (as `worker` does).
            os._exit(0)
        runtime.close()

    @app.command()
    def sync(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = True,
    ) -> None:
        """Detect changed orders, label them and flush, once."""
        runtime = runtime_of(ctx)
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
        """Ship one order now, printing each step (exit 1 unless every shipment is labeled)."""
        if not is_record_id(order_id):
            fail(f"not a Salesforce id: {order_id!r} (15 or 18 characters)", 2)
        runtime = runtime_of(ctx)
        try:
            soql = soql_for_record(runtime.mapping, order_id)
            sobject = runtime.mapping.trigger_object
            try:
                records = list(runtime.salesforce.query_iter(soql))
            except ChronoforceError as exc:
                fail(f"cannot read {sobject} {order_id}: {exc}")
            if not records:
                fail(f"no {sobject} {order_id} in Salesforce (or not readable by chronoforce)")
            console.print(f"read {sobject} {order_id}")
            ids = runtime.record(records, None) or [
                s.id for s in runtime.shipments([records[0]["Id"]])
            ]
            for shipment_id in ids:
                outcome = runtime.labels.process(shipment_id)
                console.print(f"shipment {shipment_id}: {outcome}")
            report = runtime.flush()
            console.print(f"written back: {report.sent} write(s) in {report.calls} call(s)")
            unlabeled = [
                s for s in runtime.shipments([records[0]["Id"]]) if s.state != ShipmentState.LABELED
            ]
        finally:
            runtime.close()
        if unlabeled:
            fail(
                "not labeled: "
                + ", ".join(f"shipment {s.id} is {s.state}" for s in unlabeled)
                + (" (see `chronoforce exceptions list`)" if any(
                    s.state == ShipmentState.EXCEPTION for s in unlabeled) else "")
            )  # fmt: skip

    @app.command()
    def backfill(
        ctx: typer.Context,
        since: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    ) -> None:
        """Record every matching order changed since a date (resumable: intents are unique)."""
        try:
            start = dt.date.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r} is not a day (YYYY-MM-DD)", 2)
        runtime = runtime_of(ctx)
        try:
            reader = DeltaReader(runtime.salesforce, runtime.mapping)
            total = 0
            with Progress(console=make_console()) as progress:
                task = progress.add_task("backfill", total=None)
                for page in reader.full_scan(start):
                    total += len(runtime.record(page.records, None))
                    progress.update(task, advance=len(page.records))
            console.print(f"{total} new shipment intent(s) recorded; `chronoforce run` labels them")
        finally:
            runtime.close()
