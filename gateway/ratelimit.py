"""Rate limits per caller: HTTP 429 with ``Retry-After`` once a caller has used its rate.

The caller is the SHA-256 of the ``Authorization`` header's credentials when one is sent (so a
key is limited wherever it comes from, and never stored in clear), else the client address as
the ASGI server reports it (run uvicorn with ``--proxy-headers`` behind a trusted proxy).
Counting is the ``limits`` library's moving window, in memory per gateway by default or shared
by every replica in Redis. When the storage cannot be reached the request is let through and
the failure logged: an unavailable Redis must not take the whole API down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from pydantic import Field, field_validator
from redis.asyncio import ConnectionPool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway._asgi import send_json
from sources import Strict

log = logging.getLogger("complaint_graph.ratelimit")

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: limiting them would make an overloaded gateway look dead."""


class RateLimitSettings(Strict):
    """``limits.rate_limit``: how many requests one caller may send."""

    rate: str = Field(default="100/minute", description="limits' notation; several joined by ';'.")
    storage: str = Field(default="memory://", description="memory:// or redis://host:port/db")
    prefix: str = Field(default="complaint-graph-ratelimit", description="Redis key prefix.")

    @field_validator("rate")
    @classmethod
    def _parses(cls, rate: str) -> str:
        parse_many(rate)  # raises ValueError naming what it cannot read
        return rate

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, storage: str) -> str:
        if not storage.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("storage must be memory:// or redis://host:port/db")
        return storage


class RateLimits:
    """The counting behind :class:`RateLimit`: owned by the gateway, closed when it stops."""

    def __init__(self, settings: RateLimitSettings) -> None:
        self.items = parse_many(settings.rate)
        self._pool: ConnectionPool | None = None
        if settings.storage.startswith("memory://"):
            storage = storage_from_string("async+memory://", wrap_exceptions=True)
        else:
            self._pool = ConnectionPool.from_url(settings.storage)
            storage = storage_from_string(
                f"async+{settings.storage}",
                implementation="redispy",
                key_prefix=settings.prefix,
                connection_pool=self._pool,  # type: ignore[arg-type]  # options typed narrowly
                wrap_exceptions=True,
            )
        assert isinstance(storage, Storage)
        self.limiter = MovingWindowRateLimiter(storage)

    async def exhausted(self, key: str) -> tuple[RateLimitItem, int] | None:
        """The first limit ``key`` has used up, with the seconds until it may ask again; each
        call counts as one request."""
        try:
            for item in self.items:
                if not await self.limiter.hit(item, key):
                    stats = await self.limiter.get_window_stats(item, key)
                    return item, max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError as exc:
            log.warning(
                "rate limit storage failed (%s); request let through",
                type(exc.storage_error).__name__,
            )
        return None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def caller_key(scope: Scope) -> str:
    """``key:<sha256>`` of the credentials sent, else ``ip:<client address>``."""
    authorization = Headers(scope=scope).get("authorization", "").strip()
    if authorization:
        credentials = authorization.split(" ", 1)[-1].strip()
        return "key:" + hashlib.sha256(credentials.encode()).hexdigest()
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class RateLimit:
    """ASGI middleware: every HTTP request but probes and metrics, and every WebSocket
    connection, counts against its caller."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        exhausted = await self.limits.exhausted(caller_key(scope))
        if exhausted is None:
            await self.app(scope, receive, send)
            return
        item, retry_after = exhausted
        if scope["type"] == "websocket":
            # Refusing before accepting answers the handshake with HTTP 403; 1013 says why.
            await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
            return
        message = (
            f"Rate limit of {item} exceeded for this caller (limits.rate_limit.rate); "
            f"retry after {retry_after} s."
        )
        error = {
            "message": message,
            "extensions": {"code": "RATE_LIMITED", "limit": str(item), "retryAfter": retry_after},
        }
        await send_json(send, 429, {"errors": [error]}, {"retry-after": str(retry_after)})
