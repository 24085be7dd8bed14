"""The app's executor answers exactly as strawberry's stock execution does.

``build_schema`` gives strawberry a custom ``execution_context_class`` (the fast list and field
executor, resolvers/list_execution.py). Every document here goes through the HTTP layer twice,
once executed by strawberry's stock execution context instead (graphql-core's public
``execute``) and once as the app executes it: the two bodies must be the same JSON text
(``data``, ``errors`` with their messages, paths and extensions, key order), apart from each
request's own ``requestId``.

Documents: every GraphiQL example (gateway/examples.py), every GraphQL example of the docs
(README.md and docs/), and hundreds generated from schema.graphql by hypothesis-graphql
(derandomised: the same ones every run). Also with a source down (partial results) and as each
role of the demo keys (inspector, analyst, auditor, each agency, no key).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import graphql
import pytest
import pytest_asyncio
import strawberry
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

import resolvers.context
import sources._query
import sources.sql._statements
from gateway.demo import DEMO_ANALYST_KEY, DEMO_AUDITOR_KEY, DEMO_INSPECTOR_KEY, demo_agency_key
from gateway.examples import CASE_TRAIL, EXAMPLES
from resolvers.schema import build_schema
from tests.conftest import AccessWorld, DemoData, RunningGateway, serving
from tests.gateway.test_hostile_fuzz import CUSTOM_SCALARS
from tests.resolvers.expected import POSTGRES_SOURCE, REST_SOURCE

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
SDL = (ROOT / "schema.graphql").read_text(encoding="utf-8")

DIFFERENTIAL = settings(
    deadline=None,
    derandomize=True,  # the same documents every run: a difference found is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


STOCK = StrawberryGraphQLCoreExecutionContext
"""Strawberry's own execution context, what a schema without ``execution_context_class`` gets
(on graphql-core's public ``execute``)."""


@dataclass(frozen=True)
class Pair:
    """One gateway, each request sent twice: once executed by strawberry's stock execution,
    once as the app executes it. The schema's ``execution_context_class``, which strawberry
    reads at each execution, is switched between the two (a second schema cannot be built
    from the same types: strawberry's relay fields bind to the first)."""

    gateway: RunningGateway
    schema: strawberry.Schema
    executor: type[Any]

    async def compare(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Both answers to one request, which must be the same; the app's, parsed."""
        answers = []
        with frozen_clock():
            for executor in (STOCK, self.executor):
                answers.append(await self._ask(executor, document, variables, headers))
        stock, app = answers
        assert app == stock, difference(document, variables, stock, app)
        body: dict[str, Any] = json.loads(app[1])
        return body

    async def _ask(
        self,
        executor: type[Any],
        document: str,
        variables: dict[str, Any] | None,
        headers: dict[str, str] | None,
    ) -> tuple[int, str]:
        self.schema.execution_context_class = executor
        try:
            response = await self.gateway.client.post(
                "/graphql", json={"query": document, "variables": variables}, headers=headers
            )
        finally:
            self.schema.execution_context_class = self.executor
        return response.status_code, canonical(response.json())


def difference(
    document: str, variables: dict[str, Any] | None, stock: tuple[int, str], app: tuple[int, str]
) -> str:
    """Where the two answers part, with some text either side."""
    at = next(
        (i for i, (a, b) in enumerate(zip(stock[1], app[1], strict=False)) if a != b),
        min(len(stock[1]), len(app[1])),
    )
    start = max(0, at - 300)
    return (
        f"stock and app differ for\n{document}\nvariables {variables}\n"
        f"status {stock[0]} / {app[0]}; from character {at}:\n"
        f"stock: ...{stock[1][start : at + 300]}\n"
        f"app:   ...{app[1][start : at + 300]}"
    )


class _Frozen(datetime):
    """``datetime`` whose ``now`` is one instant: the request's clock (``Context.now``, the
    ``asOf`` of statistics, what is overdue) must not differ between the two executions."""

    instant: datetime

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> Any:
        return cls.instant if tz is None else cls.instant.astimezone(tz)


@contextmanager
def frozen_clock() -> Iterator[None]:
    _Frozen.instant = datetime.now(UTC)
    with pytest.MonkeyPatch.context() as patch:
        for module in (resolvers.context, sources._query, sources.sql._statements):
            patch.setattr(module, "datetime", _Frozen)
        yield


def canonical(body: dict[str, Any]) -> str:
    """The body as JSON text in its own key order, without the per-request ``requestId``, and
    its errors in a fixed order.

    The errors' order is left open by the GraphQL spec, and both executors list them as the
    fields that raise them finish: concurrent fields (three ``caseStats`` with sources down)
    give them in a different order from one identical request to the next, under strawberry's
    stock execution as under the app's. Everything in each error is still compared."""
    errors = body.get("errors")
    for error in errors or ():
        extensions = error.get("extensions")
        if isinstance(extensions, dict):
            extensions.pop("requestId", None)
    if isinstance(errors, list):
        errors.sort(key=lambda error: json.dumps(error, ensure_ascii=False))
    return json.dumps(body, ensure_ascii=False)


@asynccontextmanager
async def pair(config: Any) -> AsyncIterator[Pair]:
    async with serving(config) as started:
        schema = build_schema()
        assert started.app.state.gateway is started.gateway
        executor = schema.execution_context_class
        assert executor is not STOCK  # the app's own executor: what is compared with stock
        yield Pair(started, schema, executor)


def with_source(config: Any, source_id: str, **changes: Any) -> Any:
    sources = tuple(
        s.model_copy(update=changes) if s.id == source_id else s for s in config.sources
    )
    return replace(config, sources=sources)


def outcome(body: dict[str, Any]) -> None:
    """What a generated document got, for ``--hypothesis-show-statistics``: how many of them
    were executed into data rather than refused."""
    if body.get("data") and body.get("errors"):
        event("data and errors")
    elif body.get("data"):
        event("data")
    else:
        event(
            "errors only: " + str((body.get("errors") or [{}])[0].get("extensions", {}).get("code"))
        )


# -- the fixed corpus ------------------------------------------------------------------------


def _doc_examples() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every ```graphql block of README.md and docs/, with the variables the text names."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    block = re.compile(r"```graphql\n(.*?)```", re.S)
    for page in pages:
        if not page.exists():
            continue
        for number, match in enumerate(block.finditer(page.read_text("utf-8")), 1):
            text = match.group(1)
            variables = dict(CASE_TRAIL.variables) if "$id" in text else {}
            yield f"{page.relative_to(ROOT)}#{number}", text, variables


CORPUS: list[tuple[str, str, dict[str, Any]]] = [
    *((f"examples:{e.name}", e.query, dict(e.variables)) for e in EXAMPLES),
    *_doc_examples(),
]


async def test_the_corpus_holds_every_example() -> None:
    assert len([name for name, _, _ in CORPUS if name.startswith("examples:")]) == len(EXAMPLES)
    assert len(CORPUS) > len(EXAMPLES)  # and the docs' examples


# -- the demo agencies, as the suite's anonymous inspector ------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(demo_data: DemoData) -> AsyncIterator[Pair]:
    async with pair(demo_data.config) as both:
        yield both


@pytest.mark.parametrize(("name", "document", "variables"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_each_example_is_answered_alike(
    demo: Pair, name: str, document: str, variables: dict[str, Any]
) -> None:
    body = await demo.compare(document, variables)
    if name.startswith("examples:"):  # (the docs also show refusals: a cost limit, a typo)
        assert body.get("data"), (name, body)  # an example that answers, not only errors


@settings(DIFFERENTIAL, max_examples=300)
@given(document=queries(SDL, custom_scalars=CUSTOM_SCALARS, print_ast=graphql.print_ast))
async def test_generated_documents_are_answered_alike(demo: Pair, document: str) -> None:
    outcome(await demo.compare(document))


# -- a source down: partial results ----------------------------------------------------------


def down(config: Any, source_id: str, **address: str) -> Any:
    """``config`` with a source at an address where nothing listens, failing every call the
    same way: no retries, and a circuit that never opens (an open circuit's message counts
    down its seconds, and the first of two requests would open it for the second)."""
    source = next(s for s in config.sources if s.id == source_id)
    resilience = source.resilience.model_copy(
        update={"retries": 0, "circuit_failure_threshold": 1_000_000}
    )
    return with_source(config, source_id, resilience=resilience, **address)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def one_down(demo_data: DemoData) -> AsyncIterator[Pair]:
    config = down(
        demo_data.config, POSTGRES_SOURCE, url="postgresql+asyncpg://postgres@127.0.0.1:1/down"
    )
    config = down(config, REST_SOURCE, base_url="http://127.0.0.1:1/down")
    async with pair(config) as both:
        yield both


@pytest.mark.parametrize(("name", "document", "variables"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_partial_results_are_alike_with_sources_down(
    one_down: Pair, name: str, document: str, variables: dict[str, Any]
) -> None:
    await one_down.compare(document, variables)


async def test_a_page_with_sources_down_has_their_errors(one_down: Pair) -> None:
    """The comparison above is of partial results: the down sources' errors are there."""
    body = await one_down.compare("{ cases(first: 5) { edges { node { id title } } } }")
    named = {error["extensions"].get("source") for error in body["errors"]}
    assert {POSTGRES_SOURCE, REST_SOURCE} <= named
    assert body["data"]["cases"]["edges"]


@settings(DIFFERENTIAL, max_examples=60)
@given(document=queries(SDL, custom_scalars=CUSTOM_SCALARS, print_ast=graphql.print_ast))
async def test_generated_documents_are_alike_with_sources_down(
    one_down: Pair, document: str
) -> None:
    outcome(await one_down.compare(document))


# -- each role's access rules (the demo keys) ------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def closed(access_world: AccessWorld) -> AsyncIterator[Pair]:
    async with pair(access_world.config) as both:
        yield both


def _keys(world_sources: list[str]) -> list[str | None]:
    return [
        None,  # no key: introspection only
        DEMO_INSPECTOR_KEY,
        DEMO_ANALYST_KEY,
        DEMO_AUDITOR_KEY,
        *(demo_agency_key(agency) for agency in world_sources),
    ]


def _headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key is not None else {}


@pytest.fixture(scope="module")
def keys(access_world: AccessWorld) -> list[str | None]:
    return _keys(list(dict.fromkeys(s.agency.code for s in access_world.config.sources)))


async def test_each_role_sees_the_corpus_alike(closed: Pair, keys: list[str | None]) -> None:
    views: dict[str, set[str]] = {}
    for key in keys:
        for name, document, variables in CORPUS:
            body = await closed.compare(document, variables, _headers(key))
            views.setdefault(name, set()).add(json.dumps(body.get("data"), sort_keys=True))
    differing = [name for name, seen in views.items() if len(seen) > 1]
    assert len(differing) >= len(CORPUS) // 2, views  # the roles do see different things


@settings(DIFFERENTIAL, max_examples=100)
@given(
    document=queries(SDL, custom_scalars=CUSTOM_SCALARS, print_ast=graphql.print_ast),
    which=st.integers(min_value=0, max_value=63),  # a key of the list, about evenly
)
async def test_generated_documents_are_alike_for_each_role(
    closed: Pair, keys: list[str | None], document: str, which: int
) -> None:
    outcome(await closed.compare(document, headers=_headers(keys[which % len(keys)])))
