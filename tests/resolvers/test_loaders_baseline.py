"""The benchmark's N+1 baseline (``limits.dataloader_batching: false``) really costs N+1."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from tests.conftest import DemoData, RunningGateway, serving
from tests.resolvers.expected import POSTGRES_SOURCE

VARIABLE = "COMPLAINT_GRAPH_DATALOADERS"  # how the baseline was once switched on

PAGE = """
query Page($first: Int, $source: [String!]) {
  cases(first: $first, filter: {source: $source}) { edges { node { id timeline { at } } } }
}
"""


async def timeline_round_trips(gateway: RunningGateway, first: int) -> tuple[float, object]:
    before = gateway.round_trips(POSTGRES_SOURCE, "load_timelines")
    body = await gateway.query(PAGE, {"first": first, "source": [POSTGRES_SOURCE]})
    assert "errors" not in body
    assert len(body["data"]["cases"]["edges"]) == first
    return gateway.round_trips(POSTGRES_SOURCE, "load_timelines") - before, body["data"]


async def test_loaders_off_costs_one_timeline_round_trip_per_case(demo_data: DemoData) -> None:
    # batched, the PostgreSQL page carries its timelines: no round trip of their own
    async with serving(demo_data.config) as batched:
        trips, data = await timeline_round_trips(batched, 25)
        assert trips == 0
    config = demo_data.config
    limits = config.limits.model_copy(update={"dataloader_batching": False})
    async with serving(replace(config, limits=limits)) as unbatched:
        trips, same = await timeline_round_trips(unbatched, 25)
        assert trips == 25
    assert same == data  # the same answer, only dearer


def test_the_baseline_is_not_read_from_the_environment() -> None:
    """Production modules take the baseline from configuration, not from an environment
    variable read at import (the benchmark sets ``limits.dataloader_batching`` in the file it
    serves); the variable's name may stay in a docstring, never as a value read."""
    root = Path(__file__).resolve().parents[2]
    for package in ("gateway", "resolvers", "sources"):
        for module in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(module.read_text("utf-8"))):
                is_name = isinstance(node, ast.Constant) and node.value == VARIABLE
                assert not is_name, f"{module}:{getattr(node, 'lineno', '?')} reads {VARIABLE}"
