"""The Salesforce HTTP session against a raw socket server that closes keep-alive connections.

A real org (or uvicorn, after `timeout_keep_alive`) closes an idle pooled connection; a request
sent on it just then gets no answer. The session sends a GET once more on a new connection; a
write, or a request the server may still be working on (read timeout), is never sent twice.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from chronoforce.salesforce.transport import SalesforceSession

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\n{}"
)


@dataclass
class ClosingServer:
    """Answers the first request of each connection, then closes on the next one unanswered.

    `stall` makes it hold every request without answering (a server still working).
    """

    stall: bool = False
    requests: list[tuple[int, str]] = field(default_factory=list)  # (connection, request line)
    connections: int = 0
    _sock: socket.socket = field(default_factory=socket.socket)
    _release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> str:
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def stop(self) -> None:
        self._release.set()
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            for served in range(2):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                self.requests.append((number, head.split(b"\r\n", 1)[0].decode()))
                if self.stall:
                    self._release.wait(10)
                    return
                if served == 1:
                    return  # closed without an answer, as an idle keep-alive close does
                conn.sendall(ANSWER)


@pytest.fixture()
def server() -> Iterator[ClosingServer]:
    running = ClosingServer()
    yield running
    running.stop()


def test_a_get_on_a_connection_the_server_closed_is_sent_again_on_a_new_one(
    server: ClosingServer,
) -> None:
    base = server.start()
    with SalesforceSession() as session:
        assert session.get(f"{base}/services/data/v62.0/query?q=1").status_code == 200
        assert session.get(f"{base}/services/data/v62.0/query?q=2").status_code == 200
        assert session.calls["query"] == 2  # one call as the budget counts it, not three
    assert [r for r in server.requests] == [
        (1, "GET /services/data/v62.0/query?q=1 HTTP/1.1"),
        (1, "GET /services/data/v62.0/query?q=2 HTTP/1.1"),  # the connection closed here
        (2, "GET /services/data/v62.0/query?q=2 HTTP/1.1"),
    ]


def test_a_write_on_a_closed_connection_is_not_sent_twice(server: ClosingServer) -> None:
    base = server.start()
    url = f"{base}/services/data/v62.0/composite/sobjects"
    with SalesforceSession() as session:
        assert session.post(url, json={"records": []}).status_code == 200
        with pytest.raises(requests.ConnectionError):
            session.post(url, json={"records": []})
    assert [n for n, _ in server.requests] == [1, 1], "the pipeline, not HTTP, retries writes"


def test_a_get_that_timed_out_is_not_sent_again(server: ClosingServer) -> None:
    server.stall = True
    base = server.start()
    with SalesforceSession(timeout=(2.0, 0.3)) as session, pytest.raises(requests.ReadTimeout):
        session.get(f"{base}/services/data/v62.0/query?q=slow")
    assert len(server.requests) == 1 and server.connections == 1
