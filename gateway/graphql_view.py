"""Strawberry's ASGI view, adapted: per-request context, UTF-8 JSON, GraphiQL with an example."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from resolvers import Context, Directory, Limits
from resolvers.context import EventStream
from sources import Federation

EXAMPLE_QUERY = """\
# complaint-graph: one graph over many agencies' complaint systems.
# Press Ctrl-Enter to run. Every case below is read live from its agency's own database.
query LatestCases {
  cases(first: 5, orderBy: {field: RECEIVED_AT, direction: DESC}) {
    totalCount
    edges {
      node {
        id
        referenceNumber
        title
        status
        sourceStatus
        channel
        receivedAt
        isOverdue
        category { code nameTh }
        location { province { nameTh nameEn } district { nameTh } }
        owningAgency { code nameTh }
        source { id kind }
        timeline { at status sourceStatus note }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's view with the GraphQL-over-HTTP media types and status codes.

    A request error (the document does not parse or validate) has no ``data`` entry; under
    ``application/graphql-response+json`` it is a 400, under ``application/json`` a 200 as the
    spec asks for compatibility. A response with data is a 200 either way.
    """

    def __init__(
        self,
        *args: Any,
        federation: Federation,
        directory: Directory,
        limits: Limits,
        events: EventStream | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.federation = federation
        self.directory = directory
        self.limits = limits
        self.events = events

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context.for_request(self.federation, self.directory, self.limits, self.events)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        accept = request.headers.get("accept", "")
        sub_response.media_type = GRAPHQL_RESPONSE_JSON if GRAPHQL_RESPONSE_JSON in accept else None
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            response.pop("data", None)  # a request error: execution never began
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if isinstance(response_data, dict) and "data" not in response_data:
                response.status_code = 400
        else:
            response.headers["content-type"] = "application/json; charset=utf-8"
        return response

    def encode_json(self, data: object) -> bytes:
        """orjson writes Thai as UTF-8 (never ``\\u0e01``), a third of the escaped size."""
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        html = self.graphql_ide_html
        start = html.index("const EXAMPLE_QUERY = `") + len("const EXAMPLE_QUERY = `")
        end = html.index("`;", start)
        literal = json.dumps(EXAMPLE_QUERY)[1:-1].replace("`", "\\`").replace("${", "\\${")
        return HTMLResponse(html[:start] + literal + html[end:])
