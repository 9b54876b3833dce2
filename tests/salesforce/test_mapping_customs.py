"""Insurance and customs from Salesforce: the insured value, the declared value and the English
contents are mapped from the Order (or a Shipment's Order), with a default per product family."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chronoforce.domain.errors import MappingError
from chronoforce.salesforce.mapping import MappingConfig, map_record, selected_fields

ORDER_ID = "801000000000001AAA"


def order(**over: Any) -> dict[str, Any]:
    return {
        "Id": ORDER_ID,
        "SystemModstamp": "2024-05-01T10:00:00.000+0000",
        "OrderNumber": "00000101",
        "ShippingStreet": "Invalidenstrasse 117",
        "ShippingPostalCode": "10115",
        "ShippingCity": "Berlin",
        "ShippingCountry": "Germany",
        "Chronopost_Weight_Kg__c": 2.5,
        **over,
    }


def test_insured_and_declared_values_and_contents_are_read_from_the_order() -> None:
    mapping = MappingConfig.from_settings({"items": None})
    mapped = map_record(
        order(
            Chronopost_Insured_Value__c=250.0,
            Chronopost_Declared_Value__c=89.2,
            Chronopost_Contents__c="Cotton T-shirts\nWool scarf; Leather belt",
        ),
        [],
        mapping,
    )
    assert mapped.insured_value == Decimal("250.0")
    assert mapped.declared_value == Decimal("89.2")
    assert mapped.contents == ("Cotton T-shirts", "Wool scarf", "Leather belt")
    fields = selected_fields(mapping)
    for name in ("Chronopost_Insured_Value__c", "Chronopost_Declared_Value__c",
                 "Chronopost_Contents__c"):  # fmt: skip
        assert name in fields


def test_a_shipment_reads_them_from_its_order() -> None:
    fields = selected_fields(MappingConfig.from_settings({"trigger_object": "Shipment"}))
    assert "Order__r.Chronopost_Insured_Value__c" in fields
    assert "Order__r.Chronopost_Contents__c" in fields


def test_contents_default_per_product_family_when_the_order_has_none() -> None:
    mapping = MappingConfig.from_settings(
        {"items": None, "content_defaults": {"international": "Books"}}
    )
    mapped = map_record(order(), [], mapping)
    assert mapped.contents == () and mapped.insured_value is None
    assert mapped.contents_or_default(mapping, "international") == ("Books",)
    assert mapped.contents_or_default(mapping, "home") == ()
    own = map_record(order(Chronopost_Contents__c="Tea"), [], mapping)
    assert own.contents_or_default(mapping, "international") == ("Tea",)


def test_a_negative_amount_names_the_record_and_the_field() -> None:
    mapping = MappingConfig.from_settings({"items": None})
    with pytest.raises(MappingError) as bad:
        map_record(order(Chronopost_Insured_Value__c=-5), [], mapping)
    assert (bad.value.record_id, bad.value.field) == (ORDER_ID, "Chronopost_Insured_Value__c")
