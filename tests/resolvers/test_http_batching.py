"""What a round trip to an API agency costs in real HTTP requests.

One adapter call is one round trip (``complaint_graph_source_requests_total``), but an API
agency may need several HTTP requests for it: one per ``list.pagination.page_size`` cases read,
one per ``max_batch`` ids of a batch. ``complaint_graph_source_http_requests_total`` counts what
was really sent; here it is checked against what the agencies' servers saw. Both demo agencies
list each case's history inside it (``history.in_list``): a page carries its timelines, and its
referrals are read by a batch fetch of the page's cases.
"""

from __future__ import annotations

import collections
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.demo import DEMO_PMOC_KEY
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer
from sources.open311 import Open311Settings
from sources.rest import RestSettings
from tests.conftest import (
    OPEN311_CASES,
    OPEN311_SEED,
    REST_CASES,
    REST_SEED,
    DemoData,
    RunningGateway,
    running,
)
from tests.resolvers.expected import OPEN311_SOURCE, REST_SOURCE

API_SOURCES = (REST_SOURCE, OPEN311_SOURCE)

PAGE = """
query Page($first: Int, $filter: CaseFilterInput) {
  cases(first: $first, filter: $filter) {
    edges { node { source { id } timeline { at } referrals { at } } }
  }
}
"""


class Counting:
    """An agency app behind a counter of the HTTP requests it received."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.hits += 1
        await self.app(scope, receive, send)


@dataclass
class Agencies:
    apps: dict[str, Counting]
    gateway: RunningGateway


@pytest.fixture
def counted_servers() -> Iterator[dict[str, tuple[Counting, ThreadedServer]]]:
    apps = {
        REST_SOURCE: Counting(
            pmoc_1111.create_app(seed=REST_SEED, count=REST_CASES, api_key=DEMO_PMOC_KEY)
        ),
        OPEN311_SOURCE: Counting(traffy.create_app(seed=OPEN311_SEED, count=OPEN311_CASES)),
    }
    servers = {source: (app, ThreadedServer(app)) for source, app in apps.items()}
    for _, server in servers.values():
        server.start()
    yield servers
    for _, server in servers.values():
        server.stop()


@pytest.fixture
async def agencies(
    demo_data: DemoData, counted_servers: dict[str, tuple[Counting, ThreadedServer]]
) -> AsyncIterator[Agencies]:
    """The demo gateway with its two API agencies behind counting servers."""
    urls = {
        REST_SOURCE: counted_servers[REST_SOURCE][1].url,
        OPEN311_SOURCE: f"{counted_servers[OPEN311_SOURCE][1].url}/open311/v2",
    }
    sources = tuple(
        s.model_copy(update={"base_url": urls[s.id]}) if s.id in urls else s
        for s in demo_data.config.sources
    )
    gateway = await running(replace(demo_data.config, sources=sources))
    yield Agencies({s: app for s, (app, _) in counted_servers.items()}, gateway)
    await gateway.client.aclose()
    await gateway.gateway.stop()


async def costs(
    agencies: Agencies, first: int, filter: dict[str, Any] | None = None
) -> tuple[dict[str, tuple[float, float, int]], dict[str, Any]]:
    """Per API source: (round trips, HTTP requests counted, HTTP requests the server saw)."""
    metrics = agencies.gateway.gateway.metrics
    before = {
        s: (metrics.round_trips(s), metrics.http_requests(s), agencies.apps[s].hits)
        for s in API_SOURCES
    }
    body = await agencies.gateway.query(PAGE, {"first": first, "filter": filter})
    assert "errors" not in body, body.get("errors")
    after = {
        s: (metrics.round_trips(s), metrics.http_requests(s), agencies.apps[s].hits)
        for s in API_SOURCES
    }
    delta = {
        s: (after[s][0] - before[s][0], after[s][1] - before[s][1], after[s][2] - before[s][2])
        for s in API_SOURCES
    }
    return delta, body


async def test_http_requests_counted_are_the_requests_sent(agencies: Agencies) -> None:
    for first, filter in ((10, None), (300, None), (50, {"status": ["REJECTED"]})):
        delta, _ = await costs(agencies, first, filter)
        for source, (_, counted, seen) in delta.items():
            assert counted == seen > 0, (source, first, filter)


async def test_up_to_a_page_and_a_batch_one_round_trip_is_one_request(agencies: Agencies) -> None:
    small, _ = await costs(agencies, 10)
    large, _ = await costs(agencies, 90)
    assert small == large
    # the page with its timelines, then one batch fetch of its cases for their referrals
    assert large == dict.fromkeys(API_SOURCES, (2, 2, 2))


async def test_past_a_page_or_a_batch_requests_grow_by_pages_and_chunks(
    agencies: Agencies,
) -> None:
    first = 500
    delta, body = await costs(agencies, first)
    held = collections.Counter(
        edge["node"]["source"]["id"] for edge in body["data"]["cases"]["edges"]
    )
    settings = {s.id: s for s in agencies.gateway.gateway.config.sources}
    pmoc, city = settings[REST_SOURCE], settings[OPEN311_SOURCE]
    assert isinstance(pmoc, RestSettings) and isinstance(city, Open311Settings)
    city_rest = city.as_rest()
    assert all(s.history is not None and s.history.in_list for s in (pmoc, city.as_rest()))
    expected = {
        # each source is asked for first + 1 cases and reads until it has one more than that
        REST_SOURCE: math.ceil((first + 2) / pmoc.list.pagination.page_size)
        + math.ceil(held[REST_SOURCE] / pmoc.fetch.max_batch),
        OPEN311_SOURCE: math.ceil((first + 2) / city_rest.list.pagination.page_size)
        + math.ceil(held[OPEN311_SOURCE] / city_rest.fetch.max_batch),
    }
    assert {s: (d[0], d[1]) for s, d in delta.items()} == {s: (2, expected[s]) for s in API_SOURCES}
    assert all(count > 2 for count in expected.values())  # this page does need more
