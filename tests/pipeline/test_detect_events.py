"""Detection through the Pub/Sub API: a ship-request event becomes a shipment intent, once."""

from __future__ import annotations

from pathlib import Path

from chronoforce.cli.demo import demo_settings
from chronoforce.config import SalesforceConfig
from chronoforce.pipeline.runtime import build_runtime
from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.salesforce import SalesforceSandbox
from chronoforce.sandbox.salesforce.pubsub import PubSubServer
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls
from chronoforce.store.models import Shipment, Watermark


def test_ship_request_events_feed_the_pipeline_and_resume_after_restart(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    carrier = ChronopostSandbox(db_path=":memory:")
    org = SalesforceSandbox(db_path=":memory:")
    seeded = org.seed(orders=5, seed=7)
    cp = carrier.start()
    sf = BackgroundServer(org.app, tls=tls).start()
    grpc = PubSubServer(org, tls=tls).start()
    base = demo_settings(tmp_path, cp.url, sf.url, tls.ca_cert)
    settings = base.model_copy(
        update={
            "salesforce": SalesforceConfig(
                **{**base.salesforce.model_dump(), "pubsub_endpoint": grpc.target}
            )
        }
    )
    order_id = seeded["Order"][2]
    runtime = build_runtime(settings)
    try:
        # The SOQL delta sees nothing (its watermark is ahead): only events can find orders.
        with runtime.store.session() as session:
            session.add(Watermark(source="delta:Order", value="2999-01-01T00:00:00.000Z"))
        assert runtime.detect() == []
        runtime.salesforce.connection.sf.Chronopost_Ship_Request__e.create(
            {"Record_Id__c": order_id, "Reason__c": "test"}
        )
        ids = runtime.detect()
        assert len(ids) == 1
        with runtime.store.session() as session:
            assert session.get_one(Shipment, ids[0]).sf_id == order_id
            assert session.get(Watermark, "pubsub:/event/Chronopost_Ship_Request__e")
        assert runtime.detect() == []  # the replay id moved past the event
    finally:
        runtime.close()
    restarted = build_runtime(settings)
    try:
        assert restarted.detect() == []  # resumes from the stored replay id: nothing twice
    finally:
        restarted.close()
        grpc.stop()
        sf.stop()
        cp.stop()
