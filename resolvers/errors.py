"""The one place where failures become GraphQL errors with stable ``extensions.code`` values.

* a :class:`~sources.SourceError` keeps its code and names its source;
* a native value the vocabulary does not map is ``SOURCE_BAD_RESPONSE`` on that one field,
  with ``reason: UNMAPPED_VALUE``, the source, the vocabulary key and the value;
* bad arguments are ``BAD_USER_INPUT``;
* anything else is masked as ``INTERNAL_SERVER_ERROR`` (logged in full), so no SQL, stack trace
  or host name reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.relay import GlobalIDValueError

from resolvers.access import AccessError
from sources import SourceError, Unmapped
from sources._changes import SubscriberTooSlow

log = logging.getLogger("complaint_graph.errors")


class UserInputError(Exception):
    """The client asked for something malformed: a bad cursor, id or argument value."""

    code = "BAD_USER_INPUT"


class UnmappedValueError(Exception):
    """A field whose native value the source's vocabulary does not map: bad data, one field."""

    code = "SOURCE_BAD_RESPONSE"

    def __init__(self, unmapped: Unmapped) -> None:
        super().__init__(unmapped.message)
        self.unmapped = unmapped


def source_error(error: SourceError, path: list[str | int] | None = None) -> GraphQLError:
    """A GraphQL error for a source that failed while the rest of the response still arrives."""
    return GraphQLError(
        str(error), path=path, extensions={"code": error.code, "source": error.source}
    )


def _extensions(original: Exception | None) -> dict[str, Any] | None:
    if isinstance(original, SourceError):
        return {"code": original.code, "source": original.source}
    if isinstance(original, UnmappedValueError):
        unmapped = original.unmapped
        return {
            "code": original.code,
            "reason": "UNMAPPED_VALUE",
            "source": unmapped.source,
            "key": f"vocabulary.{unmapped.key}",
            "value": unmapped.value,
        }
    if isinstance(original, UserInputError | AccessError):
        return {"code": original.code}
    if isinstance(original, GlobalIDValueError):
        return {"code": UserInputError.code}
    if isinstance(original, SubscriberTooSlow):
        return {"code": "SUBSCRIBER_TOO_SLOW"}
    return None


def with_code(exc: Exception) -> GraphQLError:
    """``exc`` as a GraphQL error carrying its code, for paths where the schema extension does
    not see results (subscription events)."""
    return GraphQLError(str(exc), original_error=exc, extensions=_extensions(exc))


def is_expected(error: GraphQLError) -> bool:
    """Errors the graph raises on purpose, as opposed to bugs; syntax errors count as expected."""
    original = error.original_error
    return original is None or _extensions(original) is not None


def translate(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    extensions = _extensions(original)
    if extensions is not None:
        error.extensions = {**(error.extensions or {}), **extensions}
        return error
    if original is None or isinstance(original, GraphQLError):
        return error  # syntax and validation errors: already clear and safe
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError(
        "Internal error; the gateway log has the details.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


class ErrorTranslation(SchemaExtension):
    """Adds the errors of sources that failed in a partial answer, and translates every error."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None:
            return
        context = self.execution_context.context
        partial: list[GraphQLError] = getattr(context, "partial_errors", [])
        errors = [translate(error) for error in (result.errors or [])] + partial
        result.errors = errors or None

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A streaming transport (graphql-transport-ws, SSE) sends each result before the
        operation ends: its errors are translated here, or they would go out without a code."""
        errors = getattr(result, "errors", None)
        if isinstance(errors, list) and errors:
            result.errors = [translate(error) for error in errors]
        yield

    def get_results(self) -> dict[str, Any]:
        """Warnings of incomplete answers that are not errors (a bounded statistics scan), and
        which sources each federated read asked when the request's ``extensions`` hold
        ``"federation": true`` (an operator's question, off by default: it names sources)."""
        context = self.execution_context.context
        results: dict[str, Any] = {}
        warnings = getattr(context, "warnings", None)
        if warnings:
            results["warnings"] = list(warnings)
        asked = self.execution_context.operation_extensions or {}
        if asked.get("federation") is True:
            results["federation"] = list(getattr(context, "federation_report", []))
        return results
