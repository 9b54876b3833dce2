"""Field mapping: presets match the metadata package, records become domain objects, errors name
the record and the field, and the SOQL is built only from checked names."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from chronoforce.domain.errors import MappingError
from chronoforce.domain.models import Civility
from chronoforce.salesforce.mapping import (
    MappingConfig,
    fetch_items,
    map_record,
    selected_fields,
    soql_for_trigger,
    split_weight,
)

REPO = Path(__file__).resolve().parents[2]
ORDER_ID = "801000000000001AAA"


def order(**over):
    record = {
        "attributes": {"type": "Order"},
        "Id": ORDER_ID,
        "SystemModstamp": "2024-05-01T10:00:00.000+0000",
        "OrderNumber": "00000101",
        "AccountId": "001000000000001AAA",
        "Account": {
            "Name": "Boulangerie Dupont",
            "AccountNumber": "CUST-9",
            "Type": "Customer - Direct",
        },
        "ShipToContact": {
            "Name": "Marie Curie",
            "Salutation": "Ms.",
            "Phone": "0145000001",
            "MobilePhone": "0612345678",
            "Email": "marie@example.com",
        },
        "ShippingStreet": "12 rue de la Paix\nBâtiment B\n3e étage",
        "ShippingPostalCode": "75002",
        "ShippingCity": "Paris",
        "ShippingCountry": "France",
        "ShippingState": None,
        "Chronopost_Weight_Kg__c": 2.5,
        "Chronopost_Parcel_Count__c": None,
        "Chronopost_Product__c": None,
        "Chronopost_Relay_Point_Id__c": None,
        "Chronopost_Saturday_Delivery__c": False,
        "Chronopost_Returns_Reference__c": "RET-1",
        "Chronopost_Priority__c": True,
        "TotalAmount": 129.9,
    }
    record.update(over)
    return record


def item(quantity, weight, item_id="802000000000001AAA"):
    return {
        "Id": item_id,
        "OrderId": ORDER_ID,
        "Quantity": quantity,
        "Product2": {"Chronopost_Weight_Kg__c": weight},
    }


def test_default_mapping_reads_an_order_into_recipient_parcels_and_references():
    mapped = map_record(order(), [], MappingConfig())
    address = mapped.recipient.address
    assert (mapped.sf_object, mapped.sf_id, mapped.order_number) == ("Order", ORDER_ID, "00000101")
    assert (address.name, address.name2) == ("Boulangerie Dupont", "Marie Curie")
    assert (address.line1, address.line2) == ("12 rue de la Paix", "Bâtiment B 3e étage")
    assert (address.postal_code, address.city, address.country) == ("75002", "Paris", "France")
    contact = mapped.recipient.contact
    assert (contact.civility, contact.mobile, contact.email) == (
        Civility.MADAME,
        "0612345678",
        "marie@example.com",
    )
    assert [p.weight_kg for p in mapped.parcels] == [Decimal("2.5")]
    assert mapped.references.customer_id == "CUST-9"
    assert mapped.references.returns_reference == "RET-1"
    assert mapped.facts == {
        "order_value": Decimal("129.9"),
        "priority": True,
        "customer_tier": "Customer - Direct",
    }
    assert mapped.modstamp == "2024-05-01T10:00:00.000+0000"


def test_customer_id_falls_back_to_account_id():
    mapped = map_record(order(Account={"Name": "X", "AccountNumber": None}), [], MappingConfig())
    assert mapped.references.customer_id == "001000000000001AAA"


def test_weight_comes_from_items_times_product_weight_when_the_field_is_empty():
    items = [item(2, 1.25), item(1, 0.5, "802000000000002AAA")]
    mapped = map_record(order(Chronopost_Weight_Kg__c=None), items, MappingConfig())
    assert mapped.parcels[0].weight_kg == Decimal("3.00")


def test_item_without_product_weight_names_the_product_field():
    with pytest.raises(MappingError) as caught:
        map_record(order(Chronopost_Weight_Kg__c=None), [item(1, None)], MappingConfig())
    assert caught.value.field == "OrderItem.Product2.Chronopost_Weight_Kg__c"
    assert caught.value.record_id == ORDER_ID


def test_no_weight_and_no_items_names_the_weight_field():
    with pytest.raises(MappingError) as caught:
        map_record(order(Chronopost_Weight_Kg__c=None), [], MappingConfig())
    assert (caught.value.field, caught.value.record_id) == ("Chronopost_Weight_Kg__c", ORDER_ID)


def test_non_numeric_weight_is_a_mapping_error_naming_the_field():
    with pytest.raises(MappingError) as caught:
        map_record(order(Chronopost_Weight_Kg__c="heavy"), [], MappingConfig())
    assert caught.value.field == "Chronopost_Weight_Kg__c"


def test_parcel_count_splits_the_weight_to_the_gram():
    mapped = map_record(
        order(Chronopost_Weight_Kg__c=10, Chronopost_Parcel_Count__c=3), [], MappingConfig()
    )
    assert [p.weight_kg for p in mapped.parcels] == [
        Decimal("3.333"),
        Decimal("3.333"),
        Decimal("3.334"),
    ]
    assert [p.reference for p in mapped.parcels] == ["00000101-1", "00000101-2", "00000101-3"]
    assert sum(split_weight(Decimal("0.007"), 7)) == Decimal("0.007")


@pytest.mark.parametrize("count", [0, 1.5, 100])
def test_impossible_parcel_counts_name_the_field(count):
    with pytest.raises(MappingError) as caught:
        map_record(order(Chronopost_Parcel_Count__c=count), [], MappingConfig())
    assert caught.value.field == "Chronopost_Parcel_Count__c"


def test_missing_order_number_is_a_mapping_error():
    with pytest.raises(MappingError) as caught:
        map_record(order(OrderNumber=""), [], MappingConfig())
    assert caught.value.field == "OrderNumber"


def test_empty_address_fields_pass_through_for_the_address_checker():
    mapped = map_record(
        order(ShippingPostalCode=None, ShippingCity="", ShippingStreet=None), [], MappingConfig()
    )
    address = mapped.recipient.address
    assert (address.postal_code, address.city, address.line1) == ("", "", "")


def test_relay_point_product_override_and_saturday_are_read():
    mapped = map_record(
        order(
            Chronopost_Relay_Point_Id__c="1234R",
            Chronopost_Product__c="86",
            Chronopost_Saturday_Delivery__c=True,
        ),
        [],
        MappingConfig(),
    )
    assert (mapped.relay_point_id, mapped.product_override, mapped.saturday) == (
        "1234R",
        "86",
        True,
    )


def test_shipment_preset_reads_ship_to_fields_and_the_order_through_its_lookup():
    mapping = MappingConfig.from_settings({"trigger_object": "Shipment"})
    record = {
        "Id": "0OB000000000001AAA",
        "SystemModstamp": "2024-05-01T10:00:00.000+0000",
        "ShipmentNumber": "0000000007",
        "ShipToName": "Jean Valjean",
        "ShipToStreet": "1 place Vendôme",
        "ShipToPostalCode": "75001",
        "ShipToCity": "Paris",
        "ShipToCountry": "FR",
        "Order__c": ORDER_ID,
        "Order__r": {
            "OrderNumber": "00000101",
            "Chronopost_Weight_Kg__c": None,
            "Account": {"AccountNumber": "C1"},
        },
    }
    mapped = map_record(record, [item(4, 0.25)], mapping)
    assert (mapped.sf_object, mapped.order_number, mapped.recipient.address.name) == (
        "Shipment",
        "00000101",
        "Jean Valjean",
    )
    assert mapped.parcels[0].weight_kg == Decimal("1.00")
    assert mapped.references.customer_id == "C1"
    assert "Order__r.Chronopost_Weight_Kg__c" in selected_fields(mapping)


def test_configuration_overrides_one_field_and_keeps_the_preset_for_the_rest():
    mapping = MappingConfig.from_settings(
        {"recipient": {"city": "Custom_City__c"}, "facts": {"vip": "Vip__c"}}
    )
    assert mapping.recipient.city == ("Custom_City__c",)
    assert mapping.recipient.postal_code == ("ShippingPostalCode",)
    assert mapping.facts == {"vip": ("Vip__c",)}


def test_field_names_in_configuration_are_checked():
    with pytest.raises(ValidationError):
        MappingConfig.from_settings({"recipient": {"city": "Name FROM User"}})
    with pytest.raises(ValidationError):
        MappingConfig.from_settings({"trigger_object": "Order; DELETE"})


def test_trigger_soql_filters_on_the_condition_and_the_watermark_oldest_first():
    text = soql_for_trigger(MappingConfig(), "2024-05-01T10:00:00.000Z")
    assert text.startswith("SELECT Id, SystemModstamp, OrderNumber, ")
    assert (
        " FROM Order WHERE (Chronopost_Ship__c = true AND Chronopost_Label_Status__c = 'Requested')"
        in text
    )
    assert text.endswith(
        "AND SystemModstamp >= 2024-05-01T10:00:00.000Z ORDER BY SystemModstamp ASC, Id ASC"
    )


def test_a_watermark_that_is_not_a_datetime_is_refused():
    with pytest.raises(MappingError):
        soql_for_trigger(MappingConfig(), "2024-05-01T10:00:00Z OR Id != null")


def test_items_are_fetched_in_batches_of_200_order_ids():
    queries = []

    def query_iter(text):
        queries.append(text)
        return iter([])

    records = [{"Id": f"801{n:012d}AAA"} for n in range(450)]
    fetch_items(query_iter, MappingConfig(), records)
    assert len(queries) == 3
    assert queries[0].startswith(
        "SELECT Id, OrderId, Quantity, Product2.Chronopost_Weight_Kg__c FROM OrderItem WHERE OrderId IN ("
    )


def test_default_fields_exist_in_the_metadata_package():
    """Every custom field of the presets is a file of the package (force-app, or shipment-app)."""
    dirs = [
        REPO / "salesforce" / d / "main" / "default" / "objects"
        for d in ("force-app", "shipment-app")
    ]
    for preset in ("Order", "Shipment"):
        mapping = MappingConfig.from_settings({"trigger_object": preset})
        for path in selected_fields(mapping):
            *relations, name = path.split(".")
            if not name.endswith("__c"):
                continue
            owner = {"Order__r": "Order", "Account": "Account"}.get(
                relations[-1] if relations else "", preset
            )
            assert any((o / owner / "fields" / f"{name}.field-meta.xml").is_file() for o in dirs), (
                path
            )
