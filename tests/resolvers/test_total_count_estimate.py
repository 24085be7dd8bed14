"""``totalCount(estimate: true)``: the demo's agencies counted once, then estimated from those
counts page after page, while ``totalCount`` itself still counts every time."""

from __future__ import annotations

from tests.conftest import RunningGateway

PAGE = """
query Page($estimate: Boolean!) {
  cases(first: 5, filter: {status: [IN_PROGRESS]}) { totalCount(estimate: $estimate) }
}
"""


async def total(gateway: RunningGateway, estimate: bool) -> int:
    body = await gateway.query(PAGE, {"estimate": estimate})
    assert "errors" not in body, body["errors"]
    value: int = body["data"]["cases"]["totalCount"]
    return value


def counts(gateway: RunningGateway) -> float:
    return sum(
        gateway.round_trips(source, "count_cases") for source in gateway.gateway.federation.sources
    )


async def test_an_estimate_answers_from_the_last_counts_without_asking_again(
    gateway: RunningGateway,
) -> None:
    exact = await total(gateway, estimate=False)
    sources = counts(gateway)
    assert sources >= 4  # one count per agency
    assert await total(gateway, estimate=True) == exact
    assert await total(gateway, estimate=True) == exact
    assert counts(gateway) == sources  # estimates made no round trip
    assert await total(gateway, estimate=False) == exact
    assert counts(gateway) == 2 * sources  # the exact count still asks every agency
