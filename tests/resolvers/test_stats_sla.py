"""SLA due dates: configured days, a source's own due dates, and one rule everywhere.

``dueAt``, ``isOverdue``, the ``overdue`` figures of ``caseStats`` and the ground truth must
agree. The configured days are chosen so the due threshold falls in a quiet gap between
received times: a case does not become overdue while the test runs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import pytest

from gateway.config import ConfigError, GatewayConfig, parse_config
from samples.generator import SyntheticCase
from tests.conftest import DemoData, RunningGateway, running
from tests.resolvers.expected import (
    ALL_SOURCES,
    OPEN311_SOURCE,
    POSTGRES_SOURCE,
    REST_SOURCE,
    SQLITE_SOURCE,
    all_cases,
)

FINISHED = {"REJECTED", "RESOLVED", "CLOSED", "DUPLICATE", "CANCELLED"}


def sample_config_with(
    demo_data: DemoData, top: str, edits: Sequence[tuple[str, str]] = ()
) -> GatewayConfig:
    """The sample configuration with its own top-level ``sla:`` line replaced by ``top``."""
    text = files("samples").joinpath("config.yaml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^sla: .*$", top, text)
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    parsed = parse_config(text, demo_data.environ())
    return replace(demo_data.config, sources=parsed.sources)


def quiet_moment(near: datetime) -> datetime:
    """The middle of the widest gap between received times within two weeks of ``near``."""
    times = sorted(
        e.case.received_at for e in all_cases() if abs(e.case.received_at - near).days < 14
    )
    gap, start = max((b - a, a) for a, b in itertools.pairwise(times))
    assert gap > timedelta(minutes=30)
    return start + gap / 2


@dataclass
class Sla:
    default_days: float
    land_days: float

    def days(self, category: str) -> float:
        return self.land_days if category == "LAND_DISPUTE" else self.default_days


def choose_sla() -> Sla:
    now = datetime.now(UTC)
    default_cut = quiet_moment(datetime(2026, 4, 1, tzinfo=UTC))
    land_cut = quiet_moment(datetime(2026, 2, 1, tzinfo=UTC))
    return Sla((now - default_cut) / timedelta(days=1), (now - land_cut) / timedelta(days=1))


@pytest.fixture
async def sla_gateway(demo_data: DemoData) -> AsyncIterator[tuple[RunningGateway, Sla]]:
    """Damrongdhama and the city platform keep their own due dates; Khon Kaen maps none, so
    the configured days apply; the 1111 service's are overridden by configuration."""
    sla = choose_sla()
    config = sample_config_with(
        demo_data,
        f"sla: {{default_days: {sla.default_days!r}, "
        f"categories: {{LAND_DISPUTE: {sla.land_days!r}}}}}",
        [
            ("      due_at: deadline\n", ""),
            ("  - id: pmoc-1111\n", "  - id: pmoc-1111\n    sla: {override_source_due: true}\n"),
        ],
    )
    started = await running(config)
    yield started, sla
    await started.client.aclose()
    await started.gateway.stop()


def due_in_truth(source: str, case: SyntheticCase, sla: Sla) -> datetime:
    if source in (POSTGRES_SOURCE, OPEN311_SOURCE):
        return case.due_at
    return case.received_at + timedelta(days=sla.days(case.category))


CASES = """
query($after: String, $filter: CaseFilterInput) {
  cases(first: 500, after: $after, filter: $filter) {
    edges { node { referenceNumber receivedAt dueAt isOverdue source { id } category { code } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def every_case(gateway: RunningGateway, filter: dict[str, Any]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gateway.query(CASES, {"after": after, "filter": filter})
        assert "errors" not in body, body["errors"]
        page = body["data"]["cases"]
        nodes.extend(edge["node"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


OVERDUE = """
query($filter: CaseFilterInput) {
  caseStats(groupBy: [SOURCE], filter: $filter) {
    asOf total { overdue open } buckets { key { code } overdue }
  }
}
"""


@pytest.mark.parametrize(
    "filter",
    [{}, {"category": ["LAND_DISPUTE", "ROADS"], "receivedFrom": "2026-01-01T00:00:00+07:00"}],
)
async def test_overdue_counts_equal_the_cases_that_say_they_are_overdue(
    sla_gateway: tuple[RunningGateway, Sla], filter: dict[str, Any]
) -> None:
    gateway, sla = sla_gateway
    body = await gateway.query(OVERDUE, {"filter": filter})
    assert "errors" not in body, body["errors"]
    stats = body["data"]["caseStats"]
    as_of = datetime.fromisoformat(stats["asOf"])
    nodes = await every_case(gateway, filter)
    by_source = {b["key"][0]["code"]: b["overdue"] for b in stats["buckets"]}
    for source in ALL_SOURCES:
        overdue_cases = [n for n in nodes if n["source"]["id"] == source and n["isOverdue"]]
        assert by_source.get(source, 0) == len(overdue_cases), source
    assert stats["total"]["overdue"] == sum(1 for n in nodes if n["isOverdue"])
    # neither all nor none: the configured days split the cases
    assert 0 < stats["total"]["overdue"] < stats["total"]["open"]
    # and the ground truth agrees, source by source
    wanted = {(n["source"]["id"], datetime.fromisoformat(n["receivedAt"])) for n in nodes}
    truth: dict[str, int] = dict.fromkeys(ALL_SOURCES, 0)
    for expected in all_cases():
        case = expected.case
        if case.status in FINISHED:
            continue
        due = due_in_truth(expected.source, case, sla)
        if due < as_of and (expected.source, case.received_at) in wanted:
            truth[expected.source] += 1
    assert {s: by_source.get(s, 0) for s in ALL_SOURCES} == truth


async def test_due_at_is_the_source_date_or_received_plus_the_category_days(
    sla_gateway: tuple[RunningGateway, Sla],
) -> None:
    gateway, sla = sla_gateway
    nodes = await every_case(gateway, {"source": [SQLITE_SOURCE, REST_SOURCE, POSTGRES_SOURCE]})
    truth = {
        (e.source, e.case.received_at): due_in_truth(e.source, e.case, sla) for e in all_cases()
    }
    categories = set()
    for node in nodes:
        source = node["source"]["id"]
        due = datetime.fromisoformat(node["dueAt"])
        received = datetime.fromisoformat(node["receivedAt"])
        assert abs(due - truth[(source, received)]) < timedelta(seconds=1), node
        if source != POSTGRES_SOURCE:
            days = sla.days(node["category"]["code"])
            assert abs(due - received - timedelta(days=days)) < timedelta(seconds=1)
            categories.add(node["category"]["code"])
    assert "LAND_DISPUTE" in categories and len(categories) > 2


def test_a_source_sla_lays_over_the_top_level_one_key_by_key(demo_data: DemoData) -> None:
    config = sample_config_with(
        demo_data,
        "sla: {default_days: 20, categories: {LAND_DISPUTE: 30, ROADS: 10}}",
        [
            (
                "  - id: khonkaen-office\n",
                "  - id: khonkaen-office\n"
                "    sla: {default_days: 7, categories: {ROADS: 3}, override_source_due: true}\n",
            )
        ],
    )
    settings = {source.id: source.sla for source in config.sources}
    khonkaen, damrongdhama = settings[SQLITE_SOURCE], settings[POSTGRES_SOURCE]
    assert (khonkaen.days_for("ROADS"), khonkaen.days_for("LAND_DISPUTE")) == (3, 30)
    assert khonkaen.days_for("WATER") == 7 and khonkaen.override_source_due is True
    assert (damrongdhama.days_for("ROADS"), damrongdhama.days_for("WATER")) == (10, 20)
    assert not damrongdhama.override_source_due
    received = datetime(2026, 1, 1, tzinfo=UTC)
    own = datetime(2026, 1, 5, tzinfo=UTC)
    assert damrongdhama.due_at(received, "WATER", own) == own
    assert damrongdhama.due_at(received, "WATER", None) == received + timedelta(days=20)
    assert khonkaen.due_at(received, "ROADS", own) == received + timedelta(days=3)


def test_without_any_sla_key_the_default_is_fifteen_days(demo_data: DemoData) -> None:
    config = sample_config_with(demo_data, "")
    sla = config.sources[0].sla
    assert sla.days_for("LAND_DISPUTE") == 15
    received = datetime(2026, 1, 1, tzinfo=UTC)
    assert sla.due_at(received, "ROADS", None) == received + timedelta(days=15)


def test_the_sample_configuration_sets_the_demo_agencies_practice(demo_data: DemoData) -> None:
    sla = demo_data.config.sources[1].sla
    assert (sla.days_for("LAND_DISPUTE"), sla.days_for("NUISANCE"), sla.days_for("ROADS")) == (
        30,
        7,
        15,
    )
    assert not sla.override_source_due


def test_an_sla_for_an_undeclared_category_is_a_config_error(demo_data: DemoData) -> None:
    with pytest.raises(ConfigError, match=r"sla\.categories\.PARKING: not declared"):
        sample_config_with(demo_data, "sla: {categories: {PARKING: 3}}")


async def test_the_overdue_filter_lists_exactly_what_case_stats_counts(
    sla_gateway: tuple[RunningGateway, Sla],
) -> None:
    gateway, _ = sla_gateway
    for filter in ({}, {"category": ["LAND_DISPUTE", "WATER"]}):
        body = await gateway.query(OVERDUE, {"filter": filter})
        stats = body["data"]["caseStats"]
        counted = {b["key"][0]["code"]: b["overdue"] for b in stats["buckets"]}
        overdue = await every_case(gateway, {**filter, "overdue": True})
        others = await every_case(gateway, {**filter, "overdue": False})
        assert overdue and all(node["isOverdue"] for node in overdue)
        assert others and not any(node["isOverdue"] for node in others)
        listed = {s: sum(1 for n in overdue if n["source"]["id"] == s) for s in ALL_SOURCES}
        assert listed == {s: counted.get(s, 0) for s in ALL_SOURCES}
        everything = await every_case(gateway, filter)
        assert len(overdue) + len(others) == len(everything)
        total = await gateway.query(
            "query($f: CaseFilterInput) { cases(filter: $f, first: 0) { totalCount } }",
            {"f": {**filter, "overdue": True}},
        )
        assert total["data"]["cases"]["totalCount"] == stats["total"]["overdue"]
