"""The benchmark's N+1 baseline (``COMPLAINT_GRAPH_DATALOADERS=off``) really costs N+1."""

from __future__ import annotations

import pytest

from resolvers import loaders
from tests.conftest import RunningGateway
from tests.resolvers.expected import POSTGRES_SOURCE

PAGE = """
query Page($first: Int, $source: [String!]) {
  cases(first: $first, filter: {source: $source}) { edges { node { id timeline { at } } } }
}
"""


async def timeline_round_trips(gateway: RunningGateway, first: int) -> float:
    before = gateway.round_trips(POSTGRES_SOURCE, "load_timelines")
    body = await gateway.query(PAGE, {"first": first, "source": [POSTGRES_SOURCE]})
    assert "errors" not in body
    assert len(body["data"]["cases"]["edges"]) == first
    return gateway.round_trips(POSTGRES_SOURCE, "load_timelines") - before


async def test_loaders_off_costs_one_timeline_round_trip_per_case(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # batched, the PostgreSQL page carries its timelines: no round trip of their own
    assert await timeline_round_trips(gateway, 25) == 0
    monkeypatch.setattr(loaders, "BATCHING", False)  # what the environment variable sets
    assert await timeline_round_trips(gateway, 25) == 25
