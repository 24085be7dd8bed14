"""caseStats and the CSV export count only what the caller's cases query could list."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from tests.conftest import AccessWorld, RunningGateway
from tests.resolvers.expected import ALL_SOURCES
from tests.resolvers.test_access import ROLES, Caller, visible

BY_SOURCE = """{ caseStats(groupBy: [SOURCE]) {
  total { count } buckets { key { code } count } } }"""


@pytest.mark.parametrize("who", ROLES)
async def test_each_key_counts_exactly_the_cases_it_may_see(
    closed_gateway: RunningGateway, access_world: AccessWorld, who: str
) -> None:
    expected = visible(access_world, who)
    wanted = Counter(source for source, _ in expected)
    data = await Caller(closed_gateway, who).query(BY_SOURCE)
    stats = data["caseStats"]
    counted = {b["key"][0]["code"]: b["count"] for b in stats["buckets"]}
    assert {s: counted.get(s, 0) for s in ALL_SOURCES} == {s: wanted[s] for s in ALL_SOURCES}
    assert stats["total"]["count"] == len(expected)


@pytest.mark.parametrize("who", [ROLES[-1], ROLES[-3]])
async def test_an_agency_key_exports_only_its_visible_cases(
    closed_gateway: RunningGateway, access_world: AccessWorld, who: str
) -> None:
    response = await closed_gateway.client.post(
        "/export.csv",
        json={"query": "{ cases(first: 200) { edges { node { id } } } }"},
        headers={"authorization": f"Bearer {who}"},
    )
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["id"]
    assert len(rows) - 1 == len(visible(access_world, who))


async def test_no_key_exports_nothing(closed_gateway: RunningGateway) -> None:
    response = await closed_gateway.client.post(
        "/export.csv", json={"query": "{ caseStats(groupBy: []) { total { count } } }"}
    )
    assert response.status_code in (401, 403), response.text
