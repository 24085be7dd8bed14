"""The HTTP surface: GraphQL-over-HTTP status codes, UTF-8 JSON, GraphiQL, metrics, health."""

from __future__ import annotations

import pytest

from tests.conftest import RunningGateway
from tests.resolvers.expected import POSTGRES_SOURCE

RESPONSE_JSON = "application/graphql-response+json"


@pytest.mark.parametrize(
    "document", ["{ cases {", "{ nope }", 'query { cases(first: "x") { totalCount } }']
)
async def test_request_errors_are_400_under_graphql_response_json(
    gateway: RunningGateway, document: str
) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": document}, headers={"accept": RESPONSE_JSON}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(RESPONSE_JSON)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]
    assert body["errors"][0]["locations"]


@pytest.mark.parametrize("document", ["{ cases {", "{ nope }"])
async def test_request_errors_are_200_without_data_under_application_json(
    gateway: RunningGateway, document: str
) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": document}, headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "data" not in response.json()


async def test_field_errors_keep_200_with_partial_data(gateway: RunningGateway) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": '{ agencies { code } cases(after: "garbage") { totalCount } }'},
        headers={"accept": RESPONSE_JSON},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["agencies"]
    assert body["errors"][0]["path"] == ["cases"]


async def test_validation_error_names_the_field(gateway: RunningGateway) -> None:
    body = (
        await gateway.client.post(
            "/graphql", json={"query": "{ cases { edges { node { titel } } } }"}
        )
    ).json()
    assert "titel" in body["errors"][0]["message"]
    assert "title" in body["errors"][0]["message"]


async def test_malformed_json_body_is_400(gateway: RunningGateway) -> None:
    response = await gateway.client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.text


async def test_thai_text_is_utf8_not_escaped(gateway: RunningGateway) -> None:
    response = await gateway.client.post("/graphql", json={"query": "{ categories { nameTh } }"})
    assert b"\\u0e" not in response.content.lower()
    assert "ที่ดิน".encode() in response.content
    assert response.headers["content-type"].endswith("charset=utf-8")


async def test_graphiql_opens_with_an_example_query(gateway: RunningGateway) -> None:
    response = await gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    assert "query LatestCases" in response.text


async def test_metrics_count_round_trips_per_source_and_operation(gateway: RunningGateway) -> None:
    await gateway.query("{ cases(first: 3) { edges { node { timeline { at } } } } }")
    text = (await gateway.client.get("/metrics")).text
    assert (
        f'complaint_graph_source_requests_total{{operation="search_cases",source="{POSTGRES_SOURCE}"}}'
        in text
    )
    assert "complaint_graph_source_request_duration_seconds_bucket" in text
    assert "complaint_graph_source_batch_size_bucket" in text


async def test_healthz_and_root_redirect(gateway: RunningGateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    root = await gateway.client.get("/")
    assert root.status_code in (302, 307) and root.headers["location"].endswith("/graphql")
