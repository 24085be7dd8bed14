"""Relations carried with their cases: a page of cases with their timelines and referrals, and a
case in full detail, are each ONE round trip to a PostgreSQL agency; the answers are those of
the N+1 baseline, whose every relation is a round trip of its own."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from samples import links
from tests.conftest import DemoData, RunningGateway, serving
from tests.resolvers.expected import ALL_SOURCES, OPEN311_SOURCE, POSTGRES_SOURCE
from tests.resolvers.test_referrals import case_id

PAGE = """
query Page($first: Int!) {
  cases(first: $first, filter: {source: ["damrongdhama"]}) {
    edges { node {
      id referenceNumber title status receivedAt
      location { province { code nameTh } }
      timeline { at status sourceStatus note }
      referrals { at kind status receivingReference secrecy toAgency { code } }
    } }
  }
}
"""

DETAIL = """
query Detail($id: ID!) {
  case(id: $id) {
    id referenceNumber title description status sourceStatus channel
    receivedAt updatedAt dueAt closedAt sourceCategory
    category { code nameTh } owningAgency { code }
    location {
      province { code nameTh } district { code nameTh } subdistrict { code nameTh }
      address latitude longitude
    }
    timeline { at status sourceStatus note }
    referrals { at kind status receivingReference secrecy toAgency { code } }
  }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    id
    ... on Case { title timeline { at note } referrals { at receivingReference } }
  }
}
"""


async def spent(gateway: RunningGateway, document: str, variables: dict[str, Any]) -> Any:
    """The answer's data and the round trips it cost, by source (those it cost any)."""
    before = {s: gateway.round_trips(s) for s in ALL_SOURCES}
    body = await gateway.query(document, variables)
    assert "errors" not in body, body["errors"]
    trips = {s: gateway.round_trips(s) - before[s] for s in ALL_SOURCES}
    return body["data"], {s: n for s, n in trips.items() if n}


async def test_a_page_with_timelines_and_referrals_is_one_round_trip(
    demo_data: DemoData,
) -> None:
    async with serving(demo_data.config) as gateway:
        data, trips = await spent(gateway, PAGE, {"first": 60})
        assert trips == {POSTGRES_SOURCE: 1}
        assert gateway.round_trips(POSTGRES_SOURCE, "load_referrals") == 0
    nodes = [edge["node"] for edge in data["cases"]["edges"]]
    assert any(node["referrals"] for node in nodes) and any(not n["referrals"] for n in nodes)
    limits = demo_data.config.limits.model_copy(update={"dataloader_batching": False})
    async with serving(replace(demo_data.config, limits=limits)) as unbatched:
        same, trips = await spent(unbatched, PAGE, {"first": 60})
        assert trips == {POSTGRES_SOURCE: 1 + 2 * 60}  # the N+1 baseline
    assert same == data


async def test_a_case_in_full_detail_is_one_round_trip(demo_data: DemoData) -> None:
    async with serving(demo_data.config) as gateway:
        page, _ = await spent(gateway, PAGE, {"first": 60})
    ids = [edge["node"]["id"] for edge in page["cases"]["edges"]]
    without = next(e["node"]["id"] for e in page["cases"]["edges"] if not e["node"]["referrals"])
    chain = case_id(POSTGRES_SOURCE, links.damrongdhama_id(15))  # referred on, escalated
    limits = demo_data.config.limits.model_copy(update={"dataloader_batching": False})
    answers: list[list[Any]] = []
    for config in (demo_data.config, replace(demo_data.config, limits=limits)):
        answers.append([])
        async with serving(config) as gateway:
            for key in (chain, without, ids[0]):
                data, trips = await spent(gateway, DETAIL, {"id": key})
                batching = config.limits.dataloader_batching
                assert trips == {POSTGRES_SOURCE: 1 if batching else 3}, (key, trips)
                answers[-1].append(data)
    carried, loaded = answers
    assert carried == loaded
    assert carried[0]["case"]["referrals"] and carried[0]["case"]["timeline"]
    assert carried[1]["case"]["referrals"] == []


async def test_a_node_carries_what_its_fragment_selects(gateway: RunningGateway) -> None:
    chain = case_id(POSTGRES_SOURCE, links.damrongdhama_id(15))
    data, trips = await spent(gateway, NODE, {"id": chain})
    assert trips == {POSTGRES_SOURCE: 1}
    assert data["node"]["timeline"] and data["node"]["referrals"]
    plain, trips = await spent(gateway, "query($id: ID!) { node(id: $id) { id } }", {"id": chain})
    assert trips == {POSTGRES_SOURCE: 1} and plain["node"]["id"] == chain


async def test_cases_of_one_level_are_one_batch_whatever_each_carries(
    gateway: RunningGateway,
) -> None:
    """Two lookups of a level, one with its relations and one without: one batch of cases
    by id, carrying what either selects, and nothing more asked of the source."""
    first, second = (case_id(POSTGRES_SOURCE, links.damrongdhama_id(n)) for n in (15, 10))
    document = (
        "query($a: ID!, $b: ID!) {"
        " a: case(id: $a) { id timeline { at } referrals { at } }"
        " b: case(id: $b) { id title } }"
    )
    before = gateway.round_trips(POSTGRES_SOURCE, "load_cases")
    data, trips = await spent(gateway, document, {"a": first, "b": second})
    assert trips == {POSTGRES_SOURCE: 1}
    assert gateway.round_trips(POSTGRES_SOURCE, "load_cases") == before + 1
    assert data["a"]["timeline"] and data["a"]["referrals"] and data["b"]["title"]


async def test_related_cases_carry_what_their_selection_reads(gateway: RunningGateway) -> None:
    """The Damrongdhama case related to a city case comes with its timeline: no timeline
    batch of its own (its referrals were asked already, to find the cases related)."""
    city = case_id(OPEN311_SOURCE, links.traffy_id(15))
    document = (
        "query($id: ID!) { case(id: $id) {"
        " relatedCases { id source { id } timeline { at note } referrals { at } } } }"
    )
    operations = ("find_referrals_to", "load_referrals", "load_cases", "load_timelines")
    before = {o: gateway.round_trips(POSTGRES_SOURCE, o) for o in operations}
    data, trips = await spent(gateway, document, {"id": city})
    related = {case["source"]["id"]: case for case in data["case"]["relatedCases"]}
    assert related[POSTGRES_SOURCE]["timeline"] and related[POSTGRES_SOURCE]["referrals"]
    spent_on = {o: gateway.round_trips(POSTGRES_SOURCE, o) - before[o] for o in operations}
    # the relation itself: referrals to the city case, those of its partners; then the case
    assert spent_on == {
        "find_referrals_to": 1,
        "load_referrals": 1,
        "load_cases": 1,
        "load_timelines": 0,
    }
    assert trips[POSTGRES_SOURCE] == 3
