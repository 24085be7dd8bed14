"""The view's own reading of ``Accept`` for subscription streams (``asks_for_stream``) agrees
with strawberry's public stream transports, which decide how the request is then answered."""

from __future__ import annotations

import pytest
from strawberry.http.streaming import MultipartSubscriptionTransport, SSETransport
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL

from gateway.graphql_view import asks_for_stream

ACCEPTS = [
    "text/event-stream",
    "Text/Event-Stream; charset=utf-8",
    "application/json, text/event-stream;q=0.9",
    "application/json",
    "application/graphql-response+json",
    "*/*",
    "",
    'multipart/mixed; subscriptionSpec="1.0"',
    "multipart/mixed;subscriptionSpec=1.0",
    "multipart/mixed",
    'multipart/mixed; subscriptionSpec="2.0"',
    "text/html",
]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_sse_as_strawberrys_transport_reads_it(accept: str) -> None:
    assert asks_for_stream(accept, [GRAPHQL_SSE_PROTOCOL]) == SSETransport().accepts(accept)


@pytest.mark.parametrize("accept", ACCEPTS)
def test_multipart_as_strawberrys_transport_reads_it(accept: str) -> None:
    transport = MultipartSubscriptionTransport()
    assert asks_for_stream(accept, [MULTIPART_SUBSCRIPTION_PROTOCOL]) == transport.accepts(accept)


def test_a_stream_the_view_does_not_serve_is_not_asked_for() -> None:
    assert not asks_for_stream("text/event-stream", [])
    assert not asks_for_stream(None, [GRAPHQL_SSE_PROTOCOL])
    assert not asks_for_stream('multipart/mixed; subscriptionSpec="1.0"', [GRAPHQL_SSE_PROTOCOL])
