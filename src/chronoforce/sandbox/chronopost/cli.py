"""`chronoforce sandbox chronopost`: run the Chronopost sandbox server from the command line.

Flags mirror the admin API (faults, seed, accounts). It must never print account passwords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chronoforce.sandbox.chronopost.app import SERVICE_PATHS, ChronopostSandbox
from chronoforce.sandbox.chronopost.faults import FAULT_KINDS, FaultConfigError, Faults
from chronoforce.sandbox.server import serve_forever
from chronoforce.sandbox.tls import ensure_tls

app = typer.Typer(help="The Chronopost SOAP sandbox.", invoke_without_command=True)


def _accounts(values: list[str]) -> dict[str, str]:
    accounts = {}
    for value in values:
        number, sep, password = value.partition(":")
        if not sep or not number or not password:
            raise typer.BadParameter(f"expected NUMBER:PASSWORD, got {number}:…")
        accounts[number] = password
    return accounts


@app.callback()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8701,
    db: Annotated[Path | None, typer.Option(help="SQLite file (default: in memory).")] = None,
    tls_dir: Annotated[
        Path | None, typer.Option(help="Serve HTTPS; the throwaway CA is DIR/ca.pem.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of numbers and fault decisions.")] = 0,
    account: Annotated[
        list[str] | None, typer.Option(help="Extra account NUMBER:PASSWORD (repeatable).")
    ] = None,
    latency_ms: Annotated[float, typer.Option(help="Added to every SOAP answer.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Random extra latency, 0..N ms.")] = 0.0,
    fault: Annotated[str | None, typer.Option(help=f"One of {', '.join(FAULT_KINDS)}.")] = None,
    fault_rate: Annotated[float, typer.Option(help="Share of requests hit by --fault.")] = 1.0,
) -> None:
    """Start the Chronopost sandbox (Ctrl-C to stop)."""
    try:
        faults = Faults.from_json(
            {"latency_ms": latency_ms, "jitter_ms": jitter_ms, "kind": fault}
            | {"rate": fault_rate, "seed": seed}
        )
    except FaultConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sandbox = ChronopostSandbox(
        db_path=db or ":memory:", seed=seed, accounts=_accounts(account or []), faults=faults
    )
    tls = ensure_tls(tls_dir) if tls_dir else None
    scheme = "https" if tls else "http"
    typer.echo(f"Chronopost sandbox on {scheme}://{host}:{port}")
    for path in SERVICE_PATHS:
        typer.echo(f"  {path}  (GET {path}?wsdl)")
    typer.echo(
        f"  admin: {scheme}://{host}:{port}/_sandbox/   accounts: {', '.join(sandbox.accounts)}"
    )
    if tls:
        typer.echo(f"  clients must trust {tls.ca_cert}")
    serve_forever(sandbox.app, host, port, tls)
