"""Faults like the real stack (SOAP faults for bad XML), injected faults (a timeout is a real
client timeout), the admin API, TLS, and state that survives a restart."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import zeep
from lxml import etree

from chronoforce.sandbox.chronopost import ChronopostSandbox
from chronoforce.sandbox.server import BackgroundServer
from chronoforce.sandbox.tls import ensure_tls

TRACKING = "/tracking-cxf/TrackingServiceWS"
ENVELOPE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cxf="http://cxf.tracking.soap.chronopost.fr/"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>'
)
TRACK = "<cxf:trackSkybillV2><language>en_GB</language><skybillNumber>XP1</skybillNumber></cxf:trackSkybillV2>"


def _post(base_url: str, body: str, path: str = TRACKING, timeout: float = 10) -> httpx.Response:
    return httpx.post(
        base_url + path,
        content=body.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=timeout,
    )


def _fault(response: httpx.Response) -> tuple[str, str]:
    root = etree.fromstring(response.content)
    return root.findtext(".//faultcode") or "", root.findtext(".//faultstring") or ""


# --- faults the SOAP stack itself answers ---------------------------------------------------------


def test_operation_in_the_wrong_namespace_gets_a_soap_fault(
    base_url: str, reference_dir: Path
) -> None:
    # karrio's fixture puts the operation in the envelope namespace: CXF refuses that.
    sample = (reference_dir / "chronopost/samples/karrio_tracking_TrackingRequest.xml").read_text()
    response = _post(base_url, sample)
    assert response.status_code == 500
    code, message = _fault(response)
    assert code == "soap:Client" and "Unexpected wrapper element" in message
    fixed = sample.replace("soapenv:trackSkybillV2", "cxf:trackSkybillV2")
    assert _post(base_url, fixed).status_code == 200


def test_xml_that_is_not_well_formed_gets_a_soap_fault(base_url: str) -> None:
    response = _post(base_url, ENVELOPE.format(TRACK)[:-20])
    assert response.status_code == 500 and _fault(response)[0] == "soap:Client"


def test_schema_invalid_request_gets_an_unmarshalling_fault(base_url: str) -> None:
    body = ENVELOPE.format(
        "<cxf:searchPOD><skybillNumber>X</skybillNumber><pdf>maybe</pdf></cxf:searchPOD>"
    )
    code, message = _fault(_post(base_url, body))
    assert code == "soap:Client" and message.startswith("Unmarshalling Error")


def test_unknown_path_is_404_and_get_without_wsdl_is_refused(base_url: str) -> None:
    assert httpx.get(base_url + "/nope").status_code == 404
    assert httpx.get(base_url + TRACKING).status_code == 405


def test_wsdl_is_served_with_the_sandbox_address(base_url: str) -> None:
    response = httpx.get(f"{base_url}{TRACKING}?wsdl")
    assert response.status_code == 200
    assert f'location="{base_url}{TRACKING}"' in response.text
    assert "ws.chronopost.fr" not in response.text.split("<wsdl:service")[1]


# --- injected faults --------------------------------------------------------------------------------


def test_injected_timeout_is_a_real_timeout_at_the_client(
    sandbox: ChronopostSandbox, official: Callable[[str], Any], base_url: str
) -> None:
    sandbox.set_faults(kind="timeout", hang_seconds=20)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        _post(base_url, ENVELOPE.format(TRACK), timeout=0.5)
    assert 0.4 < time.monotonic() - started < 5
    client = zeep.Client(
        official("tracking").client.wsdl.location,
        transport=zeep.transports.Transport(operation_timeout=0.5),
    )
    with pytest.raises(requests.exceptions.Timeout):
        client.service.trackSkybillV2(language="en_GB", skybillNumber="XP1")
    sandbox.clear_faults()
    assert _post(base_url, ENVELOPE.format(TRACK)).status_code == 200


@pytest.mark.parametrize(("kind", "status"), [("http_500", 500), ("http_503", 503)])
def test_injected_http_errors(
    sandbox: ChronopostSandbox, base_url: str, kind: str, status: int
) -> None:
    sandbox.set_faults(kind=kind)
    assert _post(base_url, ENVELOPE.format(TRACK)).status_code == status
    assert sandbox.requests()[-1].injected == kind


def test_injected_soap_fault_raises_a_zeep_fault(
    sandbox: ChronopostSandbox, official: Callable[[str], Any]
) -> None:
    sandbox.set_faults(kind="soap_fault")
    with pytest.raises(zeep.exceptions.Fault, match="injected"):
        official("tracking").service.trackSkybillV2(language="en_GB", skybillNumber="XP1")


def test_injected_malformed_xml_cannot_be_parsed(sandbox: ChronopostSandbox, base_url: str) -> None:
    sandbox.set_faults(kind="malformed")
    response = _post(base_url, ENVELOPE.format(TRACK))
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


def test_injected_system_error_is_chronopost_error_1_in_a_valid_body(
    sandbox: ChronopostSandbox, official: Callable[[str], Any]
) -> None:
    sandbox.set_faults(kind="system_error", operations=["trackSkybillV2"])
    client = official("tracking")
    result = client.service.trackSkybillV2(language="en_GB", skybillNumber="XP1")
    client.assert_valid_response()
    assert (result.errorCode, result.errorMessage) == (1, "System Error")
    # Other operations are untouched by a fault restricted to trackSkybillV2.
    cancel = client.service.cancelSkybill(
        accountNumber="19869502", password="255562", skybillNumber="XP1"
    )
    assert cancel.errorCode == 2


def test_a_share_of_requests_fails_and_the_choice_repeats_under_the_seed(
    sandbox: ChronopostSandbox, base_url: str
) -> None:
    def run() -> list[bool]:
        sandbox.set_faults(kind="http_503", rate=0.5, seed=3)
        return [_post(base_url, ENVELOPE.format(TRACK)).status_code == 503 for _ in range(30)]

    first = run()
    assert 5 < sum(first) < 25
    assert run() == first


def test_latency_is_asynchronous_so_concurrent_clients_overlap(
    sandbox: ChronopostSandbox, base_url: str
) -> None:
    sandbox.set_faults(latency_ms=300)
    durations: list[float] = []

    def one() -> None:
        started = time.monotonic()
        assert _post(base_url, ENVELOPE.format(TRACK)).status_code == 200
        durations.append(time.monotonic() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert min(durations) >= 0.3
    assert time.monotonic() - started < 1.5  # 8 x 300 ms one after the other would be 2.4 s


# --- admin API --------------------------------------------------------------------------------------


def test_admin_api_sets_faults_moves_the_clock_and_resets(
    sandbox: ChronopostSandbox, base_url: str, ship: Callable[..., Any]
) -> None:
    admin = httpx.Client(base_url=base_url + "/_sandbox")
    assert admin.put("/faults", json={"kind": "http_500"}).json()["kind"] == "http_500"
    assert _post(base_url, ENVELOPE.format(TRACK)).status_code == 500
    assert admin.delete("/faults").json()["kind"] is None
    assert admin.put("/faults", json={"kind": "explode"}).status_code == 400
    before = admin.get("/clock").json()["offset_seconds"]
    assert admin.post("/clock", json={"days": 2}).json()["offset_seconds"] == before + 2 * 86400
    assert admin.post("/clock", json={"hours": -1}).status_code == 400
    skybill = ship().resultMultiParcelValue[0].skybillNumber
    assert [p["skybill"] for p in admin.get("/parcels").json()] == [skybill]
    assert admin.get(f"/parcels/{skybill}").json()["visible_events"][0]["code"] == "DC"
    assert admin.get(f"/parcels/{skybill}/label").content.startswith(b"%PDF")
    assert admin.get("/health").json()["live_labels"] == 1
    assert admin.post("/reset").json() == {"reset": True}
    assert admin.get("/health").json()["live_labels"] == 0
    assert admin.get("/clock").json()["offset_seconds"] == 0


def test_request_log_shows_what_clients_sent_without_passwords(
    sandbox: ChronopostSandbox, base_url: str, ship: Callable[..., Any]
) -> None:
    ship(ref={"shipperRef": "SO-LOGGED"})
    records = httpx.get(base_url + "/_sandbox/requests?operation=shippingMultiParcelV5").json()
    (record,) = records
    assert record["account"] == "19869502" and record["error_code"] == 0
    assert "SO-LOGGED" in record["request"] and "<password>****</password>" in record["request"]
    assert "255562" not in json.dumps(records)
    assert sandbox.requests("shippingMultiParcelV5")[0].id == record["id"]


# --- TLS and restart ---------------------------------------------------------------------------------


def test_tls_serves_https_trusted_through_the_throwaway_ca(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    sandbox = ChronopostSandbox()
    with BackgroundServer(sandbox.app, tls=tls) as server:
        assert server.url.startswith("https://localhost:")
        response = httpx.get(
            f"{server.url}{TRACKING}?wsdl",
            verify=ssl.create_default_context(cafile=str(tls.ca_cert)),
        )
        assert f'location="{server.url}{TRACKING}"' in response.text
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}{TRACKING}?wsdl")  # not trusted without the CA


def test_parcels_events_and_clock_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    first = ChronopostSandbox(db_path=db)
    skybills = first.context.skybill_numbers("XP", 1)
    first.advance_clock(timedelta(hours=6))
    first.close()
    second = ChronopostSandbox(db_path=db)
    assert second.clock.offset == timedelta(hours=6)
    assert second.context.skybill_numbers("XP", 1) != skybills  # the counter persisted too
