"""The complaint graph's schema, built from the types in this package."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import aclosing
from functools import cache
from typing import Any

import strawberry
from graphql import GraphQLError, get_operation_ast, parse
from graphql import OperationType as AstOperationType
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers.access import AnonymousGate
from resolvers.deadline import OperationTimeout, run_with_deadline
from resolvers.errors import ErrorTranslation, is_expected, translate
from resolvers.limits import QueryLimitsExtension, limit_error
from resolvers.mutations import Mutation
from resolvers.plan_executor import PlanExecutor
from resolvers.query import Query
from resolvers.subscription import Subscription
from resolvers.subscription_groups import shared_stream
from sources import set_caller

log = logging.getLogger("complaint_graph.errors")


class ComplaintGraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Expected failures (a source down, a bad argument) get one log line, not a traceback."""
        unexpected = [error for error in errors if not is_expected(error)]
        for error in errors:
            if is_expected(error):
                log.warning("%s (at %s)", error.message, error.path)
        super().process_errors(unexpected, execution_context)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """The whole operation under ``limits.query.timeout_seconds``; every error it returns,
        including those raised outside resolvers, passes through the one translation."""
        seconds = _timeout_of(context_value)
        set_caller(_caller_of(context_value))

        async def operation() -> ExecutionResult:
            return await super(ComplaintGraphSchema, self).execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )

        try:
            result = await (
                operation() if seconds is None else run_with_deadline(seconds, operation)
            )
        except OperationTimeout as timeout:
            return _timed_out(timeout)
        if result.errors:
            result.errors = [translate(error) for error in result.errors]
        return result

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """What graphql-transport-ws, graphql-ws and SSE run, queries included: under the same
        deadline as :meth:`execute` (they used to run without one). A query's one result must
        come within ``limits.timeout_seconds``; a subscription sets a deadline for the work
        of each event itself (:mod:`resolvers.subscription`), not for waiting for events."""

        async def start(context: Any) -> StreamResult:
            return await super(ComplaintGraphSchema, self).stream(
                query,
                variable_values,
                context,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            )

        seconds = _timeout_of(context_value)
        set_caller(_caller_of(context_value))
        if _is_subscription(query, operation_name):
            # Once per event for all who share it (resolvers/subscription_groups.py).
            shared = shared_stream(
                context_value, query, variable_values, operation_name, operation_extensions, start
            )
            if shared is not None:
                return shared
            return await start(context_value)
        results = await start(context_value)
        return _one_result(results, seconds, context_value)


def _timeout_of(context_value: Any) -> float | None:
    limits = getattr(getattr(context_value, "limits", None), "query", None)
    seconds: float | None = getattr(limits, "timeout_seconds", None)
    return seconds


def _caller_of(context_value: Any) -> str | None:
    """Who the operation works for, for the sources' fair shares (sources/_bulkhead.py)."""
    access = getattr(context_value, "access", None)
    principal = getattr(access, "principal", None)
    subject: str | None = getattr(principal, "subject", None)
    return subject or "anonymous"


def _is_subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the document's chosen operation is a subscription (an unparsable document is
    not: strawberry reports it, and nothing runs)."""
    if not query:
        return False
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation == AstOperationType.SUBSCRIPTION


def _timed_out(timeout: OperationTimeout) -> ExecutionResult:
    log.warning("operation stopped after %s s (limits.timeout_seconds)", timeout.seconds)
    error = limit_error(
        f"The operation took longer than {timeout.seconds:g} s and was stopped "
        "(limits.timeout_seconds); ask for less, or narrow the filter.",
        "REQUEST_TIMEOUT",
        timeout.seconds,
    )
    return ExecutionResult(data=None, errors=[error])


async def _one_result(
    results: StreamResult, seconds: float | None, context_value: Any
) -> StreamResult:
    """A query's or mutation's stream (one result) with that result due within ``seconds``,
    and carrying the errors of the sources that failed while it ran (the extension that adds
    them over HTTP does not see a streamed result: over WebSocket and SSE a partial answer
    came without saying which source was missing)."""
    partial: list[GraphQLError] = getattr(context_value, "partial_errors", [])
    already = len(partial)  # a WebSocket's context outlives each of its operations
    async with aclosing(results):
        try:
            if seconds is None:
                first = await results.__anext__()
            else:
                first = await run_with_deadline(seconds, results.__anext__)
        except StopAsyncIteration:
            return
        except OperationTimeout as timeout:
            yield _timed_out(timeout)
            return
        if isinstance(first, ExecutionResult):
            errors = list(first.errors or [])
            errors += [error for error in partial[already:] if error not in errors]
            first.errors = errors or None
        yield first
        async for rest in results:
            yield rest


class GraphExtensions(ErrorTranslation, QueryLimitsExtension, AnonymousGate):
    """The graph's three extensions as one: error translation (``on_operation``), limits
    (``on_parse``) and the anonymous gate (``on_execute``). Their hooks are distinct, so each
    runs as it did alone; strawberry looks up every hook of every extension and wraps the
    ones it finds, afresh for each request, so one extension costs a third of three."""


@cache
def build_schema(
    query: type[Query] = Query, kind: type[ComplaintGraphSchema] = ComplaintGraphSchema
) -> strawberry.Schema:
    """The schema, built once per process: strawberry's relay fields bind on first build.
    A federation subgraph's is built here too, with its own query type and schema class
    (resolvers/federation.py), so that both run the same extensions."""
    return kind(
        query=query,
        mutation=Mutation,  # writes through to agencies' systems (resolvers/mutations.py)
        subscription=Subscription,
        extensions=[GraphExtensions],
        execution_context_class=PlanExecutor,
    )


def schema_sdl() -> str:
    """The schema as SDL, exactly as checked in at ``schema.graphql``."""
    return build_schema().as_str() + "\n"
