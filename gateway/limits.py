"""The ``limits:`` section of the configuration, and the request body limit.

What a document may ask (depth, aliases, tokens, cost, time) is enforced inside the graph
(:mod:`resolvers.limits`); this module reads those numbers from the configuration, and refuses
request bodies over ``max_body_bytes`` before anything parses them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway._asgi import replay, send_json
from gateway.ratelimit import RateLimit, RateLimits, RateLimitSettings
from gateway.trusted_documents import TrustedDocuments, TrustedDocumentSettings
from resolvers.limits import QueryLimits
from sources import Strict


class LimitSettings(Strict):
    """``limits:``: what one request may ask of the gateway. Every limit names itself in the
    error that enforces it."""

    max_page_size: int = Field(default=500, ge=1)
    default_page_size: int = Field(default=20, ge=1)
    max_depth: int = Field(default=20, ge=1, description="Fields nested on one path.")
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=5000, ge=1, description="Lexical tokens in a document.")
    max_cost: int = Field(default=10000, ge=1, description="See README: the cost model.")
    list_size: int = Field(
        default=5, ge=1, description="Elements assumed for a list without `first` (cost)."
    )
    scanned_case_cost: float = Field(
        default=0.02,
        ge=0,
        description="Cost of each case a source reads only to apply a filter it cannot apply "
        "itself (a list search by text on an API without a text parameter reads every page).",
    )
    timeout_seconds: float = Field(default=30, gt=0, description="The whole operation.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    introspection: bool | Literal["key-only"] = True
    graphiql: bool = True
    trusted_documents: TrustedDocumentSettings | None = None
    rate_limit: RateLimitSettings | None = Field(
        default_factory=RateLimitSettings,
        description="On by default (100 requests a minute per caller); null turns it off.",
    )
    dataloader_batching: bool = Field(
        default=True,
        description=(
            "false: every relation load is its own round trip (the N+1 pattern), a baseline "
            "for bench/ only; never in production."
        ),
    )
    source_connections: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Database connections in use at once across all SQL sources (a read waits for a "
            "free one) and open at once (a read that needs a new one first closes the idle "
            "connections of the pool used longest ago); unset: each pool's own size is the "
            "only bound. Sources reading the same database share one pool."
        ),
    )
    source_idle_seconds: float = Field(
        default=60,
        gt=0,
        description=(
            "A database pool unused this long closes its connections (the next read opens "
            "one again): a hundred idle sources hold no connections."
        ),
    )

    def query_limits(self) -> QueryLimits:
        """The limits the graph applies to each operation."""
        trusted = self.trusted_documents
        return QueryLimits(
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
            max_tokens=self.max_tokens,
            max_cost=self.max_cost,
            list_size=self.list_size,
            timeout_seconds=self.timeout_seconds,
            scanned_case_cost=self.scanned_case_cost,
            introspection=self.introspection,
            trusted_documents=None if trusted is None else trusted.documents(),
            trusted_documents_for=("everyone" if trusted is None else trusted.required_for),
        )


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodySizeLimit:
    """Answers 413 to a request whose body is over ``limit`` bytes, announced or not.

    The body is read here, at most ``limit`` bytes of it, and handed on whole, so nothing after
    this middleware ever holds more than the limit in memory.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        announced = Headers(scope=scope).get("content-length", "")
        if announced.isdigit() and int(announced) > self.limit:
            await self._refuse(send, int(announced))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, announced: int | None) -> None:
        extensions: dict[str, object] = {"code": "REQUEST_TOO_LARGE", "limit": self.limit}
        if announced is not None:
            extensions["value"] = announced
        message = f"The request body is larger than {self.limit} bytes (limits.max_body_bytes)."
        await send_json(send, 413, {"errors": [{"message": message, "extensions": extensions}]})


def limit_middleware(settings: LimitSettings, rate_limits: RateLimits | None) -> list[Middleware]:
    """The HTTP-level limits, outermost first: rate, body size, then trusted document ids."""
    middleware = []
    if rate_limits is not None:
        middleware.append(Middleware(RateLimit, limits=rate_limits))
    middleware.append(Middleware(BodySizeLimit, limit=settings.max_body_bytes))
    if settings.trusted_documents is not None:
        documents = settings.trusted_documents.documents()
        middleware.append(Middleware(TrustedDocuments, documents=documents))
    return middleware
