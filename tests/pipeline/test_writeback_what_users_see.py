"""What people see in Salesforce after a relabel, a re-request, a multi-parcel label.

Read back from the Salesforce sandbox (real REST over HTTPS), labels made at the Chronopost one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chronoforce.pipeline import writeback
from chronoforce.store.models import Parcel, Shipment


def _update(runtime: Any, sobject: str, record_id: str, **fields: Any) -> None:
    results = runtime.salesforce.collection("update", sobject, [{"Id": record_id, **fields}])
    assert all(r.success for r in results), [r.errors for r in results]


def _record(world: dict[str, Any], sobject: str, record_id: str) -> dict[str, Any]:
    return next(r for r in world["org"].records(sobject) if r["Id"] == record_id)


def _live(world: dict[str, Any], sobject: str) -> list[dict[str, Any]]:
    return [r for r in world["org"].records(sobject) if not r.get("IsDeleted")]


def _label_all(world: dict[str, Any]) -> None:
    runtime = world["runtime"]
    for shipment_id in runtime.detect():
        runtime.labels.process(shipment_id)
    runtime.flush()


def _order_with_shipment(world: dict[str, Any]) -> tuple[str, str]:
    """A seeded order that has a Shipment record linked (Order__c): (order id, shipment id)."""
    shipments = world["org"].records("Shipment")
    linked = next(s for s in shipments if s.get("Order__c"))
    return linked["Order__c"], linked["Id"]


def _documents_on(world: dict[str, Any], record_id: str) -> set[str]:
    return {
        link["ContentDocumentId"]
        for link in _live(world, "ContentDocumentLink")
        if link["LinkedEntityId"] == record_id
    }


def test_a_voided_labels_file_leaves_the_order_and_the_shipment(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    order_id, shipment_record = _order_with_shipment(sandbox_world)
    _label_all(sandbox_world)
    first = _documents_on(sandbox_world, order_id)
    assert len(first) == 1 and _documents_on(sandbox_world, shipment_record) == first
    _update(
        runtime,
        "Order",
        order_id,
        ShippingStreet="12 rue de la Paix",
        ShippingCity="Paris",
        ShippingPostalCode="75002",
        ShippingCountry="France",
        Chronopost_Label_Status__c="Requested",
    )
    _label_all(sandbox_world)  # the changed order: old label voided, a new one made
    shipment = runtime.shipments([order_id])[0]
    assert shipment.state == "labeled" and shipment.generation == 2
    now = _documents_on(sandbox_world, order_id)
    assert len(now) == 1 and now != first, "only the new label is attached to the Order"
    assert _documents_on(sandbox_world, shipment_record) == now
    versions = {v["ContentDocumentId"]: v for v in _live(sandbox_world, "ContentVersion")}
    assert versions[next(iter(now))]["Chronoforce_Key__c"] == f"file:{shipment.id}:2"
    # Unlinked, not deleted: the voided label stays in the integration user's files.
    assert versions[next(iter(first))]["Chronoforce_Key__c"] == f"file:{shipment.id}:1"


def test_an_unchanged_order_set_to_requested_again_says_created(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    order_id = sandbox_world["seeded"]["Order"][0]
    _update(runtime, "Order", order_id, ShippingStreet="12 rue de la Paix", ShippingCity="Paris",
            ShippingPostalCode="75002", ShippingCountry="France")  # fmt: skip
    _label_all(sandbox_world)
    assert _record(sandbox_world, "Order", order_id)["Chronopost_Label_Status__c"] == "Created"
    live = sandbox_world["carrier"].live_labels()
    _update(runtime, "Order", order_id, Chronopost_Label_Status__c="Requested")
    _label_all(sandbox_world)
    assert _record(sandbox_world, "Order", order_id)["Chronopost_Label_Status__c"] == "Created"
    assert sandbox_world["carrier"].live_labels() == live, "the label stands, none made"
    # A second re-request is answered too (once per version of the record, not once ever).
    _update(runtime, "Order", order_id, Chronopost_Label_Status__c="Requested")
    _label_all(sandbox_world)
    assert _record(sandbox_world, "Order", order_id)["Chronopost_Label_Status__c"] == "Created"


def test_a_multi_parcel_shipments_tracking_number_names_every_parcel(
    sandbox_world: dict[str, Any],
) -> None:
    runtime = sandbox_world["runtime"]
    order_id, shipment_record = _order_with_shipment(sandbox_world)
    _update(runtime, "Order", order_id, ShippingStreet="12 rue de la Paix", ShippingCity="Paris",
            ShippingPostalCode="75002", ShippingCountry="France", Chronopost_Weight_Kg__c=65,
            Chronopost_Parcel_Count__c=None)  # fmt: skip
    _label_all(sandbox_world)
    shipment = runtime.shipments([order_id])[0]
    with runtime.store.session() as session:
        numbers = list(
            session.scalars(
                select(Parcel.skybill_number)
                .where(Parcel.shipment_id == shipment.id, Parcel.live)
                .order_by(Parcel.position)
            )
        )
        assert session.get_one(Shipment, shipment.id).state == "labeled"
    assert len(numbers) >= 3
    record = _record(sandbox_world, "Shipment", shipment_record)
    assert record["TrackingNumber"] == ",".join(numbers)
    assert all(n in record["TrackingUrl"] for n in numbers)
    assert record["Chronopost_Skybill_Numbers__c"] == ",".join(numbers)


def test_tracking_fields_keep_within_their_lengths_without_cutting_a_number() -> None:
    numbers = [f"XY{i:09d}FR" for i in range(40)]  # 13 characters each
    text = writeback.tracking_number(numbers)
    assert len(text) <= writeback.TEXT_LIMIT
    shown, _, rest = text.partition(" +")
    assert all(n in numbers for n in shown.split(","))
    assert len(shown.split(",")) + int(rest) == 40
    url = writeback.tracking_url(numbers)
    assert len(url) <= writeback.URL_LIMIT
    assert all(n in numbers for n in url.split("=")[1].split(","))
    assert writeback.tracking_number(numbers[:3]) == ",".join(numbers[:3])
