"""Running a sample agency app on loopback in a thread: for the demo and the tests."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


GRACE_SECONDS = 10
"""How long a stopping server waits for its connections' work before cancelling it."""


class _Server(uvicorn.Server):
    """uvicorn's server, dropping the connections its graceful shutdown gave up on: uvicorn
    cancels their tasks after ``timeout_graceful_shutdown`` but leaves their sockets open, and
    a server thread's event loop then closes with transports never closed."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        await asyncio.sleep(0)  # each aborted transport's connection_lost closes its socket


class ThreadedServer:
    """A real uvicorn HTTP server in its own thread and event loop; stop and start it at will."""

    def __init__(
        self, app: ASGIApp, port: int | None = None, *, lifespan: bool = False, loop: str = "auto"
    ) -> None:
        self.app = app
        self.loop = loop
        self.port = port or free_port()
        self.lifespan = lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on" if self.lifespan else "off",
            loop=self.loop,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:  # a condition with a deadline, not a timed wait
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sample agency server did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self, timeout: float = 30) -> None:
        """Ask uvicorn to exit and wait for it. A server still running after ``timeout`` (a
        connection or task its shutdown waits for) is logged as a warning: left behind, it goes
        on serving, and polling its sources, after whoever stopped it has moved on. (Not an
        exception: the demo's clean-up after it, and a test's own failure, must still run.)"""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("server on port %s still running %g s after stop", self.port, timeout)
                return  # still known here, so that it can be stopped again
        self._server = None
        self._thread = None
