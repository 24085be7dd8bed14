"""graphql-core's executor, with a short path for plain fields.

Most fields of a page are plain: a case's ``title``, a timeline entry's ``at``, a category's
``code``. For each, graphql-core builds a resolve-info tuple and a path, calls strawberry's
wrapper (which converts arguments and builds strawberry's own ``Info``), checks whether the answer
is awaitable, and completes it through ``complete_value``'s chain of type checks (bench/README.md,
"Making it fast": per-field execution was the largest share of the dashboard page's time).

:class:`PlainFieldExecutor` answers a field directly when it takes no arguments, has no field
extensions, and is either a plain attribute (no resolver) or a synchronous resolver that needs
nothing but its object (``def status(self) -> CaseStatus``): it reads or calls it, then coerces
a scalar or enum, or executes the sub-selection of an object (of a type without ``is_type_of``,
or with strawberry's own ``isinstance`` check), without resolve info or awaitable checks.

Anything unusual is completed and reported exactly as graphql-core does it (tested against
strawberry's own executor): a null, an exception raised or held as the value, a value the type
refuses, an object of the wrong type. Fields with arguments, ``info``, asynchronous resolvers,
lists, interfaces and unions, several nodes for one response key, and every field when
middleware is installed take graphql-core's own path. Lists of objects are completed a field
at a time for the whole list by :class:`~resolvers.list_execution.ListExecutor`, which builds
on this one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from operator import attrgetter
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from resolvers.coercion import OutputCoercion, output_coercion

_DEFINITION = "strawberry-definition"


class _Plain(NamedTuple):
    """How to answer one plain field: read it from the source, then coerce it to ``leaf`` or
    execute the sub-selection on it as ``object_type``."""

    read: Callable[[Any], Any]
    leaf: GraphQLLeafType | None
    object_type: GraphQLObjectType | None
    field: GraphQLField
    coerce: OutputCoercion | None = None
    """``leaf``'s output coercion (resolvers/coercion.py)."""
    attribute: bool = False
    """Whether ``read`` reads a plain attribute (no resolver): it answers the same for one
    object however often it is read."""


_NOT_PLAIN = None
_plans: dict[GraphQLObjectType, dict[str, _Plain | None]] = {}
"""Per object type, per field name: its plan, or None for graphql-core's path (schema-wide)."""


def _reader(definition: StrawberryField) -> Callable[[Any], Any] | None:
    """How to read the field from its source object, or None when it needs more than that.

    A field without resolver is ``getattr`` (strawberry's default resolver); a synchronous
    resolver that takes only ``self`` (or nothing) is called with the source. Resolvers that
    take arguments, ``info``, ``root`` or ``parent``, or are asynchronous, go graphql-core's way."""
    if definition.extensions:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        if definition.default_resolver is not getattr:
            return None  # a configured default resolver: let it run
        return attrgetter(definition.python_name)
    if (
        resolver.is_async
        or resolver.arguments
        or resolver.info_parameter is not None
        or resolver.root_parameter is not None
        or resolver.parent_parameter is not None
    ):
        return None
    function = resolver.wrapped_func
    if not callable(function):
        return None
    if resolver.self_parameter is not None:
        return function
    return lambda _source: function()


def _plan(parent_type: GraphQLObjectType, name: str) -> _Plain | None:
    field = parent_type.fields.get(name)
    if field is None or field.args:
        return _NOT_PLAIN
    definition = (field.extensions or {}).get(_DEFINITION)
    if not isinstance(definition, StrawberryField):
        return _NOT_PLAIN
    field_type = field.type
    named = field_type.of_type if is_non_null_type(field_type) else field_type
    read = _reader(definition)
    if read is None:
        return _NOT_PLAIN
    if is_leaf_type(named):
        attribute = definition.base_resolver is None
        return _Plain(read, named, None, field, output_coercion(named), attribute)
    if is_object_type(named) and _type_check_needs_no_info(named):
        return _Plain(read, None, named, field)
    return _NOT_PLAIN


def _type_check_needs_no_info(object_type: GraphQLObjectType) -> bool:
    """Whether ``is_type_of`` can be asked without resolve info: there is none, or it is the
    one strawberry generates for a type with interfaces, an ``isinstance`` check."""
    check = object_type.is_type_of
    return check is None or getattr(check, "__module__", None) == _STRAWBERRY_CHECKS


_STRAWBERRY_CHECKS = "strawberry.schema.schema_converter"


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
                    result = self._plain_field(
                        plan,
                        parent_type,
                        source_value,
                        details,
                        path,
                        response_name,
                        position_context,
                    )
                    results[response_name] = result
                    if plan.object_type is not None and is_awaitable(result):
                        awaitable_fields.append(response_name)
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

    def _plain_field(
        self,
        plan: _Plain,
        parent_type: GraphQLObjectType,
        source: Any,
        details: FieldDetailsList,
        path: Path | None,
        response_name: str,
        position_context: Any,
    ) -> Any:
        """The field's value, read and coerced or its sub-selection executed; anything unusual
        (null, an exception raised or held as the value, a value the type refuses) is completed
        and reported exactly as graphql-core's ``execute_field`` does it."""
        field_path: Path | None = None
        try:
            value = plan.read(source)
            if value is not None and not isinstance(value, Exception):
                coerce = plan.coerce
                if coerce is not None:
                    coerced = coerce(value)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
                else:
                    object_type = plan.object_type
                    assert object_type is not None
                    check = object_type.is_type_of
                    if check is None or check(value, None) is True:  # type: ignore[arg-type]
                        field_path = Path(path, response_name, parent_type.name)
                        completed = self.collect_and_execute_subfields(
                            object_type, details, field_path, value, position_context
                        )
                        if self.is_awaitable(completed):
                            return self._reported(completed, plan.field, details, field_path)
                        return completed
            field_path = Path(path, response_name, parent_type.name)
            info = self.build_resolve_info(plan.field, to_nodes(details), parent_type, field_path)
            completed = self.complete_value(
                plan.field.type, details, info, field_path, value, position_context
            )
            if self.is_awaitable(completed):
                return self._reported(completed, plan.field, details, field_path)
            return completed
        except Exception as raw_error:
            if field_path is None:
                field_path = Path(path, response_name, parent_type.name)
            self.handle_field_error(raw_error, plan.field.type, details, field_path)
            return None

    async def _reported(
        self, completed: Awaitable[Any], field: GraphQLField, details: FieldDetailsList, path: Path
    ) -> Any:
        """``completed`` awaited; its error reported at the field (graphql-core's
        ``await_completed`` in ``execute_field``)."""
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.type, details, path)
            return None


async def _awaited(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    """``results`` with its awaitable values awaited, concurrently (graphql-core's way)."""
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
