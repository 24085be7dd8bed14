"""Strawberry's ASGI view, adapted: per-request context, UTF-8 JSON, GraphiQL with an example."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from resolvers import Context, Directory, Limits
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


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self, *args: Any, federation: Federation, directory: Directory, limits: Limits, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.federation = federation
        self.directory = directory
        self.limits = limits

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return Context.for_request(self.federation, self.directory, self.limits)

    def encode_json(self, data: object) -> bytes:
        """orjson writes Thai as UTF-8 (never ``\\u0e01``), a third of the escaped size."""
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        html = self.graphql_ide_html
        start = html.index("const EXAMPLE_QUERY = `") + len("const EXAMPLE_QUERY = `")
        end = html.index("`;", start)
        literal = json.dumps(EXAMPLE_QUERY)[1:-1].replace("`", "\\`").replace("${", "\\${")
        return HTMLResponse(html[:start] + literal + html[end:])
