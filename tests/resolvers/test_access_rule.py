"""One access rule (issue 19, finding 8): for every demo role and a sample of every source's
cases, "appears in a search" equals "opens by id" equals "opens by node" equals "opens in
Open311" (one request and the listing by ids), and a referral's counterpart resolves exactly
when its case is one the caller's search lists.

The BMA-TRAFFY key listed Damrongdhama case 30 (its city platform had returned the case there)
while ``case``, ``node`` and Open311 said it did not exist: the search and the by-id check
asked different questions. The sample below always holds such cases."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.conftest import AccessWorld, RunningGateway
from tests.resolvers.expected import ALL_SOURCES, POSTGRES_SOURCE
from tests.resolvers.test_access import (
    INSPECTOR,
    PAGE,
    ROLES,
    TRAFFY,
    Caller,
    Key,
    every_case,
    global_id,
    key_of,
)

PER_SOURCE = 6
"""Cases sampled per source on each side of the rule (listed / not listed), per role."""

OPEN = """query($id: ID!) {
  node(id: $id) { id }
  case(id: $id) { id referrals { counterpart { id } } }
}"""


async def searched(caller: Caller) -> set[Key]:
    """Every case the caller's search lists, all sources, page by page."""
    found: set[Key] = set()
    after = None
    while True:
        data = await caller.query(PAGE, {"filter": None, "after": after})
        found.update(key_of(edge["node"]["id"]) for edge in data["cases"]["edges"])
        if not data["cases"]["pageInfo"]["hasNextPage"]:
            return found
        after = data["cases"]["pageInfo"]["endCursor"]


def sample(world: AccessWorld, listed: set[Key], who: str) -> list[Key]:
    """A fixed sample per role: some listed and some unlisted cases of every source."""
    rng = random.Random(f"issue 19 {who}")
    chosen: list[Key] = []
    for source in ALL_SOURCES:
        cases = sorted((source, local_id) for local_id in every_case(world)[source])
        shown = [key for key in cases if key in listed]
        hidden = [key for key in cases if key not in listed]
        chosen += rng.sample(shown, min(PER_SOURCE, len(shown)))
        chosen += rng.sample(hidden, min(PER_SOURCE, len(hidden)))
    return chosen


async def opens_in_open311(gateway: RunningGateway, who: str, key: Key) -> bool | None:
    """Whether ``requests/{id}.json`` answers the case (None: its id holds a '/', which no
    path segment can carry)."""
    request_id = global_id(*key)
    if "/" in request_id:
        return None
    response = await gateway.client.get(
        f"/open311/v2/requests/{request_id}.json", headers={"authorization": f"Bearer {who}"}
    )
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def listed_in_open311(gateway: RunningGateway, who: str, keys: list[Key]) -> set[Key]:
    response = await gateway.client.get(
        "/open311/v2/requests.json",
        params={"service_request_id": ",".join(global_id(*key) for key in keys)},
        headers={"authorization": f"Bearer {who}"},
    )
    assert response.status_code == 200, response.text
    return {key_of(entry["service_request_id"]) for entry in response.json()}


def counterparts(opened: dict[str, Any] | None) -> list[str | None]:
    if opened is None:
        return []
    return [(r["counterpart"] or {}).get("id") for r in opened["referrals"]]


@pytest.mark.parametrize("who", ROLES)
async def test_a_case_appears_in_search_exactly_when_it_opens_by_id_node_and_open311(
    closed_gateway: RunningGateway, access_world: AccessWorld, who: str
) -> None:
    caller, inspector = Caller(closed_gateway, who), Caller(closed_gateway, INSPECTOR)
    listed = await searched(caller)
    cases = sample(access_world, listed, who)
    if who.endswith(TRAFFY):
        assert (POSTGRES_SOURCE, "30") in listed  # the case, listed
        cases.append((POSTGRES_SOURCE, "30"))
    in_listing = await listed_in_open311(closed_gateway, who, cases)
    for key in cases:
        expected = key in listed
        data = await caller.query(OPEN, {"id": global_id(*key)})
        assert (data["node"] is not None) == expected, (who, key, "node")
        assert (data["case"] is not None) == expected, (who, key, "case")
        assert (key in in_listing) == expected, (who, key, "Open311 requests.json")
        one = await opens_in_open311(closed_gateway, who, key)
        assert one is None or one == expected, (who, key, "Open311 requests/{id}.json")
        if data["case"] is None:
            continue
        everyone = await inspector.query(OPEN, {"id": global_id(*key)})
        for theirs, mine in zip(
            counterparts(everyone["case"]), counterparts(data["case"]), strict=True
        ):
            resolves = theirs is not None and key_of(theirs) in listed
            assert (mine is not None) == resolves, (who, key, "counterpart", theirs)
