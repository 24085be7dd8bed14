"""An agency's pooled, healing HTTP client, shared by the HTTP kinds (rest, open311, graphql).

One :class:`httpx.AsyncClient` per source, made on first use, over a
:class:`~sources._transport.HealingTransport`: a cancelled or timed-out request retires its
pool (encode/httpcore#1093), so no connection is left that no request owns. Every request the
client sends (pages, chunks, batches, writes) is counted for
``complaint_graph_source_http_requests_total``.

The source's writers (``kind: rest``, ``kind: open311``) send through the same client: the
same connection limit, TLS context and healing as its reads. A write is sent once, never
retried here; the outbox (gateway/outbox.py) sends it again later under its idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import httpx

from sources._errors import SourceTimeout, SourceUnavailable
from sources._interface import Source
from sources._settings import Auth
from sources._transport import HealingTransport

__all__ = ["AgencyHttp", "HttpSettings", "HttpSource", "credentials"]


class HttpSettings(Protocol):
    """The keys every HTTP kind's settings have for its client."""

    @property
    def id(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def auth(self) -> Auth | None: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def timeout_seconds(self) -> float: ...


def credentials(settings: HttpSettings) -> tuple[dict[str, str], httpx.Auth | None]:
    """The headers to send (the configured ones, plus an API key or bearer token) and the
    httpx auth for HTTP basic, from the ``headers`` and ``auth`` keys."""
    headers = dict(settings.headers)
    configured = settings.auth
    if configured is None:
        return headers, None
    if configured.type == "api_key":
        headers[configured.header] = configured.value or ""
        return headers, None
    if configured.type == "bearer":
        headers["Authorization"] = f"Bearer {configured.token}"
        return headers, None
    return headers, httpx.BasicAuth(configured.username or "", configured.password or "")


class AgencyHttp:
    """One source's HTTP client: made on first use, closed with the source, its connections
    renewed before an open circuit's trial call."""

    def __init__(
        self, settings: HttpSettings, *, base_url: str = "", params: Mapping[str, str] | None = None
    ) -> None:
        self._settings = settings
        self._base_url = base_url
        self._params = dict(params or {})
        self._client: httpx.AsyncClient | None = None
        self.transport: HealingTransport | None = None
        """The current client's transport (None until the client is made, and once closed)."""
        self._observer: Callable[[str], None] | None = None

    def client(self) -> httpx.AsyncClient:
        """The pooled client, made on first use: the one place its transport is chosen."""
        if self._client is None:
            settings = self._settings
            headers, auth = credentials(settings)
            limits = httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            )
            # One TLS context for every pool the transport makes: httpx builds a new one per
            # transport by default, reading the whole CA bundle (15-60 ms of a blocked event
            # loop), and a failing agency retires a pool on every failed request. Under
            # truncated answers that held the loop long enough for whole requests to miss
            # their deadline (issue 19).
            tls = httpx.create_ssl_context()
            self.transport = HealingTransport(
                lambda: httpx.AsyncHTTPTransport(verify=tls, limits=limits),
                grace_seconds=settings.timeout_seconds,
            )
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=headers,
                auth=auth,
                transport=self.transport,
                timeout=settings.timeout_seconds,
                event_hooks={"request": [self._count_request]},
            )
        return self._client

    def observe(self, observer: Callable[[str], None]) -> None:
        """Have ``observer(source id)`` called for every request the client sends."""
        self._observer = observer

    async def _count_request(self, request: httpx.Request) -> None:
        if self._observer is not None:
            self._observer(self._settings.id)

    async def send(
        self,
        method: Literal["GET", "POST", "PUT", "PATCH"],
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        query: bool = True,
    ) -> httpx.Response:
        """One request, sent once; a timeout or a failure to connect or read is a source error.
        The answer's status is the caller's to judge.

        ``query``: whether the source's own query parameters (``params`` of the client, e.g.
        the read api_key) go with it, under the request's own ``params``. A GeoReport v2 POST
        carries its api_key and jurisdiction in its form instead."""
        if query and self._params:
            params = {**self._params, **(params or {})}
        try:
            return await self.client().request(
                method, url, params=params, json=json, data=data, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise SourceTimeout(self._settings.id, f"HTTP timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                self._settings.id, f"HTTP request failed ({type(exc).__name__})"
            ) from exc

    def renew(self) -> None:
        """The next requests go out on new connections (the circuit's trial call)."""
        if self.transport is not None:
            self.transport.renew()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self.transport = None


class HttpSource(Source):
    """A source whose every round trip goes through one :class:`AgencyHttp` (``_http``, set by
    the kind's ``__init__``): opening, closing, counting requests and renewing connections are
    the client's."""

    _http: AgencyHttp

    async def open(self) -> None:
        self._http.client()

    async def close(self) -> None:
        await self._http.aclose()

    def observe_http(self, observer: Callable[[str], None]) -> None:
        self._http.observe(observer)

    def refresh_connections(self) -> None:
        self._http.renew()
