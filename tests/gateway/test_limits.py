"""Limits on what one request may ask: each refusal names the limit, its value and the measure."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from starlette.types import Receive, Scope, Send

from gateway.config import GatewayConfig
from samples.serving import ThreadedServer
from tests.conftest import DemoData, RunningGateway, serving
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

RESPONSE_JSON = "application/graphql-response+json"


def with_limits(config: GatewayConfig, **limits: Any) -> GatewayConfig:
    return replace(config, limits=config.limits.model_copy(update=limits))


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert "data" not in body or body["data"] is None, body
    (error,) = body["errors"]
    return error  # type: ignore[no-any-return]


def extensions(error: dict[str, Any]) -> dict[str, Any]:
    """An error's extensions without the request id every error carries."""
    return {k: v for k, v in error["extensions"].items() if k != "requestId"}


def nested_referrals(levels: int) -> str:
    inner = "title"
    for _ in range(levels):
        inner = f"referrals {{ counterpart {{ {inner} }} }}"
    return inner


async def test_depth_limit_names_limit_and_measured_depth(demo_data: DemoData) -> None:
    async with serving(with_limits(demo_data.config, max_depth=6)) as gateway:
        ok = await gateway.query("{ cases(first: 1) { edges { node { title } } } }")
        deep = await gateway.query(
            f"{{ cases(first: 1) {{ edges {{ node {{ {nested_referrals(2)} }} }} }} }}"
        )
    assert "errors" not in ok
    error = only_error(deep)
    assert extensions(error) == {"code": "QUERY_TOO_DEEP", "limit": 6, "value": 8}
    assert "limits.max_depth" in error["message"]


async def test_alias_limit_counts_aliases_through_fragments(demo_data: DemoData) -> None:
    aliases = " ".join(f"a{i}: __typename" for i in range(4))
    document = f"{{ ...F ...F }} fragment F on Query {{ {aliases} }}"
    async with serving(with_limits(demo_data.config, max_aliases=7)) as gateway:
        body = await gateway.query(document)
        fine = await gateway.query(f"{{ {aliases} }}")
    assert extensions(only_error(body)) == {"code": "TOO_MANY_ALIASES", "limit": 7, "value": 8}
    assert fine["data"]["a3"] == "Query"


async def test_token_limit_stops_parsing_and_says_so(demo_data: DemoData) -> None:
    fields = " ".join(["__typename"] * 60)
    async with serving(with_limits(demo_data.config, max_tokens=50)) as gateway:
        response = await gateway.client.post(
            "/graphql", json={"query": f"{{ {fields} }}"}, headers={"accept": RESPONSE_JSON}
        )
        comments = await gateway.client.post(
            "/graphql", json={"query": "#\n" * 60 + "{ __typename }"}
        )
    assert response.status_code == 400
    error = only_error(response.json())
    assert extensions(error) == {"code": "TOO_MANY_TOKENS", "limit": 50}
    assert "50 tokens" in error["message"]
    assert only_error(comments.json())["extensions"]["code"] == "TOO_MANY_TOKENS"


async def test_cost_multiplies_page_size_through_nested_lists(gateway: RunningGateway) -> None:
    """500 cases, each following referrals to counterparts and their related cases' referrals:
    1 + (1 + 500 * (1 + (1 + 5 * (1 + (1 + 5 * (1 + (1 + 5 * 1)))))))) with lists of 5."""
    node = "referrals { counterpart { relatedCases { referrals { counterpart { title } } } } }"
    body = await gateway.query(f"{{ cases(first: 500) {{ edges {{ node {{ {node} }} }} }} }}")
    error = only_error(body)
    assert extensions(error) == {"code": "QUERY_TOO_COSTLY", "limit": 10000, "value": 81002}
    assert "first" in error["message"]


async def test_cost_uses_default_page_size_and_variables(demo_data: DemoData) -> None:
    """Without first, a page is the default page size (20): 1 + (1 + 20 * (1 + 6)) = 142."""
    node = "node { referrals { counterpart { title } } }"
    async with serving(with_limits(demo_data.config, max_cost=141)) as gateway:
        default = await gateway.query(f"{{ cases {{ edges {{ {node} }} }} }}")
        variable = await gateway.query(
            f"query($n: Int) {{ cases(first: $n) {{ edges {{ {node} }} }} }}", {"n": 2}
        )
    assert only_error(default)["extensions"]["value"] == 142
    assert "errors" not in variable, variable
    assert len(variable["data"]["cases"]["edges"]) == 2


async def test_page_size_over_the_maximum_is_refused_by_the_field(gateway: RunningGateway) -> None:
    """The cost estimate counts an oversized page as the maximum; the field then refuses it."""
    body = await gateway.query("{ cases(first: 100000) { edges { cursor } } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "500" in body["errors"][0]["message"]


async def test_fragment_bomb_is_measured_not_expanded(gateway: RunningGateway) -> None:
    """Thirty fragments each spreading the next ten times: 10^29 paths if expanded, refused at
    once because each fragment is measured once."""
    fragments = [
        f"fragment F{i} on Case {{ relatedCases {{ {' '.join([f'...F{i + 1}'] * 10)} }} }}"
        for i in range(29)
    ]
    fragments.append("fragment F29 on Case { title }")
    document = "{ cases(first: 1) { edges { node { ...F0 } } } } " + " ".join(fragments)
    body = await gateway.query(document)
    codes = {error["extensions"]["code"] for error in body["errors"]}
    assert codes == {"QUERY_TOO_DEEP", "QUERY_TOO_COSTLY"}
    assert (await gateway.query("{ __typename }"))["data"] == {"__typename": "Query"}


# -- the whole operation under one deadline ---------------------------------------------------


class HangingAgency:
    """An agency API that accepts every request and never answers, noting when the caller
    gives up (the connection closes)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.abandoned = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.requested.set()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.abandoned.set()
                return


async def test_timeout_stops_the_source_call_and_answers_before_the_deadline(
    demo_data: DemoData,
) -> None:
    """The source's own timeout (120 s) is longer than the request's (0.5 s): the source call
    gets what is left of the request's time, is abandoned at the agency, and the answer says
    which source did not answer (issue 19: not REQUEST_TIMEOUT with no data at all)."""
    agency = HangingAgency()
    server = ThreadedServer(agency)
    server.start()
    (rest,) = [s for s in demo_data.config.sources if s.id == REST_SOURCE]
    hanging = rest.model_copy(update={"base_url": server.url, "timeout_seconds": 120})
    others = tuple(s for s in demo_data.config.sources if s.id != REST_SOURCE)
    config = with_limits(replace(demo_data.config, sources=(*others, hanging)), timeout_seconds=0.5)
    case_id = base64.b64encode(f"Case:{REST_SOURCE}:PMOC-000001".encode()).decode()
    try:
        async with serving(config) as gateway:
            started = time.monotonic()
            body = await gateway.query(
                "query($id: ID!) { case(id: $id) { title } }", {"id": case_id}
            )
            took = time.monotonic() - started
            abandoned = await asyncio.to_thread(agency.abandoned.wait, 10)
            after = await gateway.query("{ agencies { code } }")
    finally:
        server.stop()
    assert agency.requested.is_set()
    # answered, not stopped: the operation ended before its deadline (the hard stop would have
    # answered REQUEST_TIMEOUT with no data); the client's clock adds the ASGI round trip
    assert took < 1.0
    assert body["data"] == {"case": None}
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["source"]) == (
        "SOURCE_TIMEOUT",
        REST_SOURCE,
    )
    assert "request's deadline (0.5 s" in error["message"]
    assert abandoned, "the loader's call to the agency was left running"
    assert after["data"]["agencies"]


# -- introspection and GraphiQL ---------------------------------------------------------------


INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_can_be_turned_off(demo_data: DemoData) -> None:
    async with serving(with_limits(demo_data.config, introspection=False)) as gateway:
        body = await gateway.query(INTROSPECTION)
        typename = await gateway.query("{ __typename }")
    assert "data" not in body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"INTROSPECTION_DISABLED"}
    assert "__schema" in body["errors"][0]["message"]
    assert typename["data"] == {"__typename": "Query"}


async def test_key_only_introspection_asks_the_context_whether_the_caller_is_authenticated(
    demo_data: DemoData,
) -> None:
    """The auth layer answers through ``context.authenticated``; anonymous callers are refused."""
    async with serving(with_limits(demo_data.config, introspection="key-only")) as gateway:
        anonymous = await gateway.query(INTROSPECTION)
        view = gateway.app.state.gateway  # the same limits the view hands every request
        schema = _schema()
        context = _context(gateway, authenticated=True)
        keyed = await schema.execute(INTROSPECTION, context_value=context)
        unkeyed = await schema.execute(INTROSPECTION, context_value=_context(gateway, False))
    assert view is not None
    assert anonymous["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert keyed.errors is None and keyed.data == {"__schema": {"queryType": {"name": "Query"}}}
    assert unkeyed.errors and unkeyed.errors[0].extensions["code"] == "INTROSPECTION_DISABLED"


def _schema() -> Any:
    from resolvers import build_schema

    return build_schema()


class _KeyedContext:
    """A request context as the auth layer provides it: ``authenticated`` says who asks."""

    def __init__(self, context: Any, authenticated: bool) -> None:
        self._context = context
        self.authenticated = authenticated

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _context(gateway: RunningGateway, authenticated: bool) -> Any:
    from resolvers import Context

    parts = gateway.gateway
    context = Context.for_request(parts.federation, parts.directory, parts.limits)
    return _KeyedContext(context, authenticated)


async def test_graphiql_can_be_turned_off(demo_data: DemoData) -> None:
    async with serving(with_limits(demo_data.config, graphiql=False)) as gateway:
        page = await gateway.client.get("/graphql", headers={"accept": "text/html"})
        query = await gateway.client.get("/graphql", params={"query": "{ __typename }"})
    assert "graphiql" not in page.text.lower()
    assert page.status_code == 404
    assert query.json()["data"] == {"__typename": "Query"}


async def test_graphiql_and_introspection_are_on_by_default(gateway: RunningGateway) -> None:
    page = await gateway.client.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" in page.text.lower()
    assert (await gateway.query(INTROSPECTION))["data"]["__schema"]["queryType"]["name"] == "Query"


# -- request bodies ---------------------------------------------------------------------------


async def test_ten_megabyte_body_is_413_naming_the_limit(gateway: RunningGateway) -> None:
    huge = '{"query": "{ __typename }", "variables": {"x": "' + "ก" * 3_500_000 + '"}}'
    response = await gateway.client.post(
        "/graphql", content=huge.encode(), headers={"content-type": "application/json"}
    )
    assert len(huge.encode()) > 10_000_000
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert error["extensions"]["limit"] == 1_000_000
    assert "limits.max_body_bytes" in error["message"]
    assert (await gateway.query("{ __typename }"))["data"] == {"__typename": "Query"}


async def test_body_without_length_is_cut_at_the_limit(demo_data: DemoData) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"x": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}}'

    async with serving(with_limits(demo_data.config, max_body_bytes=50_000)) as gateway:
        response = await gateway.client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await gateway.client.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["limit"] == 50_000
    assert small.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("key", ["max_depth", "max_cost", "timeout_seconds", "max_body_bytes"])
def test_limits_are_validated_in_configuration(demo_data: DemoData, key: str) -> None:
    from gateway.config import ConfigError, parse_config

    text = f"categories: [{{code: X, name_th: x, name_en: x}}]\nlimits: {{{key}: 0}}\nsources: []"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, {})
    assert any(f"limits.{key}" in problem for problem in raised.value.problems)


async def test_timeout_cancels_a_waiting_sql_statement_in_the_database(
    demo_data: DemoData, agency_dsn: str
) -> None:
    """A statement stuck behind a lock is cancelled in PostgreSQL itself when the time the
    operation's deadline leaves the call has passed, not left waiting for the source's own
    (longer) timeout; the answer names the source."""
    (pg,) = [s for s in demo_data.config.sources if s.id == POSTGRES_SOURCE]
    own = pg.model_copy(
        update={
            "url": agency_dsn.replace("postgresql://", "postgresql+asyncpg://"),
            "timeout_seconds": 120,
        }
    )
    config = with_limits(replace(demo_data.config, sources=(own,)), timeout_seconds=0.5)
    database = agency_dsn.rsplit("/", 1)[1]
    locker = await asyncpg.connect(agency_dsn)
    try:
        async with serving(config) as gateway:
            warm = await gateway.query("{ cases(first: 1) { totalCount } }")
            async with locker.transaction():
                await locker.execute("LOCK TABLE complaints IN ACCESS EXCLUSIVE MODE")
                body = await gateway.query("{ cases(first: 1) { totalCount } }")
                waiting = await _waiting_on_locks(locker, database)
            after = await gateway.query("{ cases(first: 1) { totalCount } }")
    finally:
        await locker.close()
    assert warm["data"]["cases"]["totalCount"] > 0
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["source"]) == (
        "SOURCE_TIMEOUT",
        POSTGRES_SOURCE,
    )
    assert waiting == 0, "the gateway's statement still waits in PostgreSQL"
    assert after["data"]["cases"]["totalCount"] == warm["data"]["cases"]["totalCount"]


async def _waiting_on_locks(connection: asyncpg.Connection, database: str) -> int:
    """Backends of ``database`` waiting on a lock, once none are (or after 10 s, however many)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    async with asyncio.timeout(10):
        while True:  # a condition with a deadline: the cancel request travels asynchronously
            count: int = await connection.fetchval(query, database)
            if count == 0:
                return 0
            await asyncio.sleep(0.02)
