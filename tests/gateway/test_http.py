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
    # Referrals are loaded in a batch per source (timelines may come with the page itself).
    await gateway.query("{ cases(first: 3) { edges { node { referrals { kind } } } } }")
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


# GraphQL over HTTP, beyond what graphql-http's audit checks (tests/gateway/test_http_audit.py).


@pytest.mark.parametrize("accept", ["text/plain", "text/html", f"{RESPONSE_JSON};q=0"])
async def test_accept_without_a_graphql_media_type_is_406(
    gateway: RunningGateway, accept: str
) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"accept": accept}
    )
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (f"{RESPONSE_JSON};q=0, application/json", "application/json"),
        (f"application/json;q=0.5, {RESPONSE_JSON}", RESPONSE_JSON),
        (f"{RESPONSE_JSON};q=0.4, application/json;q=0.9", "application/json"),
        (f"application/json, {RESPONSE_JSON}", RESPONSE_JSON),
        ("*/*", "application/json"),
        (f"*/*;q=0.1, {RESPONSE_JSON}", RESPONSE_JSON),
        ("application/json;q=0, */*", RESPONSE_JSON),
    ],
)
async def test_accept_q_values_choose_the_media_type(
    gateway: RunningGateway, accept: str, media_type: str
) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"accept": accept}
    )
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert response.status_code == (400 if media_type == RESPONSE_JSON else 200)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/graphql"])
async def test_post_body_other_than_json_is_415(
    gateway: RunningGateway, content_type: str | None
) -> None:
    headers = {"accept": RESPONSE_JSON}
    if content_type is not None:
        headers["content-type"] = content_type
    response = await gateway.client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert response.status_code == 415
    assert response.headers["content-type"].startswith(RESPONSE_JSON)
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_get_never_runs_a_mutation_405_with_allow_post(gateway: RunningGateway) -> None:
    response = await gateway.client.get(
        "/graphql",
        params={"query": "mutation M { anything }", "operationName": "M"},
        headers={"accept": RESPONSE_JSON},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"query": "{ __typename }", "variables": "{nope"}, "variables"),
        ({"query": "{ __typename }", "extensions": "{nope"}, "extensions"),
        ({"query": "{ __typename }", "variables": "[1]"}, "variables"),
    ],
)
async def test_get_parameters_that_are_not_json_objects_are_400(
    gateway: RunningGateway, params: dict[str, str], named: str
) -> None:
    for accept in (RESPONSE_JSON, "application/json"):
        response = await gateway.client.get("/graphql", params=params, headers={"accept": accept})
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert named in error["message"]
        assert error["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "body",
    [
        {"variables": {}},
        {"query": 1},
        {"query": "{ __typename }", "variables": "x"},
        {"query": "{ __typename }", "extensions": [1]},
        {"query": "{ __typename }", "operationName": 3},
        [{"query": "{ __typename }"}],
    ],
)
async def test_malformed_requests_are_400_with_a_graphql_error_body(
    gateway: RunningGateway, body: object
) -> None:
    for accept in (RESPONSE_JSON, "application/json"):
        response = await gateway.client.post("/graphql", json=body, headers={"accept": accept})
        assert response.status_code == 400
        assert response.headers["content-type"].startswith(accept)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": "query A { __typename } query B { __typename }"}, "Must provide operation name"),
        ({"query": "query A { __typename }", "operationName": "B"}, 'Unknown operation named "B"'),
    ],
)
async def test_get_operation_errors_are_request_errors(
    gateway: RunningGateway, body: dict[str, str], message: str
) -> None:
    strict = await gateway.client.post("/graphql", json=body, headers={"accept": RESPONSE_JSON})
    assert strict.status_code == 400
    assert message in strict.json()["errors"][0]["message"]
    assert "data" not in strict.json()
    legacy = await gateway.client.post(
        "/graphql", json=body, headers={"accept": "application/json"}
    )
    assert legacy.status_code == 200
    assert "data" not in legacy.json()


async def test_empty_operation_name_means_none(gateway: RunningGateway) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": "query A { __typename }", "operationName": ""},
        headers={"accept": RESPONSE_JSON},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_subscription_over_plain_http_is_a_request_error_not_an_internal_one(
    gateway: RunningGateway,
) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={"query": "subscription { caseEvents { __typename } }"},
        headers={"accept": RESPONSE_JSON},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "WebSocket" in error["message"]
    assert error["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"


async def test_request_errors_carry_a_code(gateway: RunningGateway) -> None:
    syntax = await gateway.client.post("/graphql", json={"query": "{ cases {"})
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    invalid = await gateway.client.post("/graphql", json={"query": "{ nope }"})
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_other_methods_are_405_naming_get_and_post(gateway: RunningGateway) -> None:
    response = await gateway.client.head("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
