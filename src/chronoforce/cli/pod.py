"""`chronoforce pod SKYBILL`: fetch one parcel's proof of delivery by hand (issue 21).

It asks Chronopost now (pipeline/pod.py `Pods.fetch`, through the same gates as the sweep),
attaches an available POD in Salesforce (Order, Shipment, open Cases) and flushes that write
itself, optionally saves the file with `--out`, and prints the POD status. A parcel chronoforce
does not know, or a refusal, is one line on stderr and a non-zero exit; never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chronoforce.cli.common import console, fail, runtime_of
from chronoforce.domain.errors import ChronoforceError, NotFoundError


def register(app: typer.Typer) -> None:
    @app.command()
    def pod(
        ctx: typer.Context,
        skybill: Annotated[str, typer.Argument(help="The parcel's skybill number.")],
        out: Annotated[
            Path | None, typer.Option("--out", help="Also write the POD file here.")
        ] = None,
        image: Annotated[
            bool, typer.Option("--image", help="Ask for an image (PNG) rather than a PDF.")
        ] = False,
    ) -> None:
        """Fetch a parcel's proof of delivery now: attach it in Salesforce, print its status."""
        runtime = runtime_of(ctx)
        try:
            pods = runtime.pods
            pods.pdf = not image
            try:
                outcome = pods.fetch(skybill)
            except NotFoundError as exc:
                fail(f"unknown parcel {skybill.strip()!r}: {exc.message}")
            except ChronoforceError as exc:
                fail(f"searchPOD {skybill.strip()} failed: {exc.message}")
            result = next((r for r in outcome.results if r.skybill_number == skybill.strip()), None)
            report = runtime.flush()  # no runner beside a one-shot command
        finally:
            runtime.close()
        if out is not None and result is not None and result.available:
            try:
                out.write_bytes(result.data)
            except OSError as exc:
                fail(f"cannot write {out}: {exc.strerror or exc}", 2)
        answer = result.meaning if result is not None else "already attached"
        console.print(f"{skybill.strip()}: POD {outcome.label} ({answer})")
        if result is not None and result.available:
            where = f"; saved to {out}" if out is not None else ""
            console.print(
                f"{result.format} file, {len(result.data)} bytes, attached in Salesforce "
                f"({report.sent} write(s)){where}"
            )
        elif out is not None:
            fail(f"no POD file to write to {out}: {outcome.reason or outcome.label}")
