"""Run an ASGI app with uvicorn, in the foreground (CLI) or in a background thread (tests)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from chronoforce.sandbox.tls import TlsFiles


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _config(app: Any, host: str, port: int, tls: TlsFiles | None, **kwargs: Any) -> uvicorn.Config:
    ssl: dict[str, Any] = {}
    if tls is not None:
        ssl = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    kwargs.setdefault("log_level", "warning")
    # A client's idle keep-alive connection must not hold a stop for uvicorn's default wait.
    kwargs.setdefault("timeout_graceful_shutdown", 1)
    return uvicorn.Config(app, host=host, port=port, access_log=False, **ssl, **kwargs)


def serve_forever(
    app: Any, host: str, port: int, tls: TlsFiles | None = None, **kwargs: Any
) -> None:
    uvicorn.Server(_config(app, host, port, tls, **kwargs)).run()


@dataclass
class BackgroundServer:
    """A uvicorn server on a thread; `url` is its base URL once `start()` returns."""

    app: Any
    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsFiles | None = None
    options: dict[str, Any] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls and self.host == "127.0.0.1" else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        if not self.port:
            self.port = free_port(self.host)
        self._server = uvicorn.Server(
            _config(self.app, self.host, self.port, self.tls, **self.options)
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
