"""The package's ship-request publisher (Apex trigger on Order) publishes exactly when an Order
starts meeting chronoforce's default trigger condition: chronoforce applies that condition to
the records an event names, so the two must not drift apart."""

from __future__ import annotations

import re

from chronoforce.salesforce.mapping import MappingConfig
from tests.salesforce_package.apex_shapes import CLASSES


def _constant(text: str, name: str) -> str:
    found = re.search(rf"static final String {name} = '([^']*)';", text)
    assert found, name
    return found[1]


def test_the_publisher_condition_is_the_order_presets_trigger_condition() -> None:
    text = (CLASSES / "ChronopostShipRequests.cls").read_text(encoding="utf-8")
    flag, status, requested = (_constant(text, n) for n in ("FLAG", "LABEL_STATUS", "REQUESTED"))
    assert "row.get(FLAG) == true && row.get(LABEL_STATUS) == REQUESTED" in text
    preset = MappingConfig.model_validate({"trigger_object": "Order"}).trigger_condition
    assert preset == f"{flag} = true AND {status} = '{requested}'"


def test_the_trigger_runs_the_publisher_after_insert_and_update() -> None:
    trigger = (CLASSES.parent / "triggers" / "ChronopostOrderShipRequest.trigger").read_text()
    assert re.search(r"trigger \w+ on Order\s*\(after insert, after update\)", trigger)
    assert "ChronopostShipRequests.publish('Order', Trigger.new, Trigger.oldMap)" in trigger
