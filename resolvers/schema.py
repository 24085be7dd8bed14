"""The complaint graph's schema, built from the types in this package."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from resolvers.access import AnonymousGate
from resolvers.deadline import OperationTimeout, run_with_deadline
from resolvers.errors import ErrorTranslation, is_expected, translate
from resolvers.limits import QueryLimitsExtension, limit_error
from resolvers.list_execution import ListExecutor
from resolvers.mutations import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription

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
        limits = getattr(getattr(context_value, "limits", None), "query", None)
        seconds: float | None = getattr(limits, "timeout_seconds", None)

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
            log.warning("operation stopped after %s s (limits.timeout_seconds)", timeout.seconds)
            error = limit_error(
                f"The operation took longer than {timeout.seconds:g} s and was stopped "
                "(limits.timeout_seconds); ask for less, or narrow the filter.",
                "REQUEST_TIMEOUT",
                timeout.seconds,
            )
            return ExecutionResult(data=None, errors=[error])
        if result.errors:
            result.errors = [translate(error) for error in result.errors]
        return result


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
        extensions=[ErrorTranslation, QueryLimitsExtension, AnonymousGate],
        execution_context_class=ListExecutor,
    )


def schema_sdl() -> str:
    """The schema as SDL, exactly as checked in at ``schema.graphql``."""
    return build_schema().as_str() + "\n"
