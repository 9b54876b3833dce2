"""The HTTP seam: injectable httpx transports, TLS trust by CA file, wire failures typed, and
passwords masked in every recorded payload (elements, key=value pairs, the raw value).
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from chronoforce.chronopost import (
    ChronopostClient,
    ChronopostCredentials,
    ChronopostEndpoint,
    HttpStatusError,
)
from chronoforce.chronopost.transport import Redactor
from chronoforce.domain.errors import CarrierUnavailableError
from chronoforce.sandbox.chronopost import DEMO_ACCOUNT, DEMO_PASSWORD, ChronopostSandbox
from chronoforce.sandbox.server import BackgroundServer, free_port
from chronoforce.sandbox.tls import ensure_tls

from .conftest import CREDENTIALS, make_request

ECHO = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    '<ns2:trackSkybillV2Response xmlns:ns2="http://cxf.tracking.soap.chronopost.fr/"><return>'
    "<errorCode>0</errorCode><listEventInfoComp><skybillNumber>XP1</skybillNumber>"
    "</listEventInfoComp></return></ns2:trackSkybillV2Response>"
    "<!-- debug: login=19869502&password={pw} code {pw} --></soap:Body></soap:Envelope>"
)


def _client(handler: httpx.MockTransport, password: str = DEMO_PASSWORD) -> ChronopostClient:
    return ChronopostClient(
        ChronopostEndpoint("https://ws.example.test"),
        ChronopostCredentials(DEMO_ACCOUNT, password),
        transport=handler,
    )


def test_password_is_masked_in_requests_and_in_answers_that_echo_it() -> None:
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, text=ECHO.format(pw=DEMO_PASSWORD))

    with _client(httpx.MockTransport(answer)) as client:
        client.track("XP1")
        call = client.last_call
    assert call is not None
    assert DEMO_PASSWORD not in call.response_xml and "password=***" in call.response_xml
    assert seen[0].startswith(b"<?xml") and b"trackSkybillV2" in seen[0]


def test_request_password_element_is_masked_but_sent_in_clear() -> None:
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(500, text="<html>proxy error</html>")

    with _client(httpx.MockTransport(answer)) as client, pytest.raises(HttpStatusError) as caught:
        client.create_shipment(make_request())
    assert f"<password>{DEMO_PASSWORD}</password>".encode() in sent[0]
    assert "<password>***</password>" in caught.value.request_payload
    assert caught.value.response_payload == "<html>proxy error</html>"
    assert caught.value.code == "CARRIER_HTTP_500" and caught.value.transient


def test_soap_requests_are_posted_as_text_xml_to_the_service_path() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, text=ECHO.format(pw="x"))

    with _client(httpx.MockTransport(answer)) as client:
        client.track("XP1")
    (request,) = requests
    assert str(request.url) == "https://ws.example.test/tracking-cxf/TrackingServiceWS"
    assert request.headers["content-type"].startswith("text/xml")
    assert request.headers["soapaction"] == '""'


def test_connection_refused_is_transient_with_the_request_kept() -> None:
    port = free_port()  # nothing listens there
    endpoint = ChronopostEndpoint(f"http://127.0.0.1:{port}", connect_timeout=2.0)
    with (
        ChronopostClient(endpoint, CREDENTIALS) as client,
        pytest.raises(CarrierUnavailableError) as caught,
    ):
        client.create_shipment(make_request())
    assert caught.value.code == "CARRIER_UNAVAILABLE"
    assert "shippingMultiParcelV5" in caught.value.request_payload
    assert DEMO_PASSWORD not in caught.value.request_payload


def test_last_call_is_per_thread() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=ECHO.format(pw="x"))

    with _client(httpx.MockTransport(answer)) as client:
        client.track("XP1")
        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(client.last_call))
        thread.start()
        thread.join()
        assert other == [None] and client.last_call is not None


def test_labels_over_tls_trusting_only_the_sandbox_ca(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path)
    sandbox = ChronopostSandbox(db_path=":memory:")
    with BackgroundServer(sandbox.app, tls=tls) as server:
        trusted = ChronopostEndpoint(server.url, verify=str(tls.ca_cert))
        with ChronopostClient(trusted, CREDENTIALS) as client:
            assert client.create_shipment(make_request()).labels[0].data.startswith(b"%PDF")
        untrusting = ChronopostClient(ChronopostEndpoint(server.url), CREDENTIALS)
        with untrusting, pytest.raises(CarrierUnavailableError):  # system CAs do not know ours
            untrusting.track("XP1")
    sandbox.close()


def test_label_sized_answers_keep_the_label_and_other_secrets_are_still_caught() -> None:
    label = "QUJD" * 40_000  # 160 kB of base64, like a multi-parcel label answer
    answer = (
        f"<return><pdfEtiquette>{label}</pdfEtiquette><sessionToken>abc123</sessionToken>"
        f"<note>{DEMO_PASSWORD}</note></return>"
    )
    masked = Redactor(DEMO_PASSWORD)(answer)  # its speed is measured by the codec benchmark
    assert "<sessionToken>***</sessionToken>" in masked and DEMO_PASSWORD not in masked
    assert label in masked  # the label itself is kept for diagnosis


def test_a_read_whose_pooled_connection_was_closed_is_sent_once_more_a_label_is_not() -> None:
    """No answer ("Server disconnected"): a keep-alive connection the server
    closed as it sat idle. A tracking read goes again; a label is never sent twice here."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) % 2 == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, text=ECHO.format(pw="x"))

    with _client(httpx.MockTransport(answer)) as client:
        events = client.track("XP1")
        assert len(seen) == 2 and events == ()
        with pytest.raises(CarrierUnavailableError) as caught:
            client.create_shipment(make_request())
    assert len(seen) == 3, "the label call went out once"
    assert "RemoteProtocolError" in str(caught.value)
