"""The showcase orders `make demo` seeds (relay, Saturday, insured, international EU and non-EU)
go through the whole pipeline over HTTP and reach Chronopost as the documents want them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chronoforce.cli.common import run_until
from chronoforce.cli.demo import demo_settings
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.salesforce.seed import SHOWCASE
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Parcel, Shipment


@pytest.fixture()
def showcase(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    seeded = org.seed(orders=len(SHOWCASE), seed=7, showcase=True)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls, options={"timeout_graceful_shutdown": 1}).start()
    runtime = build_runtime(demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert), cluster=True)
    try:
        yield {"carrier": carrier, "org": org, "runtime": runtime, "orders": seeded["Order"]}
    finally:
        runtime.close()
        sf.stop()
        cp.stop()


def test_every_showcase_case_is_labeled_as_the_documents_say(showcase: dict[str, Any]) -> None:
    carrier, runtime = showcase["carrier"], showcase["runtime"]
    run_until(runtime, workers=2, until_idle=True, max_seconds=60)
    cases = dict(zip(showcase["orders"], (case[0] for case in SHOWCASE), strict=True))
    labels: dict[str, dict[str, Any]] = {}
    with runtime.store.session() as session:
        for shipment in session.scalars(select(Shipment)):
            assert shipment.state == "labeled", (cases[shipment.sf_id], shipment.routing_reason)
            parcel = session.scalars(
                select(Parcel).where(Parcel.shipment_id == shipment.id)
            ).first()
            assert parcel is not None
            stored = carrier.parcel(parcel.skybill_number)
            assert stored is not None
            labels[cases[shipment.sf_id]] = {**stored.label_data, "reason": shipment.routing_reason}
    assert set(labels) == {case[0] for case in SHOWCASE}
    relay = labels["relay"]
    assert (relay["recipient"]["name"], relay["id_relais"], relay["recipient_ref"]) == (
        "TABAC DES MARTYRS", "2001R", "2001R",
    )  # fmt: skip
    assert "Saturday" in labels["saturday"]["reason"]  # service 6 when it arrives on a Saturday
    assert labels["insured"]["insured_cents"] and labels["insured"]["insured_cents"] % 1 == 0
    for case in ("international-eu", "international-world"):
        assert labels[case]["contents"] and labels[case]["customs_cents"], case
        assert labels[case]["service"] == "0" and labels[case]["mode_retour"] == "2"
