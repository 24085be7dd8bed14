"""Strawberry's ASGI view, adapted: GraphQL over HTTP to the letter, UTF-8 JSON, GraphiQL.

Media types follow the GraphQL-over-HTTP specification: the ``Accept`` header is negotiated
with q-values between ``application/graphql-response+json`` and ``application/json`` (406 when
it allows neither), a POST body must be ``application/json`` (415 otherwise), a GET never runs a
mutation (405 with ``Allow: POST``), a malformed request is a 400 whose body is still a GraphQL
response. Every error carries ``extensions.code`` and ``extensions.requestId``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

import orjson
from cross_web import HTTPException
from graphql import GraphQLError, GraphQLSyntaxError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from gateway.auth import Authenticator, authenticate_connection, authenticate_context
from gateway.examples import graphiql_html
from gateway.graphiql_assets import offline
from gateway.metrics import Metrics
from gateway.request_context import (
    RequestRecord,
    current_request,
    current_request_id,
    request_id_from,
)
from gateway.tracing import Tracing
from gateway.ws_protocols import CheckedLegacyWSHandler, CheckedTransportWSHandler
from resolvers import Context, Directory, Limits
from resolvers.context import Clock, EventStream, system_clock
from resolvers.writes import Writes
from sources import Federation

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
_WILDCARDS = ("*/*", "application/*")
R = TypeVar("R")
_STATUS_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class _RequestRefused(HTTPException):
    """An HTTP-level refusal that needs response headers (405's ``Allow``)."""

    def __init__(self, status_code: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(status_code, reason)
        self.headers = headers


def _per_header(read: Callable[[str | None], R]) -> Callable[[str | None], R]:
    """``read`` of a header's text, remembered for the last few hundred distinct short texts:
    clients send the same few ``Accept`` and ``Content-Type`` headers on every request. A
    long one (a client's kilobytes) is read every time, never kept."""
    remembered = lru_cache(maxsize=256)(read)

    @wraps(read)
    def reading(header: str | None) -> R:
        if header is not None and len(header) > _REMEMBERED_HEADER:
            return read(header)
        return remembered(header)

    return reading


_REMEMBERED_HEADER = 256
"""Header texts up to this length are remembered by :func:`_per_header`."""


@_per_header
def negotiate(accept: str | None) -> str | None:
    """The response media type an ``Accept`` header asks for, or None when it allows neither.

    No header, or only wildcards, means ``application/json`` (what graphql-http's audit expects
    until clients move over). Otherwise the higher q-value wins; on a tie a type named outright
    beats a wildcard, and ``application/graphql-response+json`` beats ``application/json``.
    """
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    named: dict[str, float] = {}
    wildcard: float | None = None
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = _quality(params)
        media = media.lower()
        if media in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON):
            named[media] = quality
        elif media in _WILDCARDS:
            wildcard = max(quality, wildcard or 0.0)
    ranked = []
    for media in (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON):
        quality = named.get(media, wildcard if wildcard is not None else 0.0)
        if quality > 0:
            is_named = media in named
            preferred = (media == GRAPHQL_RESPONSE_JSON) == is_named
            ranked.append((quality, is_named, preferred, media))
    return max(ranked)[3] if ranked else None


def asks_for_stream(accept: str | None, protocols: Sequence[str]) -> bool:
    """Whether ``Accept`` asks for a subscription stream over HTTP that this view serves:
    Server-Sent Events (``text/event-stream``, with ``graphql-sse`` among ``protocols``) or
    multipart subscriptions (``multipart/mixed; subscriptionSpec=1.0``). The same reading as
    strawberry's transports' public ``accepts``, done here so the view needs no private helper."""
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        media = media.lower()
        if media == "text/event-stream" and GRAPHQL_SSE_PROTOCOL in protocols:
            return True
        if media == "multipart/mixed" and MULTIPART_SUBSCRIPTION_PROTOCOL in protocols:
            spec = dict(
                (name.strip().lower(), value.strip().strip("'\""))
                for name, _, value in (param.partition("=") for param in params)
            ).get("subscriptionspec", "")
            if spec.startswith("1.0"):
                return True
    return False


@_per_header
def _is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names ``application/json`` (any parameters), read as
    strawberry reads it (``parse_content_type``), once per distinct header text."""
    media_type, _ = parse_content_type(content_type or "")
    return media_type == APPLICATION_JSON


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


@dataclass(frozen=True)
class _Operations:
    """The operations a document defines, as (name, type) pairs; empty when it does not parse."""

    found: tuple[tuple[str | None, str], ...]

    def select(self, name: str | None) -> tuple[str | None, str] | str | None:
        """The operation GetOperation() picks, an error message, or None for no document."""
        if not self.found:
            return None
        if name is None:
            if len(self.found) > 1:
                return "Must provide operation name if query contains multiple operations."
            return self.found[0]
        for operation in self.found:
            if operation[0] == name:
                return operation
        return f'Unknown operation named "{name}".'


@lru_cache(maxsize=512)
def _operations(query: str) -> _Operations:
    """Parsed once per distinct document; strawberry parses again to execute it."""
    try:
        document = parse(query)
    except GraphQLError:
        return _Operations(())
    return _Operations(
        tuple(
            (None if d.name is None else d.name.value, d.operation.value)
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        )
    )


def _code_of(error: GraphQLError) -> str:
    """A code for errors that reach the response without one: the request-level ones."""
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED"  # validation or variable coercion: nothing ran
    return "INTERNAL_SERVER_ERROR"


def _request_id(request: Request | WebSocket) -> str | None:
    record = getattr(getattr(request, "state", None), "record", None)
    if isinstance(record, RequestRecord):
        return record.request_id
    return current_request_id()


def _request_error(message: str) -> ExecutionResult:
    return ExecutionResult(
        data=None,
        errors=[GraphQLError(message, extensions={"code": "OPERATION_RESOLUTION_FAILURE"})],
    )


def _with_request_id(message: Mapping[str, object], request_id: str) -> Mapping[str, object]:
    """A WebSocket message whose GraphQL errors (graphql-transport-ws or graphql-ws) carry the
    connection's request id, as HTTP responses' errors do."""
    payload = message.get("payload")
    if message.get("type") == "error" and isinstance(payload, list):
        return {**message, "payload": [_error_with_id(e, request_id) for e in payload]}
    if message.get("type") == "error" and isinstance(payload, dict):
        return {**message, "payload": _error_with_id(payload, request_id)}
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        errors = [_error_with_id(e, request_id) for e in payload["errors"]]
        return {**message, "payload": {**payload, "errors": errors}}
    return message


def _error_with_id(error: object, request_id: str) -> object:
    if not isinstance(error, dict):
        return error
    return {**error, "extensions": {**(error.get("extensions") or {}), "requestId": request_id}}


class _WebSocketAdapter(ASGIWebSocketAdapter):
    async def send_json(self, message: Mapping[str, object]) -> None:
        request_id = current_request_id()
        if request_id is not None:
            message = _with_request_id(message, request_id)
        await super().send_json(message)


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's view with the GraphQL-over-HTTP media types and status codes.

    A request error (the document does not parse or validate, the operation cannot be chosen,
    variables do not coerce) has no ``data`` entry; under ``application/graphql-response+json``
    it is a 400, under ``application/json`` a 200 as the spec asks for compatibility. A response
    with data is a 200 either way.
    """

    websocket_adapter_class = _WebSocketAdapter
    graphql_transport_ws_handler_class = CheckedTransportWSHandler  # malformed messages: 4400
    graphql_ws_handler_class = CheckedLegacyWSHandler  # and bad credentials 4403, not 1011

    def __init__(
        self,
        *args: Any,
        federation: Federation,
        directory: Directory,
        limits: Limits,
        events: EventStream | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.federation = federation
        self.directory = directory
        self.limits = limits
        self.events = events
        self.metrics = metrics
        self.tracing = tracing or Tracing(None)
        self.clock: Clock = system_clock  # set by the app: the configuration may fix it
        protocols = tuple(self.protocols)
        self._asks_for_stream = _per_header(lambda accept: asks_for_stream(accept, protocols))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        headers = request.headers
        record = current_request() or RequestRecord(request_id_from(headers.get("x-request-id")))
        request.state.record = record
        accept = headers.get("accept")
        if self._is_page_or_stream(request, accept):
            response = await self._run(request, APPLICATION_JSON)
            await response(scope, receive, send)
            return
        started = time.perf_counter()
        if self.tracing.tracer is None:  # tracing off: not even an empty span to enter
            response = await self._answer(request, accept)
        else:
            response = await self._traced(request, accept, record)
        if self.metrics is not None:
            self.metrics.observe_request(
                record.operation_type,
                record.operation_name,
                response.status_code,
                time.perf_counter() - started,
                record.error_codes,
            )
        await response(scope, receive, send)

    async def _traced(
        self, request: Request, accept: str | None, record: RequestRecord
    ) -> Response:
        """The request answered inside its span, which is named once the operation is known."""
        with self.tracing.request_span(request.headers, record.request_id) as span:
            response = await self._answer(request, accept)
            if span.is_recording():
                kind = record.operation_type or "graphql"
                span.update_name(f"{kind} {record.operation_name or 'anonymous'}")
                span.set_attribute("graphql.operation.type", record.operation_type or "")
                span.set_attribute("graphql.operation.name", record.operation_name or "")
                span.set_attribute("http.response.status_code", response.status_code)
        return response

    def _is_page_or_stream(self, request: Request, accept: str | None) -> bool:
        """GraphiQL in a browser (only ever for a GET), or a subscription over Server-Sent
        Events."""
        if request.method == "GET" and self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return True
        return self._asks_for_stream(accept)

    async def _answer(self, request: Request, accept: str | None) -> Response:
        media_type = negotiate(accept)
        if media_type is None:
            return self._refusal(
                request,
                406,
                f"Accept allows neither {GRAPHQL_RESPONSE_JSON} nor {APPLICATION_JSON}",
                APPLICATION_JSON,
            )
        if request.method == "POST" and not _is_json(request.headers.get("content-type")):
            return self._refusal(request, 415, "a POST body must be application/json", media_type)
        return await self._run(request, media_type)

    async def _run(self, request: Request, media_type: str) -> Response:
        request.state.media_type = media_type
        response: Response | None = None
        try:
            response = await self.run(request)
            return response
        except _RequestRefused as exc:
            return self._refusal(request, exc.status_code, exc.reason, media_type, exc.headers)
        except HTTPException as exc:
            allow = {"allow": "GET, POST"} if exc.status_code == 405 else None  # e.g. HEAD
            return self._refusal(request, exc.status_code, exc.reason, media_type, allow)
        finally:
            context: Context | None = getattr(request.state, "graph_context", None)
            if context is not None and not isinstance(response, StreamingResponse):
                context.release()  # a stream (subscription over SSE) goes on using it

    def _refusal(
        self,
        request: Request,
        status: int,
        message: str,
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A request the gateway will not execute, answered as a GraphQL response all the same."""
        record: RequestRecord = request.state.record
        code = _STATUS_CODES.get(status, "BAD_REQUEST")
        record.error_codes.append(code)
        body = {
            "errors": [
                {"message": message, "extensions": {"code": code, "requestId": record.request_id}}
            ]
        }
        response = Response(self.encode_json(body), status_code=status, headers=headers)
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        return response

    authenticator: Authenticator | None = None  # set by the app (gateway/auth)
    writes: Writes | None = None  # the outbox, set by the app (gateway/outbox.py)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context.for_request(
            self.federation,
            self.directory,
            self.limits,
            self.events,
            principal=None,  # authenticated just below, once
            clock=self.clock,
        )
        authorization = request.headers.get("authorization")
        purpose = (
            request.headers.get(self.authenticator.settings.personal_data.purpose_header)
            if self.authenticator is not None
            else None
        )
        await authenticate_context(context, self.authenticator, authorization, purpose)
        context.writes = self.writes
        if isinstance(request, Request):
            request.state.graph_context = context  # released once answered (_run)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await authenticate_connection(context, self.authenticator)
        return await super().on_ws_connect(context)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        state = getattr(request, "state", None)
        media_type = getattr(state, "media_type", None)
        sub_response.media_type = (
            GRAPHQL_RESPONSE_JSON if media_type == GRAPHQL_RESPONSE_JSON else None
        )
        return sub_response

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        plain = await self._parse_json_post(request)
        data = plain if plain is not None else await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            name: object = data.operation_name
            if name is not None and not isinstance(name, str):
                raise HTTPException(
                    400, "The GraphQL operation's `operationName` must be a string or null."
                )
            if name == "":
                data.operation_name = None  # the spec: an empty name is no name
        return data

    async def _parse_json_post(self, request: Any) -> GraphQLRequestData | None:
        """Almost every request: one operation POSTed as ``application/json`` that asks for
        no stream. Read as strawberry's ``parse_http_body`` reads it (the same checks, the same
        messages), without reading the ``Content-Type`` and ``Accept`` headers again. None for
        anything else (a GET, a batch, a stream, a multipart upload): strawberry reads those."""
        if request.method != "POST" or not _is_json(request.content_type):
            return None
        if self._asks_for_stream(request.headers.get("accept")):
            return None
        data = self.parse_json(await request.get_body())
        if not isinstance(data, dict):
            return None  # a batch: strawberry checks each operation (the body is kept)
        query = data.get("query")
        if not isinstance(query, str | None):
            raise HTTPException(
                400, "The GraphQL operation's `query` must be a string or null, if provided."
            )
        variables = data.get("variables")
        if not isinstance(variables, dict | None):
            raise HTTPException(
                400,
                "The GraphQL operation's `variables` must be an object or null, if provided.",
            )
        extensions = data.get("extensions")
        if not isinstance(extensions, dict | None):
            raise HTTPException(
                400,
                "The GraphQL operation's `extensions` must be an object or null, if provided.",
            )
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=data.get("operationName"),
            extensions=extensions,
            protocol="http",
        )

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        """A GET's ``variables`` and ``extensions`` are JSON text; say which one is not."""
        parsed = dict(params)
        for key in ("variables", "extensions"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                try:
                    parsed[key] = self.decode_json(value)
                except ValueError:
                    raise HTTPException(400, f"`{key}` is not valid JSON") from None
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """GetOperation() as the GraphQL spec has it, then strawberry's execution."""
        record: RequestRecord | None = getattr(request.state, "record", None)
        if not request_data.query:  # absent or empty: strawberry would raise past the view
            raise HTTPException(400, "No GraphQL query found in the request")
        chosen = _operations(request_data.query).select(request_data.operation_name)
        if isinstance(chosen, str):
            return _request_error(chosen)
        if chosen is not None and record is not None:
            record.operation_name, record.operation_type = chosen
        if chosen is not None and chosen[1] == "mutation" and request_adapter.method == "GET":
            raise _RequestRefused(
                405, "a GET request cannot run a mutation; use POST", {"allow": "POST"}
            )
        allowed = {OperationType.QUERY}
        if request_adapter.method == "POST":
            allowed.add(OperationType.MUTATION)
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            return _request_error(exc.as_http_error_reason())
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                return _request_error(
                    "A subscription needs a WebSocket (graphql-transport-ws or graphql-ws) or "
                    "Server-Sent Events (Accept: text/event-stream)."
                )
            raise _RequestRefused(
                405, exc.as_http_error_reason(request_adapter.method), {"allow": "POST"}
            ) from exc

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            response.pop("data", None)  # a request error: execution never began
        record: RequestRecord | None = getattr(getattr(request, "state", None), "record", None)
        request_id = _request_id(request)
        for error, formatted in zip(result.errors or [], response.get("errors") or [], strict=True):
            assert isinstance(formatted, dict)
            extensions = formatted.setdefault("extensions", {})
            extensions.setdefault("code", _code_of(error))
            if request_id is not None:
                extensions["requestId"] = request_id
            if record is not None:
                record.error_codes.append(str(extensions["code"]))
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Strawberry's response (the sub-response's status, headers and background carried
        over) with the negotiated media type, made in one step rather than amended."""
        status = sub_response.status_code or 200
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            content_type = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if isinstance(response_data, dict) and "data" not in response_data:
                status = 400
        else:
            content_type = "application/json; charset=utf-8"
        response = Response(
            self.encode_json(response_data),
            status_code=status,
            headers={"content-type": content_type},
        )
        response.raw_headers.extend(sub_response.raw_headers)
        if sub_response.background:
            response.background = sub_response.background
        return response

    def encode_json(self, data: object) -> bytes:
        """orjson writes Thai as UTF-8 (never ``\\u0e01``), a third of the escaped size."""
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """orjson: a nesting bomb is a JSONDecodeError at depth 1024, not a RecursionError."""
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        """JSON that is not an object (``null``, a number) is a 400, not a crash further on."""
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    graphiql_headers: Mapping[str, str] | None = None  # the demo's key, prefilled (app)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL with the analysts' saved examples as tabs (gateway/examples.py), its
        assets served by the gateway (gateway/graphiql_assets.py)."""
        page = graphiql_html(self.graphql_ide_html, headers=self.graphiql_headers)
        return HTMLResponse(offline(page))
