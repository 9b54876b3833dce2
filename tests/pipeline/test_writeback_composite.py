"""The outbox's Composite rounds when something fails half way (found in review): what went is
settled as sent, what did not waits, nothing is sent twice. Over the Salesforce sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from chronoforce.domain.errors import SalesforceUnavailableError
from chronoforce.pipeline import writeback
from chronoforce.store.models import Outbox


class LookupFails:
    """The runtime's Salesforce client, whose next `n` queries fail as an outage would (the
    sandbox injects 503s at random only): every other call is the real one."""

    def __init__(self, client: Any, n: int = 1) -> None:
        self.client, self.n = client, n

    def query_iter(self, soql: str) -> Iterator[dict[str, Any]]:
        if self.n > 0:
            self.n -= 1
            raise SalesforceUnavailableError("injected: Salesforce unreachable", operation="query")
        return self.client.query_iter(soql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _rows(runtime: Any, order_id: str) -> list[dict[str, Any]]:
    record = writeback.outbox_row(
        sf_object="Order",
        operation="update",
        sf_id=order_id,
        payload={"Chronopost_Label_Status__c": "Created"},
    )
    file = writeback.outbox_row(
        sf_object="ContentVersion",
        operation="file",
        dedup_key="file:test:slip",
        payload={
            "parcel_ids": [],
            "data_b64": "JVBERi0xLjQKJSVFT0YK",  # %PDF-1.4 %%EOF
            "size": 16,
            "title": "a file filed on a record known by its key",
            "filename": "slip.pdf",
            "first_publish_location_id": "",
            "first_publish_location": {"sf_object": "Order", "key_field": "Id", "key": order_id},
            "link_to": [],
        },
    )
    return [record, file]


def test_a_lookup_failing_after_the_rounds_writes_went_settles_them_and_keeps_the_file(
    sandbox_world: dict[str, Any],
) -> None:
    runtime, org = sandbox_world["runtime"], sandbox_world["org"]
    order_id = org.records("Order")[0]["Id"]
    with runtime.store.session() as session:
        writeback.enqueue_rows(session, _rows(runtime, order_id))
    flusher = writeback.Flusher(runtime.store, LookupFails(runtime.salesforce), now=runtime.now)
    report = flusher.flush()  # the update goes first, then the file's lookup fails
    assert report.sent == 1 and report.retried == 1
    with runtime.store.session() as session:
        states = dict(session.execute(select(Outbox.sf_object, Outbox.state)).all())
    assert states == {"Order": "sent", "ContentVersion": "pending"}
    order = next(o for o in org.records("Order") if o["Id"] == order_id)
    assert order["Chronopost_Label_Status__c"] == "Created"
    assert not [v for v in org.records("ContentVersion") if v.get("PathOnClient") == "slip.pdf"]
    later = runtime.now() + dt.timedelta(hours=1)  # past the file's postponement
    again = writeback.Flusher(runtime.store, runtime.salesforce, now=lambda: later).flush()
    assert again.sent == 1  # the file only: the update is not sent twice
    (slip,) = [v for v in org.records("ContentVersion") if v.get("PathOnClient") == "slip.pdf"]
    assert slip["FirstPublishLocationId"] == order_id
