"""Ask only who can answer: twenty provincial offices, each declaring its one province."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import AnonymousSettings, AuthSettings
from gateway.config import GatewayConfig
from gateway.demo import demo_config
from resolvers.access import Role
from samples import provincial
from sources import CaseFilter, SourceSettings
from sources._coverage import Coverage
from sources._settings import CoverageSettings
from tests.conftest import RunningGateway, serving

PROVINCES = [f"{code}" for code in (*range(10, 28), 30, 31)]  # 20 real province codes
PAGE = """
query Page($filter: CaseFilterInput, $first: Int) {
  cases(filter: $filter, first: $first) { totalCount edges { node { id title } } }
}
"""


def twenty_offices(tmp_path: Path) -> GatewayConfig:
    """20 copies of the demo's SQLite provincial office, each moved to one province and
    declaring it (``covers: {provinces: [...]}``)."""
    template = tmp_path / "template.sqlite"
    provincial.create_and_load(template, seed=7, count=60)
    demo = demo_config("postgresql://unused@127.0.0.1/unused", template, "http://x", "http://y")
    (office,) = [s for s in demo.sources if s.id == "khonkaen-office"]
    sources: list[SourceSettings] = []
    for code in PROVINCES:
        path = tmp_path / f"office-{code}.sqlite"
        shutil.copy(template, path)
        with sqlite3.connect(path) as db:
            db.execute("UPDATE petition_place SET changwat = ?", (code,))
        db.close()
        sources.append(
            office.model_copy(
                update={
                    "id": f"office-{code}",
                    "url": f"sqlite+aiosqlite:///{path}",
                    "covers": CoverageSettings(provinces=[code]),
                }
            )
        )
    return replace(
        demo,
        sources=tuple(sources),
        auth=AuthSettings(
            key_store=f"sqlite+aiosqlite:///{tmp_path / 'keys.sqlite'}",
            anonymous=AnonymousSettings(role=Role.INSPECTOR),  # as the suite's demo callers
        ),
    )


async def ask(gateway: RunningGateway, variables: dict[str, Any]) -> dict[str, Any]:
    response = await gateway.client.post(
        "/graphql",
        json={"query": PAGE, "variables": variables, "extensions": {"federation": True}},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    return body


async def test_a_province_filtered_page_asks_only_the_office_that_covers_it(
    tmp_path: Path,
) -> None:
    config = twenty_offices(tmp_path)
    ids = [source.id for source in config.sources]
    uncovered = replace(
        config, sources=tuple(s.model_copy(update={"covers": None}) for s in config.sources)
    )
    async with serving(config) as covered, serving(uncovered) as plain:
        before = {source: covered.round_trips(source) for source in ids}
        variables = {"filter": {"provinceCode": ["21"]}, "first": 10}
        body = await ask(covered, variables)
        asked = {s for s in ids if covered.round_trips(s) > before[s]}
        assert asked == {"office-21"}
        assert covered.round_trips("office-21", "search_cases") == 1
        assert covered.round_trips("office-21", "count_cases") == 1
        assert body["extensions"]["federation"] == [
            {
                "path": "cases",
                "operation": "page",
                "asked": ["office-21"],
                "skipped": 19,
                "roundTrips": 1,
            },
            {
                "path": "cases.totalCount",
                "operation": "count",
                "asked": ["office-21"],
                "skipped": 19,
            },
        ]
        metrics = covered.gateway.metrics
        assert metrics.federation_sources_total("page", "skipped") == 19
        assert metrics.federation_sources_total("count", "asked") == 1

        # the same answer as asking all twenty
        plain_before = {source: plain.round_trips(source) for source in ids}
        same = await ask(plain, variables)
        assert all(plain.round_trips(s) > plain_before[s] for s in ids)
        assert same["data"] == body["data"]
        assert body["data"]["cases"]["totalCount"] == 60
        assert len(body["data"]["cases"]["edges"]) == 10

        # a province no office covers asks none; unfiltered asks all
        none = await ask(covered, {"filter": {"provinceCode": ["40"]}, "first": 5})
        assert none["data"]["cases"] == {"totalCount": 0, "edges": []}
        assert none["extensions"]["federation"][0]["asked"] == []
        every = await ask(covered, {"first": 5})
        assert len(every["extensions"]["federation"][0]["asked"]) == 20


async def test_no_federation_report_unless_asked(tmp_path: Path) -> None:
    """The report names sources: an operator's question, given only when the request asks."""
    async with serving(twenty_offices(tmp_path)) as gateway:
        body = await gateway.query(PAGE, {"first": 1})
        assert "federation" not in (body.get("extensions") or {})


@pytest.mark.parametrize(
    ("coverage", "where", "asked"),
    [
        (Coverage(), CaseFilter(province_codes=frozenset({"10"})), True),
        (Coverage(frozenset({"10"})), CaseFilter(), True),
        (Coverage(frozenset({"10"})), CaseFilter(province_codes=frozenset({"10", "11"})), True),
        (Coverage(frozenset({"10"})), CaseFilter(province_codes=frozenset({"11"})), False),
        (Coverage(None, frozenset({"ROAD"})), CaseFilter(categories=frozenset({"ROAD"})), True),
        (Coverage(None, frozenset({"ROAD"})), CaseFilter(categories=frozenset({"WATER"})), False),
        (
            Coverage(frozenset({"10"}), frozenset({"ROAD"})),
            CaseFilter(province_codes=frozenset({"10"}), categories=frozenset({"WATER"})),
            False,
        ),
    ],
)
def test_coverage_rules_a_source_out_only_when_a_filter_excludes_it(
    coverage: Coverage, where: CaseFilter, asked: bool
) -> None:
    assert coverage.can_match(where) is asked


async def test_count_cache_seconds_reuses_total_count_per_filter(tmp_path: Path) -> None:
    """``count_cache_seconds`` on a source: a second page with the same filter counts nothing
    there; another filter counts afresh; a source without it counts every time."""
    config = twenty_offices(tmp_path)
    sources = tuple(
        s.model_copy(update={"count_cache_seconds": 600.0}) if s.id == "office-21" else s
        for s in config.sources
    )
    async with serving(replace(config, sources=sources)) as gateway:
        for _ in range(2):
            await ask(gateway, {"first": 1})
        assert gateway.round_trips("office-21", "count_cases") == 1
        assert gateway.round_trips("office-22", "count_cases") == 2
        await ask(gateway, {"first": 1, "filter": {"provinceCode": ["21"]}})
        assert gateway.round_trips("office-21", "count_cases") == 2
