"""`chronoforce web`: the HTTP app alone (`run` serves it beside the pipeline).

Its help lists every route group the app serves (tests/cli/test_output.py checks it against the
app's routes). It never prints a secret.
"""

from __future__ import annotations

from typing import Annotated

import typer

from chronoforce.cli.common import settings_from


def web(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Default: web.host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Default: web.port (8700).")] = None,
) -> None:
    """Serve the HTTP app alone (`run` serves it beside the pipeline). Route groups:

    /health (liveness) and /ready (database, migrations, queue)
    /webhooks/chronopost/tracking: signed tracking pushes (docs/webhooks.md)
    /api/v1 for Salesforce (docs/api.md): /rates, /relay-points, /oauth/token,
    /orders/ID/rate, /orders/ID/pickup, /orders/ID/return-label,
    /orders/ID/cancel, /cases/ID/return-label, /shipments/ID/cancel,
    /orders/ID/label, /orders/ID/label/reprint, /orders/ID/address-review,
    /orders/ID/address (the record page's actions), /shipments/ID/reprint,
    /manifests, /manifests/ID.pdf; Chrono Precise slots (docs/precise.md):
    /orders/ID/slots, /orders/ID/slot, /shipments/ID/slots, /shipments/ID/rebook,
    /cases/ID/slots, /cases/ID/rebook
    the console (docs/console.md): / (overview), /login, /logout, /shipments,
    /exceptions (retry, resolve, fix-address), /parcels/ID/label (and a
    shipment's Re-print label button), /manifests (slips)
    /metrics: Prometheus, with the bearer token
    /docs, /redoc, /openapi.json: the API's OpenAPI description
    """
    # Imported here for start-up time: FastAPI and uvicorn load only when `web` serves.
    import uvicorn

    from chronoforce.web.app import create_app

    settings = settings_from(ctx)
    uvicorn.run(
        create_app(settings),
        host=host or settings.web.host,
        port=port or settings.web.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=1,  # an idle keep-alive connection must not hold a stop
    )


def register(app: typer.Typer) -> None:
    """Add `web` to the root app."""
    app.command("web")(web)
