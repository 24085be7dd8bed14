"""GraphQL over Server-Sent Events in single connection mode (graphql-sse's PROTOCOL.md).

strawberry serves the protocol's distinct connections mode: a request with ``Accept:
text/event-stream`` is a stream of its own. Over HTTP/1 a browser opens at most six connections
to a host, so a page following many subscriptions that way runs out; in single connection mode
one stream carries the results of every operation, each started and stopped by a short request:

- ``PUT /graphql`` reserves a stream: ``201`` and a one-time token (``text/plain``).
- ``GET /graphql`` with the token (header ``X-GraphQL-Event-Stream-Token``, or ``?token=`` for
  ``EventSource``) and ``Accept: text/event-stream`` opens it; a second one is a ``409``.
- ``POST /graphql`` (or ``GET`` with the query in the URL) with the token and a GraphQL request
  whose ``extensions.operationId`` names it: ``202``, and its results arrive on the stream as
  ``next`` events ``{"id", "payload"}`` followed by ``complete`` ``{"id"}``. A document that does
  not parse or names no operation is a ``400`` with the errors, as GraphQL over HTTP has it;
  errors found later (validation, access) come as the payload of a ``next`` event.
- ``DELETE /graphql?operationId=ID`` with the token stops that operation (``200``).

Each operation is authenticated by its own request's ``Authorization``, as on ``/graphql``; a
token works only with the credentials that reserved it, so a leaked token opens nothing. What an
operation sends before its stream is open waits for it. A reservation lives in the process that
made it: behind ``serve --workers N`` a client's requests may reach different workers, so there
clients use the distinct connections mode (graphql-sse's default) or a WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperation

from gateway.request_context import RequestRecord, current_request, request_id_from

if TYPE_CHECKING:
    from gateway.graphql_view import GraphQLView
    from resolvers import Context

log = logging.getLogger("complaint_graph.sse")

TOKEN_HEADER = "x-graphql-event-stream-token"
TOKEN_QUERY = "token"
RESERVATION_SECONDS = 60.0
"""How long a reservation waits for its stream to be opened before it is dropped."""
MAX_RESERVATIONS = 10_000
"""Reservations not yet opened, per process: a client reserving in a loop cannot fill memory."""
MAX_OPERATIONS = 100
"""Operations running at once on one stream."""
MAX_QUEUED = 1000
"""Events waiting for a client that does not read: beyond that its stream is ended (the client
reconnects, and with ``after`` misses nothing)."""
CLOSE_GRACE_SECONDS = 5.0


def _frame(event: str, data: object, encode: Callable[[object], bytes]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + encode(data) + b"\n\n"


@dataclass(eq=False)
class _Stream:
    """One reservation, and once opened the event stream behind it."""

    token: str
    authorization: str
    reserved_at: float
    opened: bool = False
    ended: bool = False
    messages: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    operations: dict[str, asyncio.Task[None] | None] = field(default_factory=dict)

    def push(self, message: bytes) -> None:
        if self.ended:
            return
        if len(self.messages) >= MAX_QUEUED:
            log.warning("SSE stream ended: its client stopped reading (%d events)", MAX_QUEUED)
            self.end()
            return
        self.messages.append(message)
        self.wake.set()

    def end(self) -> None:
        """No more events; the operations still running are stopped."""
        self.ended = True
        for task in self.operations.values():
            if task is not None:
                task.cancel()
        self.wake.set()


def _error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = _json({"errors": [{"message": message}]})
    return Response(body, status, headers, media_type="application/json; charset=utf-8")


def _json(data: object) -> bytes:
    return orjson.dumps(data)


class SingleConnectionStreams:
    """``/graphql`` for HTTP: the single connection mode's requests here, the rest to the view."""

    def __init__(self, view: GraphQLView) -> None:
        self.view = view
        self.streams: dict[str, _Stream] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        token = request.headers.get(TOKEN_HEADER) or (
            request.query_params.get(TOKEN_QUERY) if scope.get("query_string") else None
        )  # most requests have no query string: not parsed for nothing
        if request.method not in ("PUT", "DELETE") and token is None:
            await self.view(scope, receive, send)
            return
        if request.method == "PUT":
            response = self._reserve(request)
        else:
            stream = self._stream(request, token)
            if stream is None:
                response = _error_response(404, "no such event stream reservation")
            elif request.method == "DELETE":
                response = self._stop(request, stream)
            elif "text/event-stream" in request.headers.get("accept", ""):
                if stream.opened:
                    response = _error_response(409, "this reservation's stream is already open")
                else:
                    await self._serve(stream, scope, receive, send)
                    return
            else:
                response = await self._start(request, stream)
        await response(scope, receive, send)

    def _stream(self, request: Request, token: str | None) -> _Stream | None:
        """The reservation of ``token`` when the request carries the credentials that made it."""
        stream = self.streams.get(token or "")
        authorization = request.headers.get("authorization", "")
        if stream is None or not hmac.compare_digest(
            stream.authorization.encode(),
            authorization.encode(),  # str: ASCII only
        ):
            return None
        return stream

    def _reserve(self, request: Request) -> Response:
        accept = request.headers.get("accept", "*/*")
        if not any(kind in accept for kind in ("*/*", "text/plain", "text/*")):
            return Response(status_code=406)
        now = time.monotonic()
        self._drop_unopened(now)
        if len(self.streams) >= MAX_RESERVATIONS:
            return _error_response(503, "too many event streams reserved; try again later")
        token = secrets.token_urlsafe(24)
        self.streams[token] = _Stream(token, request.headers.get("authorization", ""), now)
        return Response(token, 201, media_type="text/plain; charset=utf-8")

    def _drop_unopened(self, now: float) -> None:
        """Reservations whose stream was never opened in time, with what they started."""
        for token, stream in list(self.streams.items()):
            if not stream.opened and now - stream.reserved_at > RESERVATION_SECONDS:
                stream.end()
                del self.streams[token]

    def _stop(self, request: Request, stream: _Stream) -> Response:
        operation_id = request.query_params.get("operationId")
        if not operation_id:
            return _error_response(400, "operationId is missing")
        task = stream.operations.pop(operation_id, None)
        if task is not None:
            task.cancel()  # its generator closes; no complete event follows a client's stop
        return Response(status_code=200)

    async def _serve(self, stream: _Stream, scope: Scope, receive: Receive, send: Send) -> None:
        """The event stream itself, until the client leaves or the gateway shuts down."""
        stream.opened = True
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # a proxy in front must not hold events back
        ]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})
            pumping = asyncio.ensure_future(self._pump(stream, send))
            leaving = asyncio.ensure_future(_disconnected(receive))
            done, _ = await asyncio.wait({pumping, leaving}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pumping, leaving):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            if pumping in done and pumping.exception() is None:
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stream.end()
            self.streams.pop(stream.token, None)

    async def _pump(self, stream: _Stream, send: Send) -> None:
        while True:
            while stream.messages:
                body = stream.messages.popleft()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if stream.ended:
                return
            stream.wake.clear()
            await stream.wake.wait()

    async def _start(self, request: Request, stream: _Stream) -> Response:
        """One operation on ``stream``: checked here, then run in a task of its own."""
        self._drop_unopened(time.monotonic())
        if stream.ended:
            return _error_response(404, "no such event stream reservation")
        try:
            params = await self._params(request)
        except ValueError as exc:
            return _error_response(400, str(exc))
        extensions = params.get("extensions") or {}
        operation_id = extensions.get("operationId") if isinstance(extensions, dict) else None
        if not isinstance(operation_id, str) or not operation_id:
            return _error_response(400, "extensions.operationId is missing")
        if operation_id in stream.operations:
            return _error_response(409, f"an operation {operation_id!r} is already running")
        if len(stream.operations) >= MAX_OPERATIONS:
            return _error_response(400, f"at most {MAX_OPERATIONS} operations per stream")
        query = params.get("query")
        name = params.get("operationName")
        variables = params.get("variables")
        if not isinstance(query, str) or not query:
            return _error_response(400, "no GraphQL query found in the request")
        if name is not None and not isinstance(name, str):
            return _error_response(400, "operationName must be a string or null")
        if variables is not None and not isinstance(variables, dict):
            return _error_response(400, "variables must be an object")
        try:
            operation = get_operation_ast(parse(query), name or None)
        except GraphQLError as exc:
            return _error_response(400, exc.message)
        if operation is None:
            return _error_response(400, "the document names no operation to run")
        if operation.operation == OperationType.MUTATION and request.method == "GET":
            return _error_response(405, "a GET request cannot run a mutation", {"allow": "POST"})
        request.state.record = current_request() or RequestRecord(
            request_id_from(request.headers.get("x-request-id"))
        )
        context = await self.view.get_context(request, Response())
        stream.operations[operation_id] = None
        task = asyncio.create_task(
            self._run(stream, operation_id, request, context, query, variables, name or None),
            name=f"sse:{operation_id}",
        )
        stream.operations[operation_id] = task
        return Response(status_code=202)

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            for key in ("variables", "extensions"):
                if params.get(key):
                    try:
                        params[key] = _loads(params[key])
                    except ValueError:
                        raise ValueError(f"`{key}` is not valid JSON") from None
            return params
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/json":
            raise ValueError("a POST body must be application/json")
        try:
            body = _loads(await request.body())
        except ValueError:
            raise ValueError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
        return body

    async def _run(
        self,
        stream: _Stream,
        operation_id: str,
        request: Request,
        context: Context,
        query: str,
        variables: dict[str, Any] | None,
        name: str | None,
    ) -> None:
        """Every result of the operation as a ``next`` event, then ``complete``."""
        encode = self.view.encode_json
        try:
            results = await self.view.schema.stream(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=name,
                allowed_operation_types=tuple(StrawberryOperation),
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    if not isinstance(result, ExecutionResult):
                        continue  # incremental delivery patches: the gateway serves none
                    payload = await self.view.process_result(request, result)
                    stream.push(_frame("next", {"id": operation_id, "payload": payload}, encode))
            stream.push(_frame("complete", {"id": operation_id}, encode))
        finally:
            context.release()
            if stream.operations.get(operation_id) is asyncio.current_task():
                del stream.operations[operation_id]

    async def close_all(self) -> None:
        """At shutdown, after the event broker has completed every subscription: let each
        operation send what it still has (its ``complete``), then end every stream."""
        running = [
            task
            for stream in self.streams.values()
            for task in stream.operations.values()
            if task is not None
        ]
        if running:
            await asyncio.wait(running, timeout=CLOSE_GRACE_SECONDS)
        for stream in list(self.streams.values()):
            stream.end()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _loads(data: str | bytes) -> Any:
    return orjson.loads(data)
