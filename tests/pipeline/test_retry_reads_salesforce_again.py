"""Fix it in Salesforce, then retry: a retry prepares from the record as Salesforce has it now.

Through both sandboxes: the Salesforce sandbox is real REST over HTTPS, the Chronopost one real
SOAP over HTTP; the fix is made with a REST update, as a person editing the Order would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chronoforce.pipeline import exceptions
from chronoforce.store.models import ExceptionRow, Shipment
from chronoforce.web.console import actions

GOOD_ADDRESS = {
    "ShippingStreet": "12 rue de la Paix",
    "ShippingCity": "Paris",
    "ShippingPostalCode": "75002",
    "ShippingCountry": "France",
}


def _update(runtime: Any, order_id: str, **fields: Any) -> None:
    results = runtime.salesforce.collection("update", "Order", [{"Id": order_id, **fields}])
    assert all(r.success for r in results), [r.errors for r in results]


def _order(world: dict[str, Any], order_id: str) -> dict[str, Any]:
    return next(o for o in world["org"].records("Order") if o["Id"] == order_id)


def _failed_on_city(world: dict[str, Any]) -> tuple[str, int, ExceptionRow]:
    """A good order whose city is emptied in Salesforce, detected and refused: (id, shipment,
    its open exception)."""
    runtime = world["runtime"]
    order_id = world["seeded"]["Order"][0]
    _update(runtime, order_id, **{**GOOD_ADDRESS, "ShippingCity": None})
    ids = runtime.detect()
    shipment_id = runtime.shipments([order_id])[0].id
    assert shipment_id in ids
    assert runtime.labels.process(shipment_id) == "exception"
    with runtime.store.session() as session:
        row = session.scalars(
            select(ExceptionRow).where(ExceptionRow.shipment_id == shipment_id)
        ).one()
        session.expunge(row)
    assert row.state == "open" and "city" in row.field.lower()
    runtime.flush()
    assert _order(world, order_id)["Chronopost_Label_Status__c"] == "Error"
    return order_id, shipment_id, row


def _labeled(world: dict[str, Any], order_id: str, shipment_id: int) -> None:
    runtime = world["runtime"]
    assert runtime.labels.process(shipment_id) == "labeled"
    runtime.flush()
    order = _order(world, order_id)
    assert order["Chronopost_Label_Status__c"] == "Created"
    assert order["Chronopost_Tracking_Number__c"]
    sent = [p for p in world["carrier"].parcels() if p.shipper_ref == order["OrderNumber"]]
    assert len({p.reservation for p in sent}) == 1  # one label, made from the fixed record
    assert sent[0].label_data["recipient"]["city"].upper() == "PARIS"


def test_exceptions_retry_reads_the_fixed_city_from_salesforce(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    order_id, shipment_id, row = _failed_on_city(sandbox_world)
    _update(runtime, order_id, ShippingCity="Paris")  # fixed in Salesforce, not here
    with runtime.store.session() as session:
        assert exceptions.retry(session, row.id) == shipment_id  # `exceptions retry ID`
    _labeled(sandbox_world, order_id, shipment_id)
    with runtime.store.session() as session:
        assert session.get_one(ExceptionRow, row.id).state == "resolved"
        shipment = session.get_one(Shipment, shipment_id)
        assert shipment.source["record"]["ShippingCity"] == "Paris"
        assert shipment.reread_at is None


def test_the_consoles_retry_reads_the_record_again_too(sandbox_world: dict[str, Any]) -> None:
    runtime = sandbox_world["runtime"]
    order_id, shipment_id, row = _failed_on_city(sandbox_world)
    _update(runtime, order_id, ShippingCity="Paris")
    with runtime.store.session() as session:
        assert actions.retry(session, row.id, "ops@example.com") == shipment_id
    _labeled(sandbox_world, order_id, shipment_id)


def test_setting_the_order_back_to_requested_after_the_fix_labels_it(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    order_id, shipment_id, row = _failed_on_city(sandbox_world)
    _update(runtime, order_id, ShippingCity="Paris", Chronopost_Label_Status__c="Requested")
    assert runtime.detect() == [shipment_id]
    with runtime.store.session() as session:
        assert session.get_one(ExceptionRow, row.id).state == "retrying"
    _labeled(sandbox_world, order_id, shipment_id)
    with runtime.store.session() as session:
        assert session.get_one(ExceptionRow, row.id).state == "resolved"


def test_a_retry_that_fails_otherwise_supersedes_the_retried_exception(
    sandbox_world: dict[str, Any],
) -> None:
    """The city is fixed but the postal code is now wrong: the city's exception is over
    (resolved, naming the new one), not `retrying` forever; the new one is open."""
    runtime = sandbox_world["runtime"]
    order_id, shipment_id, row = _failed_on_city(sandbox_world)
    _update(runtime, order_id, ShippingCity="Paris", ShippingPostalCode="ABC12")
    with runtime.store.session() as session:
        exceptions.retry(session, row.id)
    assert runtime.labels.process(shipment_id) == "exception"
    runtime.flush()
    with runtime.store.session() as session:
        rows = session.scalars(
            select(ExceptionRow).where(ExceptionRow.shipment_id == shipment_id)
        ).all()
        old = next(r for r in rows if r.id == row.id)
        new = next(r for r in rows if r.id != row.id)
        assert old.state == "resolved" and f"superseded by exception {new.id}" in (
            old.resolution_note
        )
        assert new.state == "open" and "postal" in new.field.lower()
    mirrors = {
        e["External_Key__c"]: e
        for e in sandbox_world["org"].records("Chronopost_Integration_Error__c")
    }
    assert mirrors[f"cf-{row.id}"]["State__c"] == "Resolved"
    assert mirrors[f"cf-{new.id}"]["State__c"] == "Open"


def test_a_retried_write_that_goes_through_resolves_its_exception(
    sandbox_world: dict[str, Any],
) -> None:
    """Row locks on every write until the budget is spent: an exception; the org is fine again
    and the operator retries: the write is sent and its exception is not left `retrying`."""
    import datetime as dt

    from chronoforce.pipeline import writeback

    org, runtime = sandbox_world["org"], sandbox_world["runtime"]
    order_id = sandbox_world["seeded"]["Order"][0]
    shipment_id = runtime.shipments([order_id])[0].id if runtime.detect() else 0
    clock = {"now": dt.datetime.now(dt.UTC)}
    runtime.now = lambda: clock["now"]
    with runtime.store.session() as session:
        writeback.enqueue(
            session,
            sf_object="Order",
            operation="update",
            sf_id=order_id,
            shipment_id=shipment_id,
            payload={"Chronopost_Last_Error__c": "written on retry"},
        )
    org.set_faults(lock_row_share=1.0)
    for _ in range(writeback.MAX_ATTEMPTS + 1):
        runtime.flush()
        clock["now"] += dt.timedelta(hours=1)
    with runtime.store.session() as session:
        row = session.scalars(
            select(ExceptionRow).where(ExceptionRow.operation == "writeback:Order")
        ).one()
        exception_id = row.id
    org.set_faults(lock_row_share=0.0)
    with runtime.store.session() as session:
        assert exceptions.retry(session, exception_id) is None  # a write, not a label
    runtime.flush()
    assert _order(sandbox_world, order_id)["Chronopost_Last_Error__c"] == "written on retry"
    with runtime.store.session() as session:
        row = session.get_one(ExceptionRow, exception_id)
        assert row.state == "resolved" and row.resolution_note == "written on retry"


def test_the_consoles_address_fix_holds_when_the_label_is_made_before_the_flush(
    sandbox_world: dict[str, Any],
) -> None:
    """The fix is queued for Salesforce and the retry re-reads the record: the queued write is
    laid over what Salesforce still says, so the label uses the fix."""
    runtime = sandbox_world["runtime"]
    order_id, shipment_id, row = _failed_on_city(sandbox_world)
    with runtime.store.session() as session:
        fixed = actions.fix_address(
            session, row.id, {"ShippingCity": "Lyon", "ShippingPostalCode": "69002"},
            runtime.mapping, "ops@example.com",
        )  # fmt: skip
    assert fixed == shipment_id
    assert not _order(sandbox_world, order_id)["ShippingCity"]  # not flushed yet
    assert runtime.labels.process(shipment_id) == "labeled"
    runtime.flush()
    assert _order(sandbox_world, order_id)["ShippingCity"] == "Lyon"
    sent = [
        p
        for p in sandbox_world["carrier"].parcels()
        if p.shipper_ref == _order(sandbox_world, order_id)["OrderNumber"]
    ]
    assert sent and sent[0].label_data["recipient"]["city"].upper() == "LYON"
