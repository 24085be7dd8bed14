"""Hostile and careless documents and bodies: a clear error, no leak, and the gateway stays up."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gateway.app import create_app
from gateway.config import EventSettings
from samples.serving import ThreadedServer
from tests.conftest import DemoData, RunningGateway, serving
from tests.gateway.hostile import assert_clean, assert_responsive

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(demo_data: DemoData) -> AsyncIterator[RunningGateway]:
    """One gateway for the whole module: every hostile input below hits the same process,
    which must still answer its sources at the end (tests with many cases check only there)."""
    async with serving(demo_data.config) as started:
        yield started
        await assert_responsive(started)


CASES_TOTAL = (
    "query($f: CaseFilterInput) {"
    " cases(filter: $f, first: 3) { totalCount edges { node { title } } } }"
)


async def post(gateway: RunningGateway, document: str, variables: Any = None) -> dict[str, Any]:
    response = await gateway.client.post(
        "/graphql", json={"query": document, "variables": variables}
    )
    return assert_clean(response)


def codes(body: dict[str, Any]) -> set[str]:
    return {error.get("extensions", {}).get("code", "") for error in body.get("errors") or ()}


# -- documents --------------------------------------------------------------------------------


async def test_depth_bomb_is_refused(gateway: RunningGateway) -> None:
    inner = "title"
    for _ in range(60):
        inner = f"relatedCases {{ {inner} }}"
    body = await post(gateway, f"{{ cases(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}")
    assert "QUERY_TOO_DEEP" in codes(body)
    await assert_responsive(gateway)


async def test_parser_nesting_bomb_is_a_syntax_error(gateway: RunningGateway) -> None:
    body = await post(gateway, "{ cases " + "{ a " * 3000 + "}" * 3001)
    assert body["errors"]
    assert "data" not in body
    await assert_responsive(gateway)


async def test_alias_bomb_is_refused(gateway: RunningGateway) -> None:
    aliases = " ".join(f"a{i}: cases(first: 500) {{ totalCount }}" for i in range(400))
    body = await post(gateway, f"{{ {aliases} }}")
    assert "TOO_MANY_ALIASES" in codes(body)
    many = " ".join(f"a{i}: __typename" for i in range(5000))
    assert codes(await post(gateway, f"{{ {many} }}")) == {"TOO_MANY_TOKENS"}
    await assert_responsive(gateway)


@pytest.mark.parametrize(
    "fragments",
    [
        "fragment A on Case { title ...A }",
        "fragment A on Case { title ...B } fragment B on Case { id ...A }",
        "fragment A on Case { relatedCases { ...B } } fragment B on Case { relatedCases { ...A } }",
    ],
)
async def test_circular_fragments_are_refused(gateway: RunningGateway, fragments: str) -> None:
    body = await post(
        gateway, f"{{ cases(first: 1) {{ edges {{ node {{ ...A }} }} }} }} {fragments}"
    )
    assert any("Cannot spread fragment" in error["message"] for error in body["errors"])


async def test_undefined_fragment_and_wrong_spread_are_validation_errors(
    gateway: RunningGateway,
) -> None:
    body = await post(gateway, "{ cases { ...Missing } } fragment X on Agency { code }")
    assert body["errors"]
    assert "data" not in body
    await assert_responsive(gateway)


async def test_many_operations_and_unknown_operation_name(gateway: RunningGateway) -> None:
    document = " ".join(f"query Q{i} {{ __typename }}" for i in range(300))
    response = await gateway.client.post(
        "/graphql", json={"query": document, "operationName": "Nope"}
    )
    assert assert_clean(response)["errors"]
    await assert_responsive(gateway)


# -- huge values --------------------------------------------------------------------------------


async def test_huge_text_filter_is_refused_naming_the_limit(gateway: RunningGateway) -> None:
    body = await post(gateway, CASES_TOTAL, {"f": {"text": "ถนน" * 100_000}})
    assert codes(body) == {"BAD_USER_INPUT"}
    assert "200" in body["errors"][0]["message"]
    at_limit = await post(gateway, CASES_TOTAL, {"f": {"text": "ก" * 200}})
    assert at_limit["data"]["cases"]["totalCount"] == 0
    await assert_responsive(gateway)


async def test_huge_lists_in_filters_are_refused_naming_the_limit(gateway: RunningGateway) -> None:
    provinces = await post(gateway, CASES_TOTAL, {"f": {"provinceCode": ["10"] * 50_000}})
    statuses = await post(gateway, CASES_TOTAL, {"f": {"status": ["RESOLVED"] * 50_000}})
    long_values = await post(gateway, CASES_TOTAL, {"f": {"category": ["X" * 5000] * 100}})
    for body in (provinces, statuses, long_values):
        assert codes(body) == {"BAD_USER_INPUT"}, body
        assert "200" in body["errors"][0]["message"]
    await assert_responsive(gateway)


async def test_huge_cursor_is_bad_user_input(gateway: RunningGateway) -> None:
    body = await post(
        gateway, "query($a: String) { cases(after: $a) { totalCount } }", {"a": "A" * 500_000}
    )
    assert codes(body) >= {"BAD_USER_INPUT"}


# -- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[",
        b"null",
        b'"a string"',
        b"12345",
        b"true",
        b"[]",
        b"[1, 2]",
        b"{}",
        b'{"query": 5}',
        b'{"query": null}',
        b'{"query": ["{ __typename }"]}',
        b'{"query": "{ __typename }", "variables": "x"}',
        b'{"query": "{ __typename }", "variables": [1, 2]}',
        b'{"query": "{ __typename }", "operationName": 7}',
        b"\xff\xfe\x00{",
        b'{"query": "{ __typename }"' + b"\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"query": "{ __typename }", "variables": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
async def test_malformed_json_bodies_are_400(
    gateway: RunningGateway, demo_data: DemoData, body: bytes
) -> None:
    response = await gateway.client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text[:500]
    assert assert_clean(response, demo_data)["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ __typename }", "extensions": "nope"},
        {"query": "{ __typename }", "variables": {"x": [[[[[[[[[[1]]]]]]]]]]}},
        {"query": "{ __typename }", "variables": {"x": "ก" * 100_000}},
        {"query": "{ __typename }", "unknown": {"deep": [1, 2, 3]}},
    ],
)
async def test_odd_but_wellformed_bodies_are_answered(
    gateway: RunningGateway, demo_data: DemoData, body: dict[str, Any]
) -> None:
    response = await gateway.client.post("/graphql", json=body)
    assert response.status_code < 500
    assert_clean(response, demo_data)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"{ __typename }"),
        ("application/x-www-form-urlencoded", b"query=%7B__typename%7D"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\n--x--"),
        ("application/json; charset=latin-1", b'{"query": "{ __typename }"}'),
    ],
)
async def test_unexpected_content_types_are_not_server_errors(
    gateway: RunningGateway, content_type: str, body: bytes
) -> None:
    response = await gateway.client.post(
        "/graphql", content=body, headers={"content-type": content_type}
    )
    assert response.status_code < 500, response.text


# -- global ids ---------------------------------------------------------------------------------


BY_ID = "query($id: ID!) { case(id: $id) { title } node(id: $id) { id } }"


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "global_id",
    [
        "",
        "not base64 at all!",
        "%%%%",
        "====",
        b64(b"\x00\xff\xfe\x80garbage"),
        b64("Agency:MOI-DDC"),
        b64("Category:ROADS"),
        b64("Nope:damrongdhama:1"),
        b64("Case:"),
        b64("Case:damrongdhama"),
        b64("Case::"),
        b64("Case:damrongdhama:1' OR '1'='1"),
        b64("Case:damrongdhama:1; DROP TABLE complaints; --"),
        b64("Case:khonkaen-office:%"),
        b64("Case:pmoc-1111:../../etc/passwd"),
        b64("Case:pmoc-1111:?codes=1&x=" + "y" * 5000),
        b64("Case:traffy-city:\x00"),
        b64("Case:damrongdhama:" + "9" * 400),
        b64("Case:damrongdhama:-1"),
        b64("Case:" + "ก" * 10_000 + ":1"),
        "A" * 100_000,
    ],
)
async def test_invalid_global_ids_are_null_or_bad_user_input(
    gateway: RunningGateway, demo_data: DemoData, global_id: str
) -> None:
    response = await gateway.client.post(
        "/graphql", json={"query": BY_ID, "variables": {"id": global_id}}
    )
    body = assert_clean(response, demo_data)
    assert body["data"] in ({"case": None, "node": None}, None), body
    assert codes(body) <= {"BAD_USER_INPUT"}, body


# -- injection through filters ----------------------------------------------------------------


INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE complaints; --",
    '" OR ""="',
    "') UNION SELECT password FROM users --",
    "\\",
    "\\'",
    "%' --",
    "${jndi:ldap://127.0.0.1/x}",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "ก" * 200,
    "\u202e\ufeff\U0001f600",
]
NUL_VALUES = ["a\x00b", "\x00", "ถนน\x00' OR 1=1 --"]

STRING_LIST_FILTERS = ["agency", "source", "category", "provinceCode", "districtCode"]


TEXT_SEARCHING_SOURCES = ["damrongdhama", "khonkaen-office", "pmoc-1111"]
"""Sources that evaluate ``text`` themselves (SQL LIKE, the 1111 API's ``q``); the city platform's
is a substring test in the gateway, with no pattern syntax to abuse."""


async def search_each(
    gateway: RunningGateway,
    demo_data: DemoData,
    field: str,
    values: list[Any],
    also: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One request, one aliased ``cases`` per value (they run concurrently), ``r0``, ``r1``…"""
    declared = ", ".join(f"$f{i}: CaseFilterInput" for i in range(len(values)))
    selections = " ".join(
        f"r{i}: cases(filter: $f{i}) {{ totalCount }}" for i in range(len(values))
    )
    variables = {f"f{i}": {field: value, **(also or {})} for i, value in enumerate(values)}
    response = await gateway.client.post(
        "/graphql", json={"query": f"query({declared}) {{ {selections} }}", "variables": variables}
    )
    echoed = tuple(text for v in values for text in ([v] if isinstance(v, str) else v))
    return assert_clean(response, demo_data, echoed)


@pytest.mark.parametrize("field", STRING_LIST_FILTERS)
async def test_injection_in_list_filters_is_an_unknown_code(
    gateway: RunningGateway, demo_data: DemoData, field: str
) -> None:
    """Every list filter holds codes the gateway knows (agencies, sources, categories, DOPA
    areas): an injection is refused as an unknown code before any source sees it, and the
    error describes it without reflecting it."""
    body = await search_each(gateway, demo_data, field, [INJECTIONS])
    assert codes(body) == {"BAD_USER_INPUT"}, (field, body)
    assert "unknown <a value of" in body["errors"][0]["message"], body["errors"]
    refused = await search_each(gateway, demo_data, field, [["10", v] for v in NUL_VALUES])
    assert codes(refused) == {"BAD_USER_INPUT"}, (field, refused)
    assert len(refused["errors"]) == len(NUL_VALUES)


@pytest.mark.parametrize("field", ["receivedFrom", "receivedBefore", "status"])
async def test_injection_in_typed_filters_is_bad_input(
    gateway: RunningGateway, demo_data: DemoData, field: str
) -> None:
    for value in [*INJECTIONS, *NUL_VALUES]:
        body = await search_each(gateway, demo_data, field, [value])
        assert body["errors"] and "data" not in body, (field, value)


async def test_injection_in_text_filter_matches_literally(
    gateway: RunningGateway, demo_data: DemoData
) -> None:
    body = await search_each(
        gateway, demo_data, "text", INJECTIONS, {"source": TEXT_SEARCHING_SOURCES}
    )
    assert body.get("errors") is None, body["errors"]
    assert all(result["totalCount"] == 0 for result in body["data"].values()), body["data"]
    refused = await search_each(gateway, demo_data, "text", NUL_VALUES)
    assert codes(refused) == {"BAD_USER_INPUT"}, refused
    assert all("NUL" in error["message"] for error in refused["errors"])
    await assert_responsive(gateway)


async def test_like_wildcards_in_text_are_literal(
    gateway: RunningGateway, demo_data: DemoData
) -> None:
    """No demo title or description contains these characters, so nothing matches; a LIKE
    pattern built without escaping would match every case."""
    wildcards = ["%", "_", "%%", "_%_", "[a-z]", "*", "\\%", "%_%"]
    body = await search_each(
        gateway, demo_data, "text", wildcards, {"source": TEXT_SEARCHING_SOURCES}
    )
    assert body.get("errors") is None, body
    assert all(result["totalCount"] == 0 for result in body["data"].values()), body["data"]


async def test_underscore_inside_a_real_title_is_not_a_wildcard(gateway: RunningGateway) -> None:
    """A title with one character replaced by '_' matches no case; the title itself does."""
    page = await gateway.query(
        '{ cases(first: 1, filter: {source: ["damrongdhama"]}) { edges { node { title } } } }'
    )
    title = page["data"]["cases"]["edges"][0]["node"]["title"]
    exact = await post(gateway, CASES_TOTAL, {"f": {"text": title}})
    masked = await post(gateway, CASES_TOTAL, {"f": {"text": title[:2] + "_" + title[3:]}})
    assert exact["data"]["cases"]["totalCount"] >= 1
    assert masked["data"]["cases"]["totalCount"] == 0


async def test_ten_megabyte_bodies_over_a_real_socket_are_413(demo_data: DemoData) -> None:
    """Through uvicorn, as deployed: each 10 MB body is refused, the next request served."""
    app = create_app(replace(demo_data.config, events=EventSettings(enabled=False)))
    server = ThreadedServer(app, lifespan=True)
    server.start()
    huge = b'{"query": "{ __typename }", "variables": {"x": "' + b"x" * 10_000_000 + b'"}}'
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            for _ in range(3):
                refused = await client.post(
                    "/graphql", content=huge, headers={"content-type": "application/json"}
                )
                assert refused.status_code == 413
                assert refused.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
                served = await client.post("/graphql", json={"query": "{ __typename }"})
                assert served.json() == {"data": {"__typename": "Query"}}
    finally:
        server.stop()
