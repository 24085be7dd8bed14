"""The complaint graph's schema, built from the types in this package."""

from __future__ import annotations

import logging
from functools import cache

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from resolvers.errors import ErrorTranslation, is_expected
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


@cache
def build_schema() -> strawberry.Schema:
    """The schema, built once per process: strawberry's relay fields bind on first build."""
    return ComplaintGraphSchema(
        query=Query, subscription=Subscription, extensions=[ErrorTranslation]
    )


def schema_sdl() -> str:
    """The schema as SDL, exactly as checked in at ``schema.graphql``."""
    return build_schema().as_str() + "\n"
