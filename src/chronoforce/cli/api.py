"""`chronoforce rates | relay-points | pickup | return-label | cancel | api new-client`.

The API's operations from the command line, in-process (the same ApiService the HTTP API uses):
tables for people, `--json` for machines. Refusals end with exit 1 and the record and field;
bad input with exit 2. It never prints a secret except the one `api new-client` just made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from chronoforce.cli.common import JsonOption, console, fail, settings_from
from chronoforce.domain.errors import ChronoforceError
from chronoforce.web.api_config import ALL_SCOPES, new_client_credentials
from chronoforce.web.api_models import ApiError, PickupRequest, RatesRequest, ReturnRequest

api_app = typer.Typer(help="API clients: credentials for Salesforce's Named Credential.")
M = TypeVar("M", bound=BaseModel)


@contextmanager
def _service(ctx: typer.Context) -> Iterator[Any]:
    # Imported here for start-up time: the service loads the Chronopost and Salesforce clients.
    from chronoforce.web.api_service import ApiService

    settings = settings_from(ctx)
    service = ApiService(settings, settings.api)
    try:
        yield service
    finally:
        service.close()


def _run(
    ctx: typer.Context, call: Callable[[Any], M], as_json: bool, show: Callable[[M], None]
) -> None:
    try:
        with _service(ctx) as service:
            answer = call(service)
            service.flush_own_writes()  # no runner beside a one-shot command
    except ApiError as exc:
        _refused(exc.body.code, exc.body.message, exc.body.record_id, exc.body.field)
    except ChronoforceError as exc:
        _refused(exc.code, exc.message, exc.record_id, exc.field)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(mode="json"), indent=2))
    else:
        show(answer)


def _refused(code: str, message: str, record_id: str, field: str) -> None:
    where = ", ".join(
        x
        for x in (f"record {record_id}" if record_id else "", f"field {field}" if field else "")
        if x
    )
    typer.echo(f"{code}: {message}" + (f" ({where})" if where else ""), err=True)
    raise typer.Exit(1)


def _build(model: type[M], **values: Any) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"bad input: {problems}", err=True)
        raise typer.Exit(2) from exc


def _show_rates(answer: Any) -> None:
    table = Table(
        title=f"Chronopost rates to {answer.arrival.country} {answer.arrival.postal_code} "
        f"({answer.parcels} parcel(s))"
    )
    for column in ("product", "name", "excl. VAT", "incl. VAT", "ships", "delivered", "note"):
        table.add_column(column)
    for p in answer.products:
        delivered = f"{p.promised_date or ''} {p.promised_before or ''}".strip()
        table.add_row(
            p.product_code, p.product_name, f"{p.amount_excl_vat:.2f}", f"{p.amount_incl_vat:.2f}",
            str(p.ship_date or ""), delivered, "" if p.eligible else p.note or "not eligible",
        )  # fmt: skip
    console.print(table)
    if answer.chosen is not None:
        console.print(f"routing chooses {answer.chosen.product_code}: {answer.chosen.reason}")
    else:
        console.print(f"routing finds no product: {answer.routing_error}")
    console.print(
        "prices from the rate cache" if answer.cached else f"{answer.carrier_calls} carrier call(s)"
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def rates(
        ctx: typer.Context,
        order_id: Annotated[str | None, typer.Argument(help="A Salesforce order id.")] = None,
        to: Annotated[str | None, typer.Option("--to", help="Destination postal code.")] = None,
        country: Annotated[str, typer.Option(help="Destination country (ISO alpha-2).")] = "FR",
        city: Annotated[str, typer.Option(help="Destination city.")] = "",
        weight: Annotated[
            list[Decimal] | None, typer.Option(help="Parcel weight in kg (repeat per parcel).")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Live Chronopost rates for an order, or for --to POSTAL_CODE --weight KG …"""
        if bool(order_id) == bool(to):
            typer.echo("give ORDER_ID or --to POSTAL_CODE (with --weight), not both", err=True)
            raise typer.Exit(2)
        values: dict[str, Any] = {"order_id": order_id} if order_id else {
            "to": {"postal_code": to, "country": country, "city": city},
            "parcels": [{"weight_kg": w} for w in (weight or [Decimal(1)])],
        }  # fmt: skip
        ask = _build(RatesRequest, **values)
        _run(ctx, lambda s: s.rates(ask), as_json, _show_rates)

    @app.command("relay-points")
    def relay_points(
        ctx: typer.Context,
        postal_code: Annotated[str | None, typer.Option(help="Near this postal code.")] = None,
        country: Annotated[str, typer.Option(help="Country (ISO alpha-2).")] = "FR",
        city: Annotated[str, typer.Option(help="City, to narrow the search.")] = "",
        near_order: Annotated[str | None, typer.Option(help="Near this order's address.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=25)] = 10,
        as_json: JsonOption = False,
    ) -> None:
        """Chronopost relay points near a postal code or an order's shipping address."""
        if not postal_code and not near_order:
            typer.echo("give --postal-code or --near-order", err=True)
            raise typer.Exit(2)

        def show(answer: Any) -> None:
            table = Table(title=f"Relay points near {answer.country} {answer.postal_code}")
            for column in ("id", "name", "address", "distance", "hours"):
                table.add_column(column)
            for p in answer.points:
                a = p.address
                table.add_row(
                    p.id, p.name, f"{a.line1}, {a.postal_code} {a.city}",
                    f"{p.distance_m} m" if p.distance_m is not None else "",
                    "\n".join(p.opening_hours),
                )  # fmt: skip
            console.print(table)

        def call(service: Any) -> Any:
            answer = service.relay_points(postal_code, country, city, near_order, limit)
            if not answer.points:
                near = f" (order {near_order})" if near_order else ""
                fail(f"no relay point near {answer.country} {answer.postal_code}{near}")
            return answer

        _run(ctx, call, as_json, show)

    @app.command()
    def pickup(
        ctx: typer.Context,
        order_id: Annotated[str, typer.Argument(help="The Salesforce order id.")],
        date: Annotated[str, typer.Option(help="Pickup day, YYYY-MM-DD.")],
        ready: Annotated[str, typer.Option(help="Parcels ready from, HH:MM (Paris).")] = "14:00",
        closing: Annotated[str, typer.Option(help="Premises close at, HH:MM (Paris).")] = "18:00",
        instructions: Annotated[str, typer.Option(help="For the driver.")] = "",
        change: Annotated[
            bool, typer.Option(help="Replace the pickup booked that day (cancels it first).")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Book a pickup on demand for the order's parcels (its label carries the pickup);
        one per order and day, unless --change."""
        ask = _build(
            PickupRequest,
            date=date,
            ready_time=ready,
            closing_time=closing,
            instructions=instructions,
            change=change,
        )

        def show(answer: Any) -> None:
            console.print(
                f"pickup {answer.pickup_number} on {answer.pickup_date or date} for "
                f"{', '.join(answer.skybill_numbers)}"
                + (" (label re-made)" if answer.relabeled else "")
            )

        _run(ctx, lambda s: s.book_pickup(order_id, ask), as_json, show)

    @app.command("return-label")
    def return_label(
        ctx: typer.Context,
        order_id: Annotated[str, typer.Argument(help="The Salesforce order id.")],
        case: Annotated[str | None, typer.Option("--case", help="Attach to this Case too.")] = None,
        reference: Annotated[str, typer.Option(help="Returns reference (≤ 15).")] = "",
        as_json: JsonOption = False,
    ) -> None:
        """A return label for the order, attached to the order (and the Case)."""
        ask = _build(ReturnRequest, case_id=case, returns_reference=reference)

        def show(answer: Any) -> None:
            state = "created" if answer.created else "already existed"
            console.print(
                f"return label {', '.join(answer.skybill_numbers)} ({answer.returns_reference}) "
                f"{state}; shipment {answer.shipment_id}"
            )

        _run(ctx, lambda s: s.return_label(order_id, ask), as_json, show)

    @app.command()
    def cancel(
        ctx: typer.Context,
        shipment_id: Annotated[
            int | None, typer.Argument(help="chronoforce's shipment id.", min=1)
        ] = None,
        order: Annotated[str | None, typer.Option(help="Or the Salesforce order id.")] = None,
        returns: Annotated[
            bool, typer.Option("--return", help="With --order: its return.")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Cancel the labels of a shipment not yet picked up (by id, or --order ID)."""
        if (shipment_id is None) == (order is None):
            typer.echo("give SHIPMENT_ID or --order ORDER_ID", err=True)
            raise typer.Exit(2)

        def show(answer: Any) -> None:
            if answer.opens_at is not None:
                console.print(
                    f"shipment {answer.shipment_id}: queued, sent when Chronopost's cancel window "
                    f"opens ({answer.opens_at:%Y-%m-%d %H:%M} UTC) by the running service"
                )
                return
            done = ", ".join(answer.cancelled) or "nothing left to cancel"
            console.print(f"shipment {answer.shipment_id}: {done} ({answer.status})")

        def call(service: Any) -> Any:
            if order is not None:
                return service.cancel_order(order, "return" if returns else "outbound")
            return service.cancel(shipment_id)

        _run(ctx, call, as_json, show)

    app.add_typer(api_app, name="api")


@api_app.command("new-client")
def new_client(
    client_id: Annotated[str, typer.Argument(help="A name for the caller, e.g. salesforce-prod.")],
    as_json: JsonOption = False,
) -> None:
    """Make a client secret and an API key; prints them once, with the hashes for the YAML."""
    made = new_client_credentials()
    if as_json:
        typer.echo(json.dumps({"id": client_id, **made}, indent=2))
        return
    typer.echo(
        f"client id:     {client_id}\nclient secret: {made['client_secret']}\n"
        f"api key:       {made['api_key']}"
    )
    typer.echo("Keep them in Salesforce's External Credential; they are shown only now.\n")
    typer.echo("chronoforce.yaml:\napi:\n  clients:")
    typer.echo(f"    - id: {client_id}\n      scopes: [{', '.join(ALL_SCOPES)}]")
    typer.echo(
        f"      client_hash: '{made['client_hash']}'\n      key_sha256: {made['key_sha256']}"
    )
