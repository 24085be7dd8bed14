"""graphql-core's executor, with a short path for plain leaf fields.

Most fields of a page are plain: a case's ``title``, a timeline entry's ``at``, a category's
``code``. For each, graphql-core builds a resolve-info tuple and a path, calls strawberry's
wrapper, which calls ``getattr``, checks whether the answer is awaitable, and completes it through
``complete_value``'s chain of type checks (bench/README.md, "Where the time goes": per-field
execution was the largest share of the dashboard page's time). For a field strawberry itself
marks as basic (no resolver, no field extensions, no arguments) returning a scalar or an enum,
:class:`PlainFieldExecutor` reads the attribute and coerces it directly.

Anything unusual takes graphql-core's own path, so errors are reported exactly as before: a
missing or null value, an exception held as the value, a value the scalar refuses, a field with
arguments or several nodes, middleware.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

_DEFINITION = "strawberry-definition"


class _Plain(NamedTuple):
    """How to read one plain leaf field: the Python attribute and the GraphQL leaf type."""

    attribute: str
    leaf: GraphQLLeafType


_NOT_PLAIN = None
_plans: dict[GraphQLObjectType, dict[str, _Plain | None]] = {}
"""Per object type, per field name: its plan, or None for graphql-core's path (schema-wide)."""


def _plan(parent_type: GraphQLObjectType, name: str) -> _Plain | None:
    field = parent_type.fields.get(name)
    if field is None or field.args or not getattr(field.resolve, "_is_default", False):
        return _NOT_PLAIN
    definition = (field.extensions or {}).get(_DEFINITION)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return _NOT_PLAIN
    if definition.default_resolver is not getattr:
        return _NOT_PLAIN  # a configured default resolver: let it run
    field_type = field.type
    named = field_type.of_type if is_non_null_type(field_type) else field_type
    if not is_leaf_type(named):
        return _NOT_PLAIN
    return _Plain(definition.python_name, named)


def _plans_for(parent_type: GraphQLObjectType) -> dict[str, _Plain | None]:
    plans = _plans.get(parent_type)
    if plans is None:
        plans = _plans[parent_type] = {
            name: _plan(parent_type, name) for name in parent_type.fields
        }
    return plans


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; plain leaf fields are read and coerced in place.

    ``execute_fields`` is graphql-core's (3.3), with the one short path added."""

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plans = _plans_for(parent_type)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, details in grouped_field_set.items():
                node = details[0].node
                plan = plans.get(node.name.value)
                if plan is not None and len(details) == 1 and not node.arguments:
                    value = _read(source_value, plan)
                    if value is not Undefined:
                        results[response_name] = value
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    details,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _awaited(results, awaitable_fields)


def _read(source: Any, plan: _Plain) -> Any:
    """The field's coerced value, or Undefined when graphql-core must handle it (and report)."""
    value = getattr(source, plan.attribute, None)
    if value is None or isinstance(value, Exception):
        return Undefined
    try:
        coerced = plan.leaf.coerce_output_value(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced


async def _awaited(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    """``results`` with its awaitable values awaited, concurrently (graphql-core's way)."""
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
