"""`make demo`: the whole story on one machine — both sandboxes, SQLite, sample orders, labels.

Starts the Chronopost and Salesforce sandboxes on loopback, seeds orders (the first ones one of
each showcase case: relay, Saturday, insured, international EU and non-EU; some broken on
purpose), runs the pipeline until nothing is left with a progress bar, makes one return label
through the return use case as the API does, then prints orders → case → product → skybills →
exceptions and where the files are. Log lines go to `<out>/chronoforce.log` (the terminal with
`verbose`), so none interleaves with the table. Touches nothing outside that folder.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select

from chronoforce.cli.common import console, make_console, run_until
from chronoforce.config import ChronopostConfig, SalesforceConfig, Secrets, Settings
from chronoforce.config.sections import LocationsConfig
from chronoforce.domain.errors import ChronoforceError
from chronoforce.domain.routing import EU_COUNTRIES
from chronoforce.domain.shipment_state import ShipmentState
from chronoforce.logs import configure_logging, get_logger
from chronoforce.pipeline.returns import RETURN_INTENT, Returns
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.pipeline.writeback import PDF_FORMATS
from chronoforce.salesforce.mapping import (
    MappingConfig,
    fetch_items,
    items_for,
    map_record,
    soql_for_record,
    soql_for_trigger,
)
from chronoforce.store.models import ExceptionRow, Parcel, Shipment

DOMESTIC = ("FR", "MC")  # what the case column calls international is anything else
SATURDAY_SERVICE = "6"  # Chronopost's service code for Saturday delivery (SPEC-FACTS §2.5)
LOG_FILE = "chronoforce.log"

log = get_logger(component="demo")


def demo_settings(out: Path, chronopost_url: str, salesforce_url: str, ca_file: Path) -> Settings:
    # The sandboxes are imported where they are used, for start-up time: every `chronoforce`
    # command loads this module, only `demo` (and tests) need the servers.
    from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD
    from chronoforce.sandbox.salesforce import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    return Settings(
        database_url=f"sqlite:///{out / 'chronoforce.db'}",
        chronopost=ChronopostConfig(base_url=chronopost_url, account_number=DEMO_ACCOUNT),
        salesforce=SalesforceConfig(
            instance_url=salesforce_url,
            login_url=salesforce_url,
            auth="client_credentials",
            client_id=DEMO_CLIENT_ID,
            ca_file=ca_file,
        ),
        secrets=Secrets(
            chronopost_password=SecretStr(DEMO_PASSWORD),
            sf_client_secret=SecretStr(DEMO_CLIENT_SECRET),
        ),
        source="demo",
    )


# The demo's second warehouse (issue 23): orders naming it in Chronopost_Location__c ship from
# Lyon under its own contract; the rest from the demo shop, the default location.
SECOND_LOCATION = "lyon"
SECOND_ACCOUNT = "20011111"  # the Chronopost sandbox knows it too (run_demo)


def with_locations(settings: Settings) -> Settings:
    """The demo settings with two locations: the demo shop (`paris`, default) and Lyon."""
    shop = settings.chronopost.shipper.model_dump()
    lyon = {
        **shop, "name": "chronoforce demo Lyon", "line1": "10 rue de Gerland",
        "postal_code": "69007", "city": "Lyon", "phone": "0472000000",
        "account_number": SECOND_ACCOUNT,
    }  # fmt: skip
    locations = LocationsConfig.model_validate(
        {"default": "paris", "sites": {"paris": shop, SECOND_LOCATION: lyon}}
    )
    return settings.model_copy(
        update={"mapping": {"location": "Chronopost_Location__c"}, "locations": locations}
    )


@contextmanager
def demo_logging(out: Path, verbose: bool) -> Iterator[None]:
    """Info lines to the terminal (`verbose`) or to `<out>/chronoforce.log` as JSON lines."""
    if verbose:
        configure_logging("info", "console")
        yield
        return
    with (out / LOG_FILE).open("a", encoding="utf-8") as stream:
        configure_logging("info", "json", stream=stream)
        try:
            yield
        finally:
            configure_logging("warning", "console")  # nothing more goes to the closed file


def run_demo(
    out: Path,
    orders: int = 50,
    workers: int = 8,
    max_seconds: float = 100.0,
    *,
    verbose: bool = False,
    order_only: bool = False,
) -> int:
    # Imported here for start-up time (see demo_settings).
    from chronoforce.sandbox.chronopost import DEMO_PASSWORD, ChronopostSandbox
    from chronoforce.sandbox.salesforce import SalesforceSandbox
    from chronoforce.sandbox.server import BackgroundServer
    from chronoforce.sandbox.tls import ensure_tls

    if out.exists():
        shutil.rmtree(out)
    (out / "labels").mkdir(parents=True)
    with demo_logging(out, verbose):
        # order_only: the sandbox's profile of an org without Shipment (issue 19).
        org = SalesforceSandbox(db_path=out / "salesforce-sandbox.db", order_only=order_only)
        org.seed(orders=orders, seed=7, showcase=True, location=SECOND_LOCATION)
        tls = ensure_tls(out / "tls")
        carrier = ChronopostSandbox(
            db_path=out / "chronopost-sandbox.db", accounts={SECOND_ACCOUNT: DEMO_PASSWORD}
        )
        # log_config None: uvicorn's own lines go through our logging (the file), not stderr.
        servers = {"timeout_graceful_shutdown": 1, "log_config": None}
        cp = BackgroundServer(carrier.app, options=servers).start()
        sf = BackgroundServer(org.app, tls=tls, options=servers).start()
        profile = " (Order-only org)" if order_only else ""
        console.print(
            f"Chronopost sandbox {cp.url} · Salesforce sandbox {sf.url}{profile} · {orders} orders",
            soft_wrap=True,
        )
        started = time.monotonic()
        runtime = build_runtime(
            with_locations(demo_settings(out, cp.url, sf.url, tls.ca_cert)), cluster=True
        )
        try:
            book_precise(runtime)  # one order delivered on a Chrono Precise slot (issue 23)
            with progress_bar(runtime, orders, verbose):
                run_until(runtime, workers=workers, until_idle=True, max_seconds=max_seconds)
            make_return(runtime, shipped_labels(carrier))
            runtime.flush()  # the return's numbers and label file reach Salesforce
            elapsed = time.monotonic() - started
            rows = summarize(runtime, out / "labels", shipped_labels(carrier))
        finally:
            runtime.close()
            sf.stop()
            cp.stop()
    print_table(rows, org, elapsed, runtime.salesforce.api_calls())
    print_paths(out, verbose)
    return 0


def counts(runtime: Any) -> tuple[int, int]:
    """(outbound orders labeled, open exceptions) in the store now."""
    with runtime.store.session() as session:
        labeled = session.scalar(
            select(func.count())
            .select_from(Shipment)
            .where(Shipment.state == ShipmentState.LABELED, Shipment.intent != RETURN_INTENT)
        )
        problems = session.scalar(
            select(func.count()).select_from(ExceptionRow).where(ExceptionRow.state == "open")
        )
    return int(labeled or 0), int(problems or 0)


@contextmanager
def progress_bar(runtime: Any, orders: int, verbose: bool) -> Iterator[None]:
    """A bar of the orders done (labeled or exception), read from the store while labels are
    made; off a terminal rich prints only its last state."""
    progress = Progress(
        TextColumn("labels made {task.fields[made]}/{task.total:.0f}"),
        BarColumn(),
        TextColumn("exceptions {task.fields[problems]}"),
        TimeElapsedColumn(),
        console=make_console(),
        disable=verbose,  # log lines on the terminal would tear a live bar
    )
    task = progress.add_task("labels", total=orders, made=0, problems=0)
    done = threading.Event()

    def update() -> None:
        made, problems = counts(runtime)
        progress.update(task, completed=made + problems, made=made, problems=problems)

    def poll() -> None:
        while not done.wait(0.2):
            update()

    poller = threading.Thread(target=poll, name="cf-demo-progress", daemon=True)
    with progress:
        poller.start()
        try:
            yield
        finally:
            done.set()
            poller.join(timeout=5)
            update()


def read_order(runtime: Any, sf_id: str) -> tuple[dict[str, Any], list[Any], Any]:
    """The order as the API reads it for a return: the trigger's SELECT on one Id."""
    mapping = runtime.mapping
    records = list(runtime.salesforce.query_iter(soql_for_record(mapping, sf_id)))
    by_order = fetch_items(runtime.salesforce.query_iter, mapping, records)
    record = plain(records[0])
    items = [plain(i) for i in items_for(records[0], mapping, by_order)]
    return record, items, map_record(record, items, mapping)


def plain(record: Any) -> Any:
    """A Salesforce record as plain JSON data, as the API stores it (no `attributes`)."""
    if isinstance(record, dict):
        return {k: plain(v) for k, v in record.items() if k != "attributes"}
    if isinstance(record, list):
        return [plain(v) for v in record]
    return record


def book_precise(runtime: Any) -> None:
    """One Chrono Precise delivery (issue 23): the first plain home order in France (no relay
    point, no Saturday, not insured, inside the sandbox's Precise zone) gets a slot searched and
    confirmed before its label, as `POST /api/v1/orders/{id}/slot` does; its label then carries
    the slot. A refusal is logged; the order ships as usual."""
    from chronoforce.domain.address import require_sendable
    from chronoforce.pipeline.precise import Precise
    from chronoforce.pipeline.runtime import shipper_party

    soql = soql_for_trigger(runtime.mapping)
    for record in list(runtime.salesforce.query_iter(soql))[:30]:
        try:
            # The page already holds what the choice needs; only the one chosen is read again
            # with its items (one API call per order looked at would cost the demo's budget).
            order = map_record(dict(record), [], runtime.mapping)
            address = require_sendable(order.recipient, "recipient").address
        except (ChronoforceError, IndexError, KeyError):
            continue
        plain_home = not (order.relay_point_id or order.saturday or order.insured_value)
        if address.country != "FR" or not plain_home or order.product_override:
            continue
        if address.postal_code.startswith(("20", "48", "97", "98")):
            continue
        try:
            raw, _items, order = read_order(runtime, str(record["Id"]))
            [shipment_id] = runtime.record([raw], None)
            precise = Precise(
                runtime.store, runtime.carrier, runtime.labels.gates,
                shipper_party(runtime.settings), runtime.now, runtime.mapping,
                runtime.locations,
            )  # fmt: skip
            offer = precise.offer(shipment_id)
            chosen = next(s for s in offer.slots if s.open)
            precise.confirm(shipment_id, chosen.date, chosen.code)
            log.info("demo precise slot", sf_id=order.sf_id, date=str(chosen.date))
        except (ChronoforceError, StopIteration, ValueError) as exc:
            log.warning("demo precise slot failed", sf_id=order.sf_id, error=str(exc)[:300])
        return


def shipped_labels(carrier: Any) -> dict[str, dict[str, Any]]:
    """Each label as the Chronopost sandbox made it, by skybill number (product, service,
    relay point, money, recipient)."""
    return {parcel.skybill: parcel.label_data for parcel in carrier.parcels()}


def make_return(runtime: Any, shipped: dict[str, dict[str, Any]]) -> None:
    """One return label, for the first plain domestic order labeled (the Returns use case)."""
    with runtime.store.session() as session:
        labeled = session.scalars(
            select(Shipment)
            .where(Shipment.state == ShipmentState.LABELED, Shipment.intent != RETURN_INTENT)
            .order_by(Shipment.order_number)
        ).all()
        cases = {
            s.sf_id: case_of(s, [shipped[p.skybill_number] for p in s.parcels], runtime.mapping)
            for s in labeled
        }
        # A plain order; else the Precise one (a slot is no reason not to return the parcel).
        chosen = next((i for i, c in cases.items() if not c), None) or next(
            (i for i, c in cases.items() if c.startswith("Precise")), None
        )
    if chosen is None:
        return
    try:
        record, items, order = read_order(runtime, chosen)
        made = Returns(runtime.store, runtime.labels, runtime.now).ask(order, record, items)
        log.info("demo return label", sf_id=made.sf_id, skybills=made.skybill_numbers)
    except ChronoforceError as exc:  # the row stays, as an exception the table shows
        log.warning("demo return label failed", sf_id=chosen, error=str(exc)[:300])


def case_of(shipment: Shipment, shipped: list[dict[str, Any]], mapping: MappingConfig) -> str:
    """What was shipped, from the labels as Chronopost made them (`shipped`, the carrier
    sandbox's record of each parcel): return, relay point, Saturday, insured, abroad."""
    if shipment.intent == RETURN_INTENT:
        return "return"
    if not shipped:
        return ""
    label = shipped[0]
    words = []
    if label.get("id_relais"):
        words.append(f"relay {label['id_relais']}")
    if label.get("slot_start"):  # Chrono Precise (issue 23)
        words.append(f"Precise {label['slot_start']}-{label['slot_end']} {label['slot_level']}")
    if label.get("service") == SATURDAY_SERVICE:
        words.append("Saturday")
    elif asked_saturday(shipment, mapping):  # routing declined it: the reason says why
        words.append("Saturday asked, not used")
    if label.get("insured_cents"):
        words.append(f"insured {label['insured_cents'] / 100:.2f} EUR")
    country = str((label.get("recipient") or {}).get("country") or "")
    if country and country not in DOMESTIC:
        words.append(f"international {country} ({'EU' if country in EU_COUNTRIES else 'non-EU'})")
    return ", ".join(words)


def asked_saturday(shipment: Shipment, mapping: MappingConfig) -> bool:
    source = shipment.source or {}
    try:
        order = map_record(source.get("record") or {}, source.get("items") or [], mapping)
    except (ChronoforceError, TypeError, ValueError):
        return False
    return order.saturday


def summarize(
    runtime: Any, label_dir: Path, shipped: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    with runtime.store.session() as session:
        shipments = session.scalars(select(Shipment).order_by(Shipment.order_number, Shipment.id))
        for shipment in shipments:
            parcels = session.scalars(
                select(Parcel).where(Parcel.shipment_id == shipment.id, Parcel.live)
            ).all()
            for parcel in parcels:
                suffix = "pdf" if parcel.label_format in PDF_FORMATS else "zpl"
                (label_dir / f"{parcel.skybill_number}.{suffix}").write_bytes(
                    parcel.label_bytes or b""
                )
            problem = session.scalar(
                select(ExceptionRow).where(
                    ExceptionRow.shipment_id == shipment.id, ExceptionRow.state == "open"
                )
            )
            rows.append(
                {
                    "order": shipment.order_number,
                    "case": case_of(
                        shipment, [shipped[p.skybill_number] for p in parcels], runtime.mapping
                    ),
                    "return": shipment.intent == RETURN_INTENT,
                    "product": shipment.product_code,
                    "skybills": " ".join(p.skybill_number for p in parcels),
                    "exception": f"{problem.code} ({problem.field})" if problem else "",
                    "location": shipment.location,  # issue 23
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]], org: Any, elapsed: float, api_calls: int) -> None:
    table = Table(title="chronoforce demo: orders → labels")
    for column in ("order", "case", "product", "skybill numbers", "exception", "location"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["order"], row["case"], row["product"], row["skybills"], row["exception"],
            row["location"],
        )  # fmt: skip
    console.print(table)
    files = len(org.records("ContentVersion"))
    labeled = sum(1 for r in rows if r["skybills"] and not r["return"])
    returns = sum(1 for r in rows if r["skybills"] and r["return"])
    console.print(
        f"{labeled} labeled, {returns} return label, "
        f"{sum(1 for r in rows if r['exception'])} exceptions, "
        f"{files} label files in Salesforce, {elapsed:.1f} s; Salesforce API calls: {api_calls}",
        soft_wrap=True,
    )


def print_paths(out: Path, verbose: bool) -> None:
    """Where the files are, each path whole on its line (soft wrap: never cut to fit)."""
    where = out.resolve()
    console.print(f"labels:   {where / 'labels'}", soft_wrap=True)
    console.print(f"database: {where / 'chronoforce.db'} (SQLite)", soft_wrap=True)
    if not verbose:
        console.print(f"log:      {where / LOG_FILE}", soft_wrap=True)
