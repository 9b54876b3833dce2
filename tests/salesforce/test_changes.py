"""Delta reads on SystemModstamp against the sandbox org: each change once, overlap deduped."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from chronoforce.domain.errors import MappingError
from chronoforce.salesforce.changes import DeltaReader, parse_modstamp
from chronoforce.salesforce.mapping import MappedOrder, MappingConfig, map_records
from chronoforce.salesforce.soql import soql_datetime


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


def test_the_overlap_window_is_read_again_only_every_overlap_every(client, orders):
    """Each read starts at the watermark; one every `overlap_every` looks back `overlap` for
    rows committed late, so waiting orders are not downloaded again on every read."""
    orders(client, 3)
    queries: list[str] = []

    class Recording:
        def query_iter(self, soql):
            queries.append(soql)
            return client.query_iter(soql)

    now = [0.0]
    reader = DeltaReader(
        Recording(),
        MappingConfig(),
        overlap=dt.timedelta(seconds=60),
        overlap_every=dt.timedelta(seconds=30),
        clock=lambda: now[0],
    )
    _, mark = _drain(reader, None)
    for at in (1.0, 10.0, 31.5, 40.0):
        now[0] = at
        assert _drain(reader, mark)[0] == []  # nothing new, nothing repeated
    back = soql_datetime(parse_modstamp(mark) - dt.timedelta(seconds=60))
    starts = [q.split("SystemModstamp ")[1].split(" ORDER")[0] for q in queries[1:]]
    # After a read it finished, it starts strictly after the watermark: the orders made with
    # the same stamp were all delivered, and are not downloaded again while they wait.
    assert starts == [f">= {back}", f"> {mark}", f">= {back}", f"> {mark}"]


def test_full_scan_streams_orders_changed_since_a_date(client, orders):
    ids = orders(client, 3)
    reader = DeltaReader(client, MappingConfig())
    assert sorted(_ids(reader.full_scan(dt.date(2000, 1, 1)))) == sorted(ids)
    assert reader._seen == {}  # a scan of 200,000 orders must not remember each one (RSS)
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
