"""GraphiQL's saved examples: valid against the schema, answered without errors, served as tabs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import parse, validate

from gateway.examples import DASHBOARD, EXAMPLES, TABS, WRITE_EXAMPLES, Example, graphiql_html
from resolvers import build_schema
from tests.conftest import RunningGateway

ANALYST_EXAMPLES = {
    "Dashboard",
    "CaseTrail",
    "StatsByProvinceAndMonth",
    "OverdueByAgency",
    "OverdueLandDisputesByProvince",
}


def by_name(name: str) -> Example:
    return next(example for example in EXAMPLES if example.name == name)


def test_every_analyst_question_has_an_example() -> None:
    assert {example.name for example in EXAMPLES} >= ANALYST_EXAMPLES
    assert EXAMPLES[0] is DASHBOARD
    # GraphiQL shows a tab's variables only after switching to it: the first tab needs none.
    assert not EXAMPLES[0].variables


@pytest.mark.parametrize("example", TABS, ids=lambda e: e.name)
def test_example_is_valid_against_the_schema(example: Example) -> None:
    document = parse(example.query)
    assert validate(build_schema()._schema, document) == []
    (operation,) = document.definitions
    assert operation.name is not None and operation.name.value == example.name  # the tab's title


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
async def test_example_runs_without_errors(gateway: RunningGateway, example: Example) -> None:
    body = await gateway.query(example.query, example.variables or None)
    assert "errors" not in body, body["errors"]
    assert body["data"] and all(value is not None for value in body["data"].values())


async def test_case_trail_follows_one_complaint_through_four_agencies(
    gateway: RunningGateway,
) -> None:
    example = by_name("CaseTrail")
    case = (await gateway.query(example.query, example.variables))["data"]["case"]
    pmoc = case["referrals"][0]["counterpart"]
    city = pmoc["referrals"][0]["counterpart"]
    back = city["referrals"][0]["counterpart"]
    assert [case["referenceNumber"], pmoc["referenceNumber"], city["referenceNumber"]] == [
        "ดธ.1567/2568/000015",
        "PMOC-000015",
        "TF-000015",
    ]
    assert back["referenceNumber"] == case["referenceNumber"]


async def test_stats_examples_count_the_cases_they_say(gateway: RunningGateway) -> None:
    land = by_name("OverdueLandDisputesByProvince")
    stats = (await gateway.query(land.query, land.variables))["data"]["caseStats"]
    listed = await gateway.query(
        "query($filter: CaseFilterInput) { cases(filter: $filter, first: 1) { totalCount } }",
        land.variables,
    )
    assert stats["total"]["count"] == listed["data"]["cases"]["totalCount"] > 0
    assert sum(b["count"] for b in stats["buckets"]) == stats["total"]["count"]
    monthly = by_name("StatsByProvinceAndMonth")
    answer = await gateway.query(monthly.query, monthly.variables)
    buckets = answer["data"]["caseStats"]["buckets"]
    assert {b["key"][1]["yearBE"] for b in buckets} == {2568, 2569}


def tabs_in(html: str) -> tuple[str, list[dict[str, Any]]]:
    """The first query and the tabs, read back from the constants the page defines."""

    def constant(name: str) -> Any:
        start = html.index(f"const {name} = ") + len(f"const {name} = ")
        end = html.index(";\n", start)
        return json.loads(html[start:end].replace("<\\/", "</"))

    return constant("EXAMPLE_QUERY"), constant("COMPLAINT_GRAPH_TABS")


async def test_graphiql_opens_with_every_example_as_a_tab(gateway: RunningGateway) -> None:
    response = await gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    html = response.text
    first, tabs = tabs_in(html)
    assert first == EXAMPLES[0].query
    assert [tab["query"] for tab in tabs] == [example.query for example in TABS]
    assert {"ReferACase", "ReportProgress", "FileAComplaint"} == {
        example.name for example in WRITE_EXAMPLES
    }
    trail = tabs[[e.name for e in EXAMPLES].index("CaseTrail")]
    assert json.loads(trail["variables"]) == by_name("CaseTrail").variables
    props = html.index("React.createElement(GraphiQL, {")
    assert html.index("defaultTabs: COMPLAINT_GRAPH_TABS,", props) < html.index("});", props)


def test_a_closing_script_tag_in_an_example_cannot_end_the_page_script() -> None:
    hostile = Example(
        "Hostile", "# </script><script>alert(1)</script>\nquery Hostile { agencies { code } }"
    )
    html = graphiql_html(_template(), (hostile,))
    assert "</script><script>alert(1)" not in html
    assert tabs_in(html)[0] == hostile.query


def _template() -> str:
    from strawberry.asgi import GraphQL

    return GraphQL(build_schema()).graphql_ide_html
