"""`chronoforce sandbox salesforce`: run the Salesforce sandbox, and seed / inspect / reset one.

The subcommands talk to a running sandbox's loopback admin endpoint (`--url`, trusting the
sandbox CA) or open its SQLite file (`--db`). It never prints tokens or passwords.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from chronoforce.sandbox.server import serve_forever
from chronoforce.sandbox.tls import DEFAULT_TLS_DIR, ensure_tls

app = typer.Typer(help="The Salesforce REST sandbox (HTTPS only).", invoke_without_command=True)

DEFAULT_PORT = 8702
UrlOption = Annotated[
    str | None, typer.Option(help="A running sandbox, e.g. https://localhost:8702.")
]
DbOption = Annotated[Path | None, typer.Option(help="Work on this SQLite file instead.")]
TlsOption = Annotated[Path, typer.Option(help="Where the sandbox CA (ca.pem) lives.")]


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT_PORT,
    tls_dir: Annotated[
        Path, typer.Option(help="CA and certificate folder; clients trust DIR/ca.pem.")
    ] = DEFAULT_TLS_DIR,
    db: Annotated[Path | None, typer.Option(help="SQLite file (default: in memory).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
    daily_api_limit: Annotated[int, typer.Option(help="Daily API request budget.")] = 100_000,
    grpc_port: Annotated[
        int | None, typer.Option(help="Also serve the Pub/Sub API (gRPC, TLS) on this port.")
    ] = None,
    order_only: Annotated[
        bool,
        typer.Option(
            "--order-only", help="An org without Shipment (no Order Management / Field Service)."
        ),
    ] = False,
) -> None:
    """Start the Salesforce sandbox over HTTPS (Ctrl-C to stop)."""
    if ctx.invoked_subcommand is not None:
        return
    from chronoforce.sandbox.salesforce import (
        DEMO_CLIENT_ID,
        DEMO_USERNAME,
        SalesforceSandbox,
    )

    sandbox = SalesforceSandbox(
        db_path=db or ":memory:", daily_api_limit=daily_api_limit, seed=seed, order_only=order_only
    )
    tls = ensure_tls(tls_dir)
    base = f"https://{'localhost' if host == '127.0.0.1' else host}:{port}"
    shape = "Order-only, no Shipment" if order_only else "with Shipment / Order Management"
    typer.echo(f"Salesforce sandbox on {base}  (org {sandbox.org_id}, {shape})")
    typer.echo(f"  REST: {base}/services/data/v61.0/   token: POST {base}/services/oauth2/token")
    typer.echo(f"  demo connected app: client_id {DEMO_CLIENT_ID}, user {DEMO_USERNAME}")
    typer.echo(f"  admin: {base}/_sandbox/ (loopback only)   clients must trust {tls.ca_cert}")
    pubsub = None
    if grpc_port is not None:
        from chronoforce.sandbox.salesforce.pubsub import PubSubServer

        pubsub = PubSubServer(sandbox, host, grpc_port, tls).start()
        typer.echo(f"  Pub/Sub API (gRPC): {pubsub.target}   topics /data/<Object>ChangeEvent")
    try:
        serve_forever(sandbox.app, host, port, tls)
    finally:
        if pubsub is not None:
            pubsub.stop()


def _admin(url: str, tls_dir: Path, method: str, path: str, body: Any = None) -> Any:
    ca = tls_dir / "ca.pem"
    if not ca.exists():
        raise typer.BadParameter(f"{ca} not found: pass --tls-dir of the running sandbox")
    try:
        response = httpx.request(
            method,
            url.rstrip("/") + path,
            json=body,
            verify=ssl.create_default_context(cafile=str(ca)),
            timeout=600,
        )
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach {url}: {exc}") from exc
    if response.status_code >= 400:
        typer.echo(response.text, err=True)
        raise typer.Exit(1)
    return response.json()


def _local(db: Path) -> Any:
    from chronoforce.sandbox.salesforce import SalesforceSandbox

    return SalesforceSandbox(db_path=db)


def _target(url: str | None, db: Path | None) -> tuple[str | None, Path | None]:
    if (url is None) == (db is None):
        raise typer.BadParameter("give exactly one of --url or --db")
    return url, db


@app.command("seed")
def seed_command(
    orders: Annotated[int, typer.Option(help="How many orders to create.")] = 500,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 0,
    url: UrlOption = None,
    db: DbOption = None,
    tls_dir: TlsOption = DEFAULT_TLS_DIR,
) -> None:
    """Create accounts, contacts, products, orders (with items) and shipments."""
    url, db = _target(url, db)
    if url is not None:
        created = _admin(url, tls_dir, "POST", "/_sandbox/seed", {"orders": orders, "seed": seed})
        counts = created["created"]
    else:
        assert db is not None
        counts = {k: len(v) for k, v in _local(db).seed(orders=orders, seed=seed).items()}
    typer.echo(json.dumps(counts))


@app.command("inspect")
def inspect_command(
    url: UrlOption = None,
    db: DbOption = None,
    tls_dir: TlsOption = DEFAULT_TLS_DIR,
    sobject: Annotated[str | None, typer.Option(help="Print this object's records.")] = None,
) -> None:
    """Print record counts, API usage, faults and request stats (or one object's records)."""
    url, db = _target(url, db)
    if url is not None:
        path = f"/_sandbox/records/{sobject}" if sobject else "/_sandbox/summary"
        result = _admin(url, tls_dir, "GET", path)
    else:
        assert db is not None
        local = _local(db)
        result = local.records(sobject) if sobject else local.summary()
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@app.command("reset")
def reset_command(
    url: UrlOption = None, db: DbOption = None, tls_dir: TlsOption = DEFAULT_TLS_DIR
) -> None:
    """Delete every record and change event (users are recreated)."""
    url, db = _target(url, db)
    if url is not None:
        _admin(url, tls_dir, "POST", "/_sandbox/reset")
    else:
        assert db is not None
        _local(db).reset()
    typer.echo("reset")
