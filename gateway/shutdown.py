"""Graceful shutdown: subscriptions end with their protocol's close codes, then the server stops.

Left to itself, uvicorn closes every WebSocket with 1012 and then waits for open HTTP responses
to end, and a Server-Sent Events subscription never ends on its own: shutdown would hang until
the client left. So the gateway goes first. It stops accepting connections, closes each WebSocket
(graphql-transport-ws and legacy graphql-ws alike) with 1001 Going Away, as the graphql-ws
reference server does when disposed, and without a ``complete`` per operation: graphql-ws, Apollo
and subscriptions-transport-ws clients reconnect on 1001 and subscribe again, and with ``after``
they miss nothing. Then it completes every other subscription, so an SSE stream ends with
``event: complete`` and a properly terminated body. Only then does uvicorn's own shutdown run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.events import EventBroker
from gateway.heap import settle_heap
from gateway.sse_single import SingleConnectionStreams

log = logging.getLogger("complaint_graph.shutdown")

GOING_AWAY = 1001
GOING_AWAY_REASON = "gateway shutting down; reconnect and resume with after"
CLOSE_GRACE_SECONDS = 5.0
SHUTDOWN_TIMEOUT_SECONDS = 10


class _Connection:
    """One WebSocket: its ``send``, serialised, and silent once the gateway has closed it.

    Both GraphQL WebSocket protocols are JSON in text frames, and their clients (graphql-ws,
    Apollo, ``gql``) refuse binary ones; the view encodes JSON to bytes (orjson, for HTTP), so
    what it sends here goes out as text.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = asyncio.Lock()
        self.accepted = False
        self.closed = False

    async def send(self, message: Message) -> None:
        async with self._lock:
            if self.closed:
                return  # the socket is closing: what the handler still says goes nowhere
            if message["type"] == "websocket.send" and message.get("bytes") is not None:
                message = {"type": "websocket.send", "text": message["bytes"].decode()}
            elif message["type"] == "websocket.accept":
                self.accepted = True
            elif message["type"] == "websocket.close":
                self.closed = True
            await self._send(message)

    async def close(self, code: int, reason: str) -> None:
        async with self._lock:
            if self.closed or not self.accepted:
                return
            self.closed = True
            with contextlib.suppress(OSError, RuntimeError):  # already gone
                await self._send({"type": "websocket.close", "code": code, "reason": reason})


class OpenWebSockets:
    """An ASGI wrapper that knows the WebSockets open through it, so shutdown can close them
    (and that sends their messages as text frames)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open: dict[_Connection, asyncio.Event] = {}

    @property
    def count(self) -> int:
        return len(self._open)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        connection, ended = _Connection(send), asyncio.Event()
        self._open[connection] = ended
        try:
            await self.app(scope, receive, connection.send)
        finally:
            del self._open[connection]
            ended.set()

    async def close_all(self, code: int = GOING_AWAY, reason: str = GOING_AWAY_REASON) -> None:
        """Close every open WebSocket and wait, at most ``CLOSE_GRACE_SECONDS`` in all, until
        its handler has finished. A client that stopped reading holds its connection's send
        (and so the close behind it) until its buffers drain, which may be never: past the
        grace the gateway moves on, and the server's own bounded shutdown drops it."""
        open_now = dict(self._open)
        if not open_now:
            return
        closing = [asyncio.ensure_future(c.close(code, reason)) for c in open_now]
        waiting = [asyncio.ensure_future(ended.wait()) for ended in open_now.values()]
        _, pending = await asyncio.wait([*closing, *waiting], timeout=CLOSE_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        late = sum(1 for task in waiting if task in pending)
        if late:
            log.warning("%d WebSocket clients did not answer the close in time", late)


class GracefulShutdown:
    """What the gateway does before the server closes connections."""

    def __init__(
        self,
        websockets: OpenWebSockets,
        events: EventBroker | None,
        streams: SingleConnectionStreams | None = None,
    ) -> None:
        self.websockets = websockets
        self.events = events
        self.streams = streams

    async def close_subscriptions(self) -> None:
        await self.websockets.close_all()
        if self.events is not None:
            self.events.complete_all()  # what is left: Server-Sent Events streams
        if self.streams is not None:
            await self.streams.close_all()  # single connection mode: each stream ends too


class GatewayServer(uvicorn.Server):
    """uvicorn's server, closing subscriptions itself before uvicorn closes the connections.

    WebSockets go without permessage-deflate, whatever the configuration asked: events are small
    JSON messages, and compressing each one for each subscriber made fan-out several times
    slower and cost 50 KiB of zlib state per connection (``python -m bench.subscribers``).
    """

    def __init__(self, config: uvicorn.Config, shutdown: GracefulShutdown | None = None) -> None:
        config.ws_per_message_deflate = False
        if config.timeout_graceful_shutdown is None:
            # uvicorn would otherwise wait for every connection's task without end; one stuck
            # behind a client that stopped reading must not keep the gateway from stopping.
            config.timeout_graceful_shutdown = SHUTDOWN_TIMEOUT_SECONDS
        super().__init__(config)
        self.graceful = shutdown

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_heap()  # the app is loaded and its sources open: freeze what lives on

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while subscriptions close
        graceful = self.graceful or _graceful_of(self.config.loaded_app)
        if graceful is not None:
            await graceful.close_subscriptions()
        await super().shutdown(sockets)
        # uvicorn gives up on a connection still open after its grace (a client that stopped
        # reading, its send stuck behind full buffers) but leaves its socket open: drop it, so
        # a stopped gateway holds no connection and its event loop closes with none unclosed.
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        await asyncio.sleep(0)  # each aborted transport's connection_lost closes its socket


def _graceful_of(app: object) -> GracefulShutdown | None:
    """The gateway's shutdown under the middleware uvicorn wraps a loaded app in (a worker
    builds its app from a factory, so the server only meets it once loaded)."""
    for _ in range(8):
        found = getattr(getattr(app, "state", None), "shutdown", None)
        if isinstance(found, GracefulShutdown):
            return found
        app = getattr(app, "app", None)
    return None
