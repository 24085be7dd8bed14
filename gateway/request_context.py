"""One id per HTTP request or WebSocket, known to every log line and GraphQL error it causes.

The id comes from the client's ``X-Request-ID`` header when that is sane (so a request can be
followed through proxies), else it is generated; it goes back as the ``X-Request-ID`` response
header. It lives in a context variable, so anything running for the request — resolvers, data
loader batches, source round trips — sees it without being handed it.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# Probes and scrapes are frequent and dull: logged at DEBUG, not INFO.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("complaint_graph.access")


@dataclass
class RequestRecord:
    """What the GraphQL view learns about a request, for the access log line."""

    request_id: str
    operation_name: str | None = None
    operation_type: str | None = None
    error_codes: list[str] = field(default_factory=list)


_current: ContextVar[RequestRecord | None] = ContextVar("complaint_graph_request", default=None)


def current_request() -> RequestRecord | None:
    return _current.get()


def current_request_id() -> str | None:
    record = _current.get()
    return None if record is None else record.request_id


def request_id_from(header: str | None) -> str:
    """The client's id when it is a short token of safe characters, else a fresh one."""
    if header is not None and _SANE.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so the context variable reaches the app's own task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, HEADER.encode())
        record = RequestRecord(request_id_from(incoming))
        token = _current.set(record)
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), record.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            raise
        finally:
            _log_access(scope, record, status, time.perf_counter() - started)
            _current.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                decoded: str = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return decoded
    return None


def _log_access(scope: Scope, record: RequestRecord, status: int | None, seconds: float) -> None:
    path = scope.get("path", "")
    method = scope.get("method", "WEBSOCKET")
    level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
    access_log.log(
        level,
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "request_id": record.request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "operation": record.operation_name,
            "operation_type": record.operation_type,
            "error_codes": record.error_codes or None,
        },
    )
