"""An agency that breaks off its answers half-way, on loopback: what the chaos proxy's
``truncate`` fault does, on demand and in a test's own event loop.

Every request gets ``200 OK`` with a ``Content-Length`` of the whole JSON body and only its
first half. Then the agency either closes the connection (``CLOSED``: the client sees the
answer end early) or keeps it open and says nothing more (``SILENT``: the client waits for the
rest, until its own time runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

CLOSED, SILENT = "closed", "silent"

BODY = json.dumps({"data": [{"id": n, "title": "x" * 40} for n in range(200)]}).encode()


class TruncatingAgency:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._released = asyncio.Event()

    async def __aenter__(self) -> TruncatingAgency:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._released.set()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:  # one answer per request on a kept-alive connection, till it is cut
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                head = (
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(BODY)}\r\n\r\n"
                ).encode()
                writer.write(head + BODY[: len(BODY) // 2])
                await writer.drain()
                if self.mode == CLOSED:
                    return
                await self._released.wait()  # silent until the test ends
                return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)
