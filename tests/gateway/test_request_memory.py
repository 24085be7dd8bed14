"""A finished request leaves nothing it loaded for the cyclic garbage collector to find."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sources import CaseRecord, TimelineEntry
from tests.conftest import RunningGateway

PAGE = """query ($first: Int) { cases(first: $first) { edges { node {
  referenceNumber status category { code } timeline { at status } } } } }"""


@pytest.fixture
def collector_paused() -> Iterator[None]:
    """No automatic collection while the test runs: what is garbage stays findable."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        gc.collect()


async def test_loaded_records_go_with_the_response_not_with_a_collection(
    gateway: RunningGateway, collector_paused: None
) -> None:
    body = await gateway.query(PAGE, {"first": 50})
    assert len(body["data"]["cases"]["edges"]) == 50
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what a collection finds unreachable, to look at it
    for _ in range(3):
        body = await gateway.query(PAGE, {"first": 50})
        assert "errors" not in body
    gc.collect()
    stranded = [o for o in gc.garbage if isinstance(o, CaseRecord | TimelineEntry)]
    # Before the loaders were cleared, each request's 50 cases and their timelines waited
    # in a reference cycle (strawberry's request objects) for the next full collection.
    assert stranded == []
