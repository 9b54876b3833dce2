"""Writes an org refuses as a whole, and values too long for its fields (issue 19, items 4, 6).

A collection naming an unknown field (or one field-level security hides: they look the same) is
refused by the org as a whole request; the client splits it until the records at fault are alone
and the others go on. Lengths come from describe: safe values are shortened with a note, lists of
skybill numbers keep whole numbers, CaseComment bodies fit 4,000 bytes of UTF-8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from chronoforce.cli.demo import demo_settings
from chronoforce.pipeline import writeback
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.salesforce.fit import shorten
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import ExceptionRow, Outbox

from .conftest import created_ids


def test_a_whole_request_400_is_split_until_the_record_at_fault_is_alone(org, client, orders):
    ids = orders(client, 9)
    records: list[dict[str, Any]] = [
        {"Id": i, "Chronopost_Label_Status__c": "Created"} for i in ids
    ]
    records[4]["Chronopost_Not_In_This_Org__c"] = "x"  # the org answers 400 for the whole call
    results = client.collection("update", "Order", records)
    assert [r.success for r in results] == [True] * 4 + [False] + [True] * 4
    (error,) = results[4].errors
    assert (error.status_code, error.fields) == (
        "INVALID_FIELD",
        ("Chronopost_Not_In_This_Org__c",),
    )
    assert results[4].id == ids[4]
    statuses = {o["Id"]: o["Chronopost_Label_Status__c"] for o in org.sandbox.records("Order")}
    assert [statuses[i] for i in ids] == ["Created"] * 4 + ["Requested"] + ["Created"] * 4


def test_a_field_missing_from_the_describe_read_at_start_up_is_never_sent(org, client, orders):
    ids = orders(client, 3)
    client.describe("Order")  # what start-up reads (salesforce/org_shape.py)
    org.sandbox.reset_stats()
    results = client.collection(
        "update",
        "Order",
        [
            {"Id": ids[0], "Chronopost_Label_Status__c": "Created"},
            {"Id": ids[1], "Chronopost_Shipping_Cost_Typo__c": 5.0},
            {"Id": ids[2], "Chronopost_Label_Status__c": "Created"},
        ],
    )
    assert [r.success for r in results] == [True, False, True]
    assert results[1].errors[0].fields == ("Chronopost_Shipping_Cost_Typo__c",)
    assert "field-level security" in results[1].errors[0].message
    assert org.sandbox.stats()["collections"] == 1, "one call, no split needed"


def test_values_are_fitted_to_the_lengths_the_describe_gives(org, client, orders):
    (order_id,) = orders(client, 1)
    (case_id,) = created_ids(client.collection("create", "Case", [{"Subject": "late"}]))
    for name in ("Order", "CaseComment"):
        client.describe(name)  # what start-up reads (salesforce/org_shape.py)
    numbers = [f"XY{n:09d}FR" for n in range(20)]
    url = "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=" + ",".join(numbers)
    place = "Plateforme de distribution " * 6  # 162 characters for a 100-character field
    [order] = client.collection(
        "update",
        "Order",
        [
            {
                "Id": order_id,
                "Chronopost_Last_Event_Place__c": place,
                "Chronopost_Tracking_Url__c": url,
                "Chronopost_Tracking_Number__c": ",".join(numbers),  # 279 characters, 255 max
            }
        ],
    )
    assert order.success, order.errors
    assert len(order.notes) == 3
    [stored] = [o for o in org.sandbox.records("Order") if o["Id"] == order_id]
    assert len(stored["Chronopost_Last_Event_Place__c"]) == 100
    assert stored["Chronopost_Last_Event_Place__c"].endswith("…")
    kept = stored["Chronopost_Tracking_Url__c"].split("=", 1)[1].split(",")
    assert len(stored["Chronopost_Tracking_Url__c"]) <= 255 and kept == numbers[: len(kept)]
    assert stored["Chronopost_Tracking_Number__c"].split(",") == numbers[:18]  # whole numbers

    body = "Colis endommagé à l'entrepôt — " * 150  # 4,650 characters, more bytes than that
    [comment] = client.collection(
        "create", "CaseComment", [{"ParentId": case_id, "CommentBody": body}]
    )
    assert comment.success, comment.errors
    [saved] = org.sandbox.records("CaseComment")
    assert len(saved["CommentBody"].encode("utf-8")) <= 4000 < len(body.encode("utf-8"))


def test_shorten_counts_bytes_without_splitting_a_character() -> None:
    text = "é" * 2001  # 4,002 bytes
    cut = shorten(text, 4000, in_bytes=True)
    assert len(cut.encode("utf-8")) <= 4000 and cut.endswith("…") and set(cut[:-1]) == {"é"}


def test_a_refused_batch_never_stalls_the_outbox(tmp_path: Path) -> None:
    """The field exists in the package but FLS hides it from the integration user: the org
    refuses the whole collection. Each record at fault becomes an exception naming record and
    field; the others are sent; nothing is left pending."""
    tls = ensure_tls(tmp_path / "tls")
    org = SalesforceSandbox(
        db_path=":memory:", hidden_fields={"Order": {"Chronopost_Pickup_Number__c"}}
    )
    order_ids = org.seed(orders=6, seed=3)["Order"]
    carrier = ChronopostSandbox(db_path=":memory:").start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    runtime = build_runtime(demo_settings(tmp_path, carrier.url, sf.url, tls.ca_cert))
    runtime.salesforce._describes.clear()  # as if describe was not read: the org must refuse
    try:
        with runtime.store.session() as session:
            for n, order_id in enumerate(order_ids):
                payload: dict[str, Any] = {"Chronopost_Label_Status__c": "Created"}
                if n in (1, 4):
                    payload["Chronopost_Pickup_Number__c"] = f"P{n}"
                writeback.enqueue(
                    session, sf_object="Order", operation="update", sf_id=order_id, payload=payload
                )
        report = runtime.flush()
        assert (report.sent, report.failed) == (4, 2)
        with runtime.store.session() as session:
            states = {r.sf_id: r.state for r in session.scalars(select(Outbox))}
            problems = list(session.scalars(select(ExceptionRow)))
        assert "pending" not in states.values()
        assert sorted((p.sf_id, p.field, p.code) for p in problems) == sorted(
            (order_ids[n], "Chronopost_Pickup_Number__c", "INVALID_FIELD") for n in (1, 4)
        )
    finally:
        runtime.close()
        sf.stop()
        carrier.stop()
