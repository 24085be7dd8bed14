"""The subgraph mode (resolvers/federation.py) in process: off by default, its SDL, and
``_entities`` answering exactly what ``node`` answers, for every kind of caller.

The gateways that compose and serve it are in tests/federation/test_supergraph.py.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from graphql import DocumentNode, ObjectTypeDefinitionNode, SchemaExtensionNode, parse, print_ast

from gateway.auth import AnonymousSettings
from gateway.config import FederationSettings
from gateway.demo import demo_agency_key
from resolvers.access import Role
from resolvers.federation import ENTITY_KEYS, subgraph_sdl
from resolvers.schema import schema_sdl
from samples import links
from tests.conftest import OPEN311_CASES, AccessWorld, RunningGateway, serving

SUBGRAPH_FILE = Path(__file__).resolve().parents[2] / "schema.subgraph.graphql"
INSPECTOR, ANALYST = "demo-inspector", "demo-analyst"


@pytest.fixture
async def subgraph(access_world: AccessWorld) -> AsyncIterator[RunningGateway]:
    """The access world's closed gateway with ``federation: {enabled: true}``."""
    config = replace(access_world.config, federation=FederationSettings(enabled=True))
    async with serving(config) as started:
        yield started


async def ask(
    gateway: RunningGateway, key: str, document: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await gateway.client.post(
        "/graphql",
        json={"query": document, "variables": variables or {}},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def case_id(source: str, local_id: str) -> str:
    return base64.b64encode(f"Case:{source}:{local_id}".encode()).decode()


def test_the_checked_in_subgraph_schema_is_the_one_served() -> None:
    assert SUBGRAPH_FILE.read_text(encoding="utf-8") == subgraph_sdl(), (
        "schema.subgraph.graphql is out of date: run `make schema` and commit the result"
    )


def test_the_subgraph_is_the_plain_graph_with_link_and_keys() -> None:
    document = parse(subgraph_sdl())
    (link,) = [d for d in document.definitions if isinstance(d, SchemaExtensionNode)]
    assert "specs.apollo.dev/federation/v2" in print_ast(link)
    keys = {
        d.name.value: [print_ast(directive) for directive in d.directives or ()]
        for d in document.definitions
        if isinstance(d, ObjectTypeDefinitionNode) and d.directives
    }
    assert keys == {
        name: [f'@key(fields: "{fields}")' for fields in field_sets]
        for name, field_sets in ENTITY_KEYS.items()
    }
    plain = DocumentNode(
        definitions=tuple(
            ObjectTypeDefinitionNode(
                description=d.description,
                name=d.name,
                interfaces=d.interfaces,
                directives=(),
                fields=d.fields,
            )
            if isinstance(d, ObjectTypeDefinitionNode)
            else d
            for d in document.definitions
            if not isinstance(d, SchemaExtensionNode)
        )
    )
    assert print_ast(plain) == print_ast(parse(schema_sdl()))


async def test_federation_is_off_by_default(gateway: RunningGateway) -> None:
    body = await gateway.query("{ _service { sdl } _entities(representations: []) { __typename } }")
    messages = [error["message"] for error in body["errors"]]
    assert messages == [
        "Cannot query field '_service' on type 'Query'.",
        "Cannot query field '_entities' on type 'Query'.",
    ]


async def test_service_answers_the_subgraph_sdl(subgraph: RunningGateway) -> None:
    body = await ask(subgraph, INSPECTOR, "{ _service { sdl } }")
    assert body["data"]["_service"]["sdl"] == subgraph_sdl()


@pytest.mark.parametrize(
    ("introspection", "key", "served"),
    [(False, INSPECTOR, False), ("key-only", INSPECTOR, True), ("key-only", None, False)],
)
async def test_service_is_served_as_introspection_is(
    access_world: AccessWorld, introspection: bool | str, key: str | None, served: bool
) -> None:
    limits = access_world.config.limits.model_copy(update={"introspection": introspection})
    auth = access_world.config.auth.model_copy(
        update={"anonymous": AnonymousSettings(role=Role.INSPECTOR)}
    )
    config = replace(
        access_world.config,
        limits=limits,
        auth=auth,
        federation=FederationSettings(enabled=True),
    )
    async with serving(config) as gateway:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        response = await gateway.client.post(
            "/graphql", json={"query": "{ _service { sdl } }"}, headers=headers
        )
    body = response.json()
    if served:
        assert body["data"]["_service"]["sdl"] == subgraph_sdl()
    else:
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


CASE_FIELDS = "id title status complainant { name citizenId revealed } owningAgency { code }"
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Case { FIELDS } } }"
ENTITIES = ENTITIES.replace("FIELDS", CASE_FIELDS)


def some_cases() -> list[str]:
    """Cases of every source (the access world's), some an agency sees and some it does not,
    and one id no source holds."""
    ids = [case_id("damrongdhama", str(n)) for n in (3, 7, 10, 11)]
    ids += [case_id("pmoc-1111", links.pmoc_id(n)) for n in (1, 2, 3)]
    ids += [case_id("traffy-city", links.traffy_id(n)) for n in (1, OPEN311_CASES)]
    return [*ids, case_id("traffy-city", "no-such-case")]


@pytest.mark.parametrize(
    "key",
    [INSPECTOR, ANALYST, demo_agency_key("MOI-DDC"), demo_agency_key("KKN-PO")],
)
async def test_entities_answer_what_node_answers(subgraph: RunningGateway, key: str) -> None:
    ids = some_cases()
    by_node = " ".join(
        f'n{i}: node(id: "{id_}") {{ ... on Case {{ {CASE_FIELDS} }} }}'
        for i, id_ in enumerate(ids)
    )
    nodes = await ask(subgraph, key, f"{{ {by_node} }}")
    entities = await ask(
        subgraph,
        key,
        ENTITIES,
        {"r": [{"__typename": "Case", "id": id_} for id_ in ids]},
    )
    assert "errors" not in nodes and "errors" not in entities, (nodes, entities)
    assert entities["data"]["_entities"] == [nodes["data"][f"n{i}"] for i in range(len(ids))]


async def test_entities_mask_and_hide_by_the_callers_rights(subgraph: RunningGateway) -> None:
    """What the comparison above compares differs between callers: masking and access apply."""
    document = ENTITIES
    representations = [{"__typename": "Case", "id": id_} for id_ in some_cases()]
    answers = {
        key: (await ask(subgraph, key, document, {"r": representations}))["data"]["_entities"]
        for key in (INSPECTOR, ANALYST, demo_agency_key("KKN-PO"))
    }
    inspector, analyst, kkn = answers.values()
    assert inspector[-1] is None  # no source holds it
    assert all(case is not None for case in inspector[:-1])
    assert any(c["complainant"] and c["complainant"]["revealed"] for c in inspector[:-1])
    assert not any(c["complainant"] and c["complainant"]["revealed"] for c in analyst[:-1])
    assert kkn[-3:] == [None, None, None]  # the city's cases: neither Khon Kaen's nor referred
    assert any(case is not None for case in kkn)  # cases referred to Khon Kaen


async def test_agencies_categories_and_areas_resolve_by_code(subgraph: RunningGateway) -> None:
    representations = [
        {"__typename": "Agency", "code": "KKN-PO"},
        {"__typename": "Category", "code": "ROADS"},
        {"__typename": "Area", "code": "40"},
        {"__typename": "Agency", "code": "NO-SUCH-AGENCY"},
        {"__typename": "Parcel", "id": "1"},
        {"__typename": "Case", "id": 7},
    ]
    body = await ask(
        subgraph,
        ANALYST,
        """query($r: [_Any!]!) { _entities(representations: $r) {
             __typename
             ... on Agency { code sources { id } }
             ... on Category { code nameEn }
             ... on Area { code areaName: nameEn } } }""",
        {"r": representations},
    )
    agency = next(s for s in subgraph.gateway.config.sources if s.agency.code == "KKN-PO")
    roads = next(c for c in subgraph.gateway.config.categories if c.code == "ROADS")
    assert body["data"]["_entities"] == [
        {"__typename": "Agency", "code": "KKN-PO", "sources": [{"id": agency.id}]},
        {"__typename": "Category", "code": "ROADS", "nameEn": roads.name_en},
        {"__typename": "Area", "code": "40", "areaName": "Khon Kaen"},
        None,
        None,
        None,
    ]
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert set(errors) == {("_entities", 4), ("_entities", 5)}
    assert {e["extensions"]["code"] for e in errors.values()} == {"BAD_USER_INPUT"}
    assert "'Parcel'" in errors[("_entities", 4)]["message"]


async def test_more_representations_than_a_page_are_refused(subgraph: RunningGateway) -> None:
    most = subgraph.gateway.limits.max_page_size
    representations = [{"__typename": "Agency", "code": "KKN-PO"}] * (most + 1)
    body = await ask(
        subgraph,
        ANALYST,
        "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        {"r": representations},
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert f"at most {most}" in body["errors"][0]["message"]


DEEP = """query($r: [_Any!]!) { _entities(representations: $r) {
  ... on Case { relatedCases { relatedCases { relatedCases { title } } } } } }"""


async def test_the_cost_of_entities_counts_each_representation(subgraph: RunningGateway) -> None:
    """31 per case (three levels of an unpaged list, five each): two cases run; 400 cost
    12,401, over the 10,000 allowed, and are refused before any source is asked."""
    two = [{"__typename": "Case", "id": case_id("damrongdhama", str(n))} for n in (1, 2)]
    assert "errors" not in await ask(subgraph, INSPECTOR, DEEP, {"r": two})
    many = [{"__typename": "Case", "id": case_id("damrongdhama", str(n))} for n in range(400)]
    before = subgraph.round_trips("damrongdhama")
    body = await ask(subgraph, INSPECTOR, DEEP, {"r": many})  # the same document, remembered
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "12401" in body["errors"][0]["message"]
    assert subgraph.round_trips("damrongdhama") == before


BY_NUMBER = """query($r: [_Any!]!) { _entities(representations: $r) {
  ... on Case { id referenceNumber source { id } title } } }"""

PAGE = """query($source: String!) { cases(first: 5, filter: {source: [$source]}) {
  edges { node { id referenceNumber source { id } title } } } }"""


async def test_cases_resolve_by_source_and_reference_number_in_one_batch_per_source(
    subgraph: RunningGateway,
) -> None:
    """The second key: SQL sources look their number column up (it is not their id there);
    the API sources' numbers are their ids. One round trip per source for all of them."""
    sources = [s.id for s in subgraph.gateway.config.sources]
    expected = []
    for source in sources:
        page = await ask(subgraph, INSPECTOR, PAGE, {"source": source})
        expected += [edge["node"] for edge in page["data"]["cases"]["edges"]]
    assert len(expected) == 5 * len(sources)
    assert any(case["referenceNumber"] not in case_key(case["id"]) for case in expected)
    representations = [
        {"__typename": "Case", "source": c["source"], "referenceNumber": c["referenceNumber"]}
        for c in expected
    ]
    representations.append(
        {"__typename": "Case", "source": {"id": sources[0]}, "referenceNumber": "no-such-case"}
    )
    lookups = {s: subgraph.round_trips(s, "load_cases_by_reference") for s in sources}
    before = {s: subgraph.round_trips(s) for s in sources}
    body = await ask(subgraph, INSPECTOR, BY_NUMBER, {"r": representations})
    assert "errors" not in body, body["errors"]
    assert body["data"]["_entities"] == [*expected, None]
    for source in sources:
        assert subgraph.round_trips(source) - before[source] == 1, source  # that one only
        assert subgraph.round_trips(source, "load_cases_by_reference") - lookups[source] == 1


def case_key(global_id: str) -> str:
    return base64.b64decode(global_id).decode()


async def test_a_case_by_number_is_null_for_an_agency_that_may_not_see_it(
    subgraph: RunningGateway,
) -> None:
    page = await ask(subgraph, INSPECTOR, PAGE, {"source": "traffy-city"})
    (theirs, *_) = [edge["node"] for edge in page["data"]["cases"]["edges"]]
    page = await ask(subgraph, INSPECTOR, PAGE, {"source": "khonkaen-office"})
    (own, *_) = [edge["node"] for edge in page["data"]["cases"]["edges"]]
    representations = [
        {"__typename": "Case", "source": c["source"], "referenceNumber": c["referenceNumber"]}
        for c in (own, theirs)
    ]
    body = await ask(subgraph, demo_agency_key("KKN-PO"), BY_NUMBER, {"r": representations})
    assert body["data"]["_entities"] == [own, None]
