"""The queries only the Salesforce adapter builds (`salesforce/mapping.py`): one record of the
trigger, the records events named, a retry's read, the linked Shipments, a return's Case."""

from __future__ import annotations

import pytest

from chronoforce.salesforce.mapping import (
    MappingConfig,
    case_soql,
    linked_shipments_soql,
    soql_for_record,
    soql_for_trigger,
    trigger_select,
)
from chronoforce.salesforce.soql import SoqlInjectionError

ORDER = "801000000000001AAA"
OTHER = "801000000000002AAA"
CONDITION = "(Chronopost_Ship__c = true AND Chronopost_Label_Status__c = 'Requested')"
OLDEST_FIRST = " ORDER BY SystemModstamp ASC, Id ASC"


def test_records_named_by_events_keep_the_trigger_condition_oldest_first():
    text = soql_for_trigger(MappingConfig(), ids=[ORDER, OTHER])
    assert text == (
        f"{trigger_select(MappingConfig())} WHERE {CONDITION} "
        f"AND Id IN ('{ORDER}', '{OTHER}'){OLDEST_FIRST}"
    )


def test_without_a_condition_the_ids_are_the_whole_filter():
    mapping = MappingConfig(trigger_condition="")
    text = soql_for_trigger(mapping, ids=[ORDER])
    assert text == f"{trigger_select(mapping)} WHERE Id IN ('{ORDER}'){OLDEST_FIRST}"


def test_a_retry_reads_the_order_whatever_its_label_status():
    text = soql_for_trigger(MappingConfig(), ids=[ORDER], condition=False)
    assert "Chronopost_Label_Status__c = 'Requested'" not in text
    assert text.endswith(f" WHERE Id IN ('{ORDER}'){OLDEST_FIRST}")


def test_one_record_is_read_by_id_with_no_condition_and_no_order():
    text = soql_for_record(MappingConfig(), ORDER)
    assert text == f"{trigger_select(MappingConfig())} WHERE Id = '{ORDER}'"
    assert text.startswith("SELECT Id, SystemModstamp, OrderNumber, ") and " FROM Order " in text


def test_one_record_with_no_trigger_condition_is_still_valid_soql():
    # The old `.split(" WHERE ")` left the ORDER BY before the WHERE when there was no condition.
    text = soql_for_record(MappingConfig(trigger_condition=""), ORDER)
    assert "ORDER BY" not in text and text.endswith(f" WHERE Id = '{ORDER}'")


@pytest.mark.parametrize("build", [lambda i: soql_for_record(MappingConfig(), i), case_soql])
def test_a_forged_id_never_reaches_a_query(build):
    with pytest.raises(SoqlInjectionError):
        build("x' OR Name != '")


def test_linked_shipments_and_a_case_are_named_by_the_package_fields():
    assert linked_shipments_soql([ORDER]) == (
        f"SELECT Id, Order__c FROM Shipment WHERE Order__c IN ('{ORDER}')"
    )
    assert case_soql("500000000000001AAA") == (
        "SELECT Id, Type, Chronopost_Order__c FROM Case WHERE Id = '500000000000001AAA'"
    )
