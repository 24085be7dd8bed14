"""What the view does once per request is made cheap without changing what it answers.

The view reads a plain JSON POST itself (gateway/graphql_view.py ``_parse_json_post``) rather
than through strawberry's ``parse_http_body``, and remembers how it read each ``Accept`` and
``Content-Type`` text. These tests hold both to strawberry's reading and to the uncached one.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cross_web import HTTPException
from starlette.requests import Request
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL

from gateway.graphql_view import GraphQLView, asks_for_stream, negotiate
from resolvers import Directory, Limits, build_schema
from sources import Federation


def _view() -> GraphQLView:
    federation = Federation(())
    return GraphQLView(
        build_schema(),
        federation=federation,
        directory=Directory(federation, []),
        limits=Limits(),
        subscription_protocols=(GRAPHQL_SSE_PROTOCOL,),
    )


def _post(body: bytes, headers: dict[str, str]) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        assert not sent, "the body is read once"
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive)


async def _read(read: Any, view: GraphQLView, request: Request) -> object:
    """What ``read`` makes of the request: its data, or the refusal's status and message."""
    try:
        data = await read(view, view.request_adapter_class(request))
    except HTTPException as exc:
        return (exc.status_code, exc.reason)
    if isinstance(data, list):
        return [vars(item) for item in data]
    return vars(data)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ __typename }"},
        {"query": "query A { __typename }", "operationName": "A", "variables": {"x": [1]}},
        {"query": "{ __typename }", "extensions": {"federation": True}, "variables": None},
        {"variables": {}},
        {"query": 1},
        {"query": "{ __typename }", "variables": "x"},
        {"query": "{ __typename }", "extensions": [1]},
        [{"query": "{ __typename }"}],
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"content-type": "application/json; charset=utf-8", "accept": "application/json"},
        {"content-type": "application/json", "accept": "text/event-stream"},
    ],
)
async def test_a_json_post_reads_as_strawberry_reads_it(
    body: object, headers: dict[str, str]
) -> None:
    """Same data, same protocol, same 400s and messages, whichever path read it (a batch and
    a stream still go through strawberry's)."""
    view = _view()
    raw = orjson.dumps(body)
    ours = await _read(GraphQLView.parse_http_body, view, _post(raw, headers))
    strawberrys = await _read(AsyncBaseHTTPView.parse_http_body, view, _post(raw, headers))
    assert ours == strawberrys


def test_long_headers_are_read_every_time_and_read_alike() -> None:
    """Header texts past the remembered length are not kept, and read the same."""
    padding = ", ".join(f"text/x-{n}" for n in range(60))
    assert len(padding) > 256
    accept = f"{padding}, application/graphql-response+json;q=0.4, application/json;q=0.9"
    for _ in range(2):
        assert negotiate(accept) == "application/json"
        assert asks_for_stream(f"{padding}, text/event-stream", [GRAPHQL_SSE_PROTOCOL])
    assert negotiate("application/graphql-response+json") == "application/graphql-response+json"
    assert negotiate("text/html") is None
