"""Parsed and validated documents are remembered by text; what depends on the request is not."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
from graphql import build_schema as build_sdl
from graphql import parse

from resolvers import limits as limits_module
from resolvers.documents import MAX_MEASURES, DocumentCache
from resolvers.limits import QueryLimits, document_cache, measure_errors
from resolvers.schema import build_schema
from tests.conftest import DemoData
from tests.gateway.test_limits import extensions, only_error, serving, with_limits

PAGE = """
query Page($first: Int!) {
  cases(first: $first) { edges { node { referenceNumber timeline { at } } } }
}
"""


def cache() -> DocumentCache:
    return document_cache(build_schema()._schema)


async def test_a_document_is_parsed_and_validated_once(demo_data: DemoData) -> None:
    document = PAGE + "# once\n"
    async with serving(demo_data.config) as gateway:
        misses = cache().misses
        first = await gateway.query(document, {"first": 3})
        hits = cache().hits
        second = await gateway.query(document, {"first": 3})
    assert "errors" not in first
    assert second == first
    assert cache().misses == misses + 1
    assert cache().hits == hits + 1


async def test_cost_is_measured_per_request_with_its_own_variables(demo_data: DemoData) -> None:
    document = PAGE + "# cost\n"
    config = with_limits(demo_data.config, max_cost=150, list_size=5)
    async with serving(config) as gateway:
        cheap = await gateway.query(document, {"first": 2})
        costly = await gateway.query(document, {"first": 100})  # the text is cached by now
    assert "errors" not in cheap
    assert extensions(only_error(costly)) == {
        "code": "QUERY_TOO_COSTLY",
        "limit": 150,
        "value": 1 + 1 + 100 * (1 + 1),  # cases, edges, 100 x (node, timeline)
    }


async def test_a_document_cached_under_a_larger_token_limit_is_refused_under_a_smaller(
    demo_data: DemoData,
) -> None:
    document = "{ " + " ".join(["__typename"] * 40) + " } # tokens"
    async with serving(demo_data.config) as roomy:
        fine = await roomy.query(document)
    async with serving(with_limits(demo_data.config, max_tokens=20)) as strict:
        refused = await strict.query(document)
    assert fine["data"] == {"__typename": "Query"}
    assert extensions(only_error(refused)) == {"code": "TOO_MANY_TOKENS", "limit": 20}


async def test_invalid_documents_are_refused_from_the_cache_too(demo_data: DemoData) -> None:
    document = "{ cases { edges { node { noSuchField } } } }"
    async with serving(demo_data.config) as gateway:
        first = only_error(await gateway.query(document))
        second = only_error(await gateway.query(document))
    assert "noSuchField" in first["message"]
    assert second["message"] == first["message"]
    assert extensions(second)["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_introspection_stays_refused_for_a_document_cached_while_it_was_open(
    demo_data: DemoData,
) -> None:
    document = "{ __schema { queryType { name } } }"
    async with serving(demo_data.config) as open_gateway:
        allowed = await open_gateway.query(document)
    async with serving(with_limits(demo_data.config, introspection=False)) as closed:
        refused = await closed.query(document)
    assert allowed["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    assert refused.get("data") is None
    assert {extensions(e)["code"] for e in refused["errors"]} == {"INTROSPECTION_DISABLED"}


def test_the_cache_is_bounded_by_the_length_of_the_texts_it_holds() -> None:
    schema = build_sdl("type Query { a: Int b: Int }")
    held = DocumentCache(schema, max_bytes=800)
    texts = [f"{{ a{i}: a b }}" for i in range(200)]
    for text in texts:
        held.checked(text, 100)
    assert 0 < sum(len(t) for t in texts[-len(held) :]) <= 800
    assert len(held) < len(texts)
    # the most recent are kept, the oldest gone
    hits = held.hits
    held.checked(texts[-1], 100)
    assert held.hits == hits + 1
    misses = held.misses
    held.checked(texts[0], 100)
    assert held.misses == misses + 1


def test_a_text_too_long_to_keep_is_checked_every_time() -> None:
    schema = build_sdl("type Query { a: Int }")
    held = DocumentCache(schema, max_bytes=800)
    long_text = "{ " + " ".join(f"x{i}: a" for i in range(40)) + " }"
    assert len(long_text) > 100
    first = held.checked(long_text, 1000)
    second = held.checked(long_text, 1000)
    assert first.errors == second.errors == []
    assert first.document is not second.document
    assert len(held) == 0


def test_a_documents_measure_is_remembered_by_the_page_sizes_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """measure_errors walks a cached document once per set of page sizes, and answers as a
    fresh walk would, for every value of ``first`` (a boolean is not a number here)."""
    schema = build_schema()._schema
    document = parse(PAGE)
    limits = QueryLimits(max_cost=150, list_size=5)
    sizes = (20, 500)
    walks: list[dict[str, Any]] = []
    measure = limits_module._measures

    def counted(*args: Any) -> Any:
        walks.append(args[3])
        return measure(*args)

    monkeypatch.setattr(limits_module, "_measures", counted)
    memo: dict[Hashable, Any] = {}

    def errors(variables: dict[str, Any], page_sizes: tuple[int, int] = sizes) -> list[Any]:
        remembered = measure_errors(schema, document, limits, variables, page_sizes, memo)
        fresh = measure_errors(schema, document, limits, variables, page_sizes)
        assert [e.formatted for e in remembered] == [e.formatted for e in fresh]
        return [e.extensions for e in remembered]

    walks.clear()
    assert errors({"first": 2}) == []
    assert errors({"first": 2, "unrelated": [1, 2]}) == []  # only `first` is read
    costly = [{"code": "QUERY_TOO_COSTLY", "limit": 150, "value": 202}]
    assert errors({"first": 100}) == costly
    assert errors({"first": 100}) == costly
    assert errors({"first": True}) == []  # not a number: the default page of 20 (42)
    assert errors({"first": 1}) == []
    assert errors({"first": 100}, (20, 50)) == []  # capped at the maximum page: 102
    # one walk per distinct key with the memo, besides each fresh walk
    remembered_walks = len(walks) - 7
    assert remembered_walks == 5  # first 2, 100, True, 1, and 100 under other page sizes
    for first in range(200):  # bounded: emptied when full
        errors({"first": first})
    assert len(memo) <= MAX_MEASURES + 2
    # a value the walk does not take as a number is keyed as such, never kept itself
    memo.clear()
    walks.clear()
    assert errors({"first": "x" * 100_000}) == errors({"first": "y"}) == []
    assert errors({"first": None}) == errors({"first": 2.5}) == []
    assert len(walks) - 4 == 1  # one walk for all four (besides the four fresh ones)
    assert all(len(repr(key)) < 200 for key in memo)
