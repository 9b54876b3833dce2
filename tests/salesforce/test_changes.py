"""Delta reads on SystemModstamp against the sandbox org: each change once, overlap deduped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chronoforce.domain.errors import MappingError
from chronoforce.salesforce.changes import DeltaReader
from chronoforce.salesforce.mapping import MappedOrder, MappingConfig, map_records


def _ids(pages):
    return [c.sf_id for page in pages for c in page.changes]


def _drain(reader, watermark):
    pages = list(reader.read(watermark))
    mark = pages[-1].watermark if pages else watermark
    return _ids(pages), mark


def test_first_read_returns_every_order_to_ship_in_pages_of_200(client, orders):
    ids = orders(client, 450)
    orders(client, 5, Chronopost_Ship__c=False)  # not asked to ship: never read
    pages = list(DeltaReader(client, MappingConfig()).read(None))
    assert [len(p.changes) for p in pages] == [200, 200, 50]
    assert sorted(_ids(pages)) == sorted(ids)
    assert pages[-1].watermark is not None
    assert [p.watermark for p in pages] == sorted(p.watermark for p in pages)


def test_a_changed_record_appears_once_and_the_overlap_repeats_nothing(client, orders):
    ids = orders(client, 5)
    reader = DeltaReader(client, MappingConfig(), overlap=dt.timedelta(seconds=60))
    first, mark = _drain(reader, None)
    assert sorted(first) == sorted(ids)
    again, mark_again = _drain(reader, mark)  # the overlap window covers all five: deduped
    assert again == [] and mark_again == mark
    client.collection("update", "Order", [{"Id": ids[2], "Chronopost_Weight_Kg__c": 3}])
    changed, newer = _drain(reader, mark)
    assert changed == [ids[2]] and newer > mark
    assert _drain(reader, newer)[0] == []


def test_a_restarted_reader_redelivers_only_records_inside_the_overlap_window(client, orders):
    ids = orders(client, 3)
    _, mark = _drain(DeltaReader(client, MappingConfig()), None)
    # No overlap: only records stamped exactly at the watermark come back after a restart.
    again, _ = _drain(DeltaReader(client, MappingConfig(), overlap=dt.timedelta(0)), mark)
    newest = {
        r["Id"] for r in client.query_iter(f"SELECT Id FROM Order WHERE SystemModstamp = {mark}")
    }
    assert set(again) == newest and newest <= set(ids)


def test_full_scan_streams_orders_changed_since_a_date(client, orders):
    ids = orders(client, 3)
    reader = DeltaReader(client, MappingConfig())
    assert sorted(_ids(reader.full_scan(dt.date(2000, 1, 1)))) == sorted(ids)
    assert _ids(DeltaReader(client, MappingConfig()).full_scan(dt.date(2999, 1, 1))) == []


def test_pages_map_to_orders_with_items_fetched_in_one_query(client, orders):
    ids = orders(client, 3, Chronopost_Weight_Kg__c=None)
    (product,) = client.collection(
        "create", "Product2", [{"Name": "Baguette", "Chronopost_Weight_Kg__c": 0.25}]
    )
    items = [
        {"OrderId": i, "Product2Id": product.id, "Quantity": 4, "UnitPrice": 1} for i in ids[:2]
    ]
    assert all(r.success for r in client.collection("create", "OrderItem", items))
    before = client.calls().get("query", 0)
    (page,) = list(DeltaReader(client, MappingConfig()).read(None))
    mapped = list(map_records(page.records, client.query_iter, MappingConfig()))
    assert client.calls()["query"] - before == 2  # the orders, then their items
    good = {m.sf_id: m for m in mapped if isinstance(m, MappedOrder)}
    assert {good[i].parcels[0].weight_kg for i in ids[:2]} == {Decimal("1")}
    (bad,) = [m for m in mapped if isinstance(m, MappingError)]
    assert (bad.record_id, bad.field) == (ids[2], "Chronopost_Weight_Kg__c")


def test_seeded_orders_all_map_and_broken_addresses_pass_through_unchanged(org, client):
    seeded = org.sandbox.seed(orders=60, seed=7)
    mapping = MappingConfig()
    pages = list(DeltaReader(client, mapping).read(None))
    records = {r["Id"]: r for p in pages for r in p.records}
    mapped = [m for p in pages for m in map_records(p.records, client.query_iter, mapping)]
    assert not [m for m in mapped if isinstance(m, MappingError)]
    assert sorted(m.sf_id for m in mapped) == sorted(seeded["Order"])
    for m in mapped:
        raw, address = records[m.sf_id], m.recipient.address
        assert (address.postal_code, address.city, address.country) == (
            raw["ShippingPostalCode"] or "",
            raw["ShippingCity"] or "",
            raw["ShippingCountry"] or "",
        )
        assert m.recipient.contact.phone == (raw["ShipToContact"]["Phone"] or "")
    assert any(not m.recipient.contact.phone for m in mapped)  # the seed's missing phones


def test_seeded_shipments_map_through_the_shipment_preset(org, client):
    seeded = org.sandbox.seed(orders=30, seed=3)
    mapping = MappingConfig.from_settings({"trigger_object": "Shipment"})
    (page,) = list(DeltaReader(client, mapping).read(None))
    mapped = list(map_records(page.records, client.query_iter, mapping))
    assert sorted(m.sf_id for m in mapped) == sorted(seeded["Shipment"])
    assert all(isinstance(m, MappedOrder) and m.order_number and m.parcels for m in mapped)
