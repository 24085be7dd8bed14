"""The ASGI application: configuration in, a running complaint graph out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from gateway.auth import Authenticator
from gateway.bus import RedisBus
from gateway.config import GatewayConfig, load_config
from gateway.dashboard import routes as dashboard_routes
from gateway.events import EventBroker
from gateway.export import CsvExport
from gateway.graphql_view import GraphQLView
from gateway.limits import limit_middleware
from gateway.logs import configure_logging
from gateway.metrics import Metrics
from gateway.open311 import Open311Endpoint
from gateway.outbox import Outbox
from gateway.ratelimit import RateLimits
from gateway.request_context import RequestContextMiddleware
from gateway.shutdown import GracefulShutdown, OpenWebSockets
from gateway.sse_single import SingleConnectionStreams
from gateway.tracing import Tracing
from gateway.webhooks import WebhookReceiver
from resolvers import CategoryInfo, Directory, Limits, build_schema
from resolvers.federation import federated_schema
from resolvers.limits import SourceScan
from sources import (
    ConnectionBudget,
    Federation,
    Source,
    SourceError,
    UsesConnections,
    source_class,
)
from sources._guard import Guarded

log = logging.getLogger("complaint_graph")

CONFIG_VARIABLE = "COMPLAINT_GRAPH_CONFIG"


class Gateway:
    """The parts of one running gateway, kept apart from the ASGI app so tests can reach them."""

    def __init__(
        self, config: GatewayConfig, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        self.tracing = Tracing.from_settings(config.observability.tracing, tracer_provider)
        self.connections = ConnectionBudget(
            config.limits.source_connections, config.limits.source_idle_seconds
        )
        self.federation = Federation(
            (
                Guarded(
                    self._sharing_connections(source_class(settings.kind)(settings)),
                    settings.timeout_seconds,
                    settings.resilience,
                    self._observe_round_trip,
                )
                for settings in config.sources
            ),
            coverage={settings.id: settings.coverage for settings in config.sources},
            count_cache_seconds={s.id: s.count_cache_seconds for s in config.sources},
            count_estimate_seconds={s.id: s.count_estimate_seconds for s in config.sources},
            observe_plan=self.metrics.observe_plan,
        )
        self.directory = Directory(
            self.federation,
            [CategoryInfo(c.code, c.name_th, c.name_en) for c in config.categories],
        )
        self.limits = Limits(
            max_page_size=config.limits.max_page_size,
            default_page_size=config.limits.default_page_size,
            # depth, aliases, tokens, cost (with what sources must scan), timeout
            query=replace(config.limits.query_limits(), source_scans=self._scans()),
            dataloader_batching=config.limits.dataloader_batching,
        )
        rate_limit = config.limits.rate_limit
        self.rate_limits = RateLimits(rate_limit) if rate_limit is not None else None
        self.authenticator = Authenticator(config.auth)  # who calls: keys, tokens, anonymous
        self.outbox = Outbox(  # writes into agencies' systems (gateway/outbox.py)
            config.writes,
            config.auth.key_store,
            config.sources,
            self.authenticator.audit,
            self.federation.sources,  # writes go through the guarded sources
        )
        self.events = (
            EventBroker(
                self.federation,
                {s.id: s.poll_seconds for s in config.sources},
                batch=config.events.batch,
                queue_size=config.events.queue_size,
                bus=RedisBus(config.events.redis_url, config.events.redis_prefix)
                if config.events.redis_url
                else None,
            )
            if config.events.enabled
            else None
        )
        self.metrics.watch(self.federation.sources.values(), self.events)
        if self.events is not None:
            self.outbox.publish = self.events.publish_changed  # writes are events at once
        for source in self.federation.sources.values():
            source.observe_http(self.metrics.observe_http_request)

    def _scans(self) -> tuple[SourceScan, ...]:
        """Sources that apply some filters after fetching, for the cost estimate."""
        scans = []
        for source in self.federation.sources.values():
            capabilities = source.capabilities
            if capabilities.scan_limit is not None:
                pushed = capabilities.pushed_down_filters
                scans.append(SourceScan(source.id, pushed, capabilities.scan_limit))
        return tuple(scans)

    def _sharing_connections(self, source: Source) -> Source:
        """A source that holds database connections counts them in the gateway's budget."""
        if isinstance(source, UsesConnections):
            source.budget = self.connections
        return source

    def _observe_round_trip(
        self, source: str, operation: str, seconds: float, batch_size: int, ok: bool
    ) -> None:
        self.metrics.observe_round_trip(source, operation, seconds, batch_size, ok)
        self.tracing.observe_round_trip(source, operation, seconds, batch_size, ok)

    async def start(self) -> None:
        """Open every source; one that is down is logged and retried on first use."""
        results = await asyncio.gather(
            *(source.open() for source in self.federation.sources.values()),
            return_exceptions=True,
        )
        for source, result in zip(self.federation.sources.values(), results, strict=True):
            if isinstance(result, SourceError):
                log.warning("source %s not ready at start-up: %s", source.id, result)
            elif isinstance(result, BaseException):
                raise result
        if self.events is not None:
            await self.events.start()
        await self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        if self.events is not None:
            await self.events.stop()
        await self.federation.close()
        if self.rate_limits is not None:
            await self.rate_limits.close()
        await self.authenticator.close()
        self.tracing.shutdown()

    def readiness(self) -> dict[str, Any]:
        sources: dict[str, Any] = {}
        for source in self.federation.sources.values():
            health = source.health()
            if health is None:
                continue
            sources[source.id] = {
                "status": health.status,
                "circuit": health.circuit,
                "last_error": health.last_error,
                "last_error_at": _iso(health.last_error_at),
                "last_success_at": _iso(health.last_success_at),
                "last_latency_ms": None
                if health.last_latency_seconds is None
                else round(health.last_latency_seconds * 1000, 3),
            }
        down = [s for s in sources.values() if s["status"] == "DOWN"]
        status = (
            "ready" if not down else ("unavailable" if len(down) == len(sources) else "degraded")
        )
        events = (
            None
            if self.events is None
            else {
                "watching": self.events.ready.is_set(),
                "sources": self.events.watched,
                "leading": None if self.events.bus is None else sorted(self.events.bus.leading),
                "subscribers": self.events.subscriber_count,
            }
        )
        # With ``serve --workers N`` each process has its own sources and subscribers: the pid
        # says which one answered.
        return {"status": status, "process": os.getpid(), "sources": sources, "events": events}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def app_from_environment() -> Starlette:
    """The app for ``uvicorn --factory`` (one per worker process): config path from the env."""
    path = os.environ.get(CONFIG_VARIABLE)
    if not path:
        raise RuntimeError(f"{CONFIG_VARIABLE} must name the configuration file")
    config = load_config(path)
    configure_logging(config.observability)
    return create_app(config)


def create_app(
    config: GatewayConfig,
    *,
    tracer_provider: TracerProvider | None = None,
    graphiql_headers: Mapping[str, str] | None = None,
) -> Starlette:
    """``tracer_provider`` overrides the configured tracing (tests pass an in-memory one);
    ``graphiql_headers`` fill GraphiQL's headers editor (the demo's published key)."""
    gateway = Gateway(config, tracer_provider)
    view = GraphQLView(
        federated_schema() if config.federation.enabled else build_schema(),
        federation=gateway.federation,
        directory=gateway.directory,
        limits=gateway.limits,
        events=gateway.events,
        metrics=gateway.metrics,
        tracing=gateway.tracing,
        subscription_protocols=(
            GRAPHQL_TRANSPORT_WS_PROTOCOL,
            GRAPHQL_WS_PROTOCOL,
            GRAPHQL_SSE_PROTOCOL,  # for clients behind proxies that block WebSocket
        ),
        graphql_ide="graphiql" if config.limits.graphiql else None,
    )
    view.authenticator = gateway.authenticator
    view.graphiql_headers = graphiql_headers
    view.writes = gateway.outbox
    view.clock = config.clock.now
    websockets = OpenWebSockets(view)  # closed with 1001 Going Away on graceful shutdown
    streams = SingleConnectionStreams(view)  # graphql-sse's single connection mode, then view

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Each source's health; 503 only when no source can answer at all."""
        report = gateway.readiness()
        return JSONResponse(report, status_code=503 if report["status"] == "unavailable" else 200)

    async def root(request: Request) -> Response:
        return RedirectResponse("/graphql")

    open311 = Open311Endpoint(
        gateway.federation, gateway.directory, gateway.authenticator, gateway.outbox
    )
    app = Starlette(
        routes=[
            # First: the router tries each route in turn, and nearly every request is this one.
            Route("/graphql", streams, methods=["GET", "POST", "PUT", "DELETE"]),
            *open311.routes(),
            *dashboard_routes(),  # /dashboard and its bundled /static files
            Route("/", root),
            Route(
                "/export.csv",
                CsvExport.for_view(view, config.limits.max_page_size).endpoint,
                methods=["GET", "POST"],
            ),
            WebSocketRoute("/graphql", websockets),
            Route("/metrics", gateway.metrics.endpoint),
            Route("/healthz", healthz),
            Route(
                "/webhooks/{source}",
                WebhookReceiver(gateway.events, config.sources).receive,
                methods=["POST"],
            ),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(RequestContextMiddleware),  # X-Request-ID, access log lines
            *limit_middleware(config.limits, gateway.rate_limits),  # rate, body, trusted docs
        ],
    )
    app.state.gateway = gateway
    app.state.shutdown = GracefulShutdown(websockets, gateway.events, streams)
    return app
