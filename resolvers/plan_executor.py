"""Operations executed by their plan (:mod:`resolvers.plan`), or by graphql-core.

:class:`PlanExecutor` is strawberry's executor with one public method overridden,
``execute_operation``. For a query whose plan covers it, it runs the plan: each object type's
sub-selection is answered for every object of a level at once (a *column*: a page's hundred
cases, then their hundreds of timeline entries). Attributes and resolvers that need nothing but
their object are read in a loop, batched fields are asked once per column, any other field
through its own resolver with resolve info; everything a level asks of the loaders is asked
before anything is awaited, and each awaited value continues as soon as it settles (as
graphql-core's ``await_completed`` does), so the loaders batch as they do under graphql-core:
one call per source per level. Each object's answer is a dict made with all its response keys
in order, filled in.

A field that fails where its type is nullable becomes null with graphql-core's error (its
message, locations, path); errors are listed in the order their values settled, those of one
value in document order, which is the order graphql-core adds them in (for errors of values
that settle by timing, such as several relations of a failing source, graphql-core's own order
varies between runs). Anything else the plan does not do itself, it
gives to graphql-core's own ``execute_operation``, which executes the operation from the start:
an operation the plan does not cover (:mod:`resolvers.plan`), and at run time a null or an error
in a non-null position, a value its type refuses, an object of another type. What the plan had
loaded is in the request's loaders, so graphql-core's run costs no round trip for it (a root
field's own call, ``cases``' page, is asked again); the partial errors and warnings the plan's
resolvers reported are taken back first, so they are not reported twice.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import Future, get_running_loop, isfuture
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Sequence
from datetime import UTC
from functools import cached_property, partial
from itertools import repeat
from operator import attrgetter, setitem
from typing import Any, NamedTuple, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    Undefined,
    located_error,
)
from graphql.execution import get_argument_values
from graphql.pyutils import AwaitableOrValue, Path
from orjson import dumps, loads
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.context import Context
from resolvers.plan import (
    ABSTRACT,
    ABSTRACT_LIST,
    BATCH,
    LEAF,
    LEAF_LIST,
    OBJECT,
    OBJECT_LIST,
    READ,
    RESOLVE,
    TYPENAME,
    FieldStep,
    ObjectStep,
    plan_for,
)

log = logging.getLogger("complaint_graph.plan")

OUTCOMES: Counter[str] = Counter()
"""How operations were executed, for tests and metrics: ``planned`` (by the plan),
``fallback`` (the plan started, then left the operation to graphql-core), ``unplanned``
(graphql-core from the start: not a query, or nothing the plan covers)."""


class _Fallback(Exception):
    """Something the plan does not complete itself: graphql-core executes the operation."""


class PlanResolveInfo(NamedTuple):
    """The resolve info a field's resolver gets on the plan's path: graphql-core's
    ``GraphQLResolveInfo`` fields, and strawberry's ``operation_extensions``, with the
    coerced variables as strawberry's executor gives them."""

    field_name: str
    field_nodes: list[FieldNode]
    return_type: GraphQLOutputType
    parent_type: GraphQLObjectType
    path: Path
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    root_value: Any
    operation: OperationDefinitionNode
    variable_values: dict[str, Any]
    context: Any
    is_awaitable: Any
    abort_signal: Any
    async_helpers: Any
    operation_extensions: Any


_OperationInfo = tuple[
    GraphQLSchema,
    dict[str, FragmentDefinitionNode],
    Any,
    OperationDefinitionNode,
    dict[str, Any],
    Any,
    Any,
    Any,
    Any,
    Any,
]
"""``PlanResolveInfo``'s fields from ``schema`` on: one operation's, whatever the field."""


class PlanExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor; queries a plan covers are executed by their plan."""

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        middleware = self.middleware_manager
        if (
            serially
            or (middleware is not None and middleware.middlewares)
            or self.hooks is not None
            or self.abort_signal is not None
            or not self.error_propagation
        ):
            OUTCOMES["unplanned"] += 1
            return super().execute_operation(serially)
        plan = plan_for(
            self.schema, self.operation, self.fragment_definitions, self.variable_values.coerced
        )
        if plan.root is None or not plan.root.covered:
            OUTCOMES["unplanned"] += 1
            return super().execute_operation(serially)
        return self._planned(plan.root, serially)

    async def _planned(self, root: ObjectStep, serially: bool | None) -> Any:
        context = self.context_value
        marks = (
            (len(context.partial_errors), len(context.warnings))
            if isinstance(context, Context)
            else None
        )
        run = _Run(self, root)
        try:
            data = await run.execute()
        except Exception as error:
            if not isinstance(error, _Fallback):  # a plan's bug: answer right, and say so
                log.warning("plan failed, graphql-core executes the operation", exc_info=True)
            OUTCOMES["fallback"] += 1
            if isinstance(context, Context) and marks is not None:
                del context.partial_errors[marks[0] :]
                del context.warnings[marks[1] :]
            result = super().execute_operation(serially)
            if self.is_awaitable(result):
                result = await result
            return result
        OUTCOMES["planned"] += 1
        return ExecutionResult(data, run.errors_in_order() or None)


class _Column(NamedTuple):
    """Objects of one type answered together: ``rows[i]`` answers ``sources[i]``, at
    ``paths[i]``; ``clock`` is when the value they came from was awaited (0: before
    anything was), which orders its errors."""

    step: ObjectStep
    sources: list[Any]
    rows: list[dict[str, Any]]
    paths: list[Path | None]
    clock: int


class _Waiting(NamedTuple):
    """A column's awaitable values, object by object and field by field (the order
    graphql-core starts them in): ``(row index, field, awaitable)``."""

    column: _Column
    entries: list[tuple[int, FieldStep, Awaitable[Any]]]


class _Run:
    """One execution of a plan."""

    def __init__(self, executor: PlanExecutor, root: ObjectStep) -> None:
        self.executor = executor
        self.root = root
        self.context = executor.context_value
        self.is_awaitable = executor.is_awaitable
        self.errors: list[tuple[int, Path, GraphQLError]] = []
        self.clock = 0
        """Awaited values so far, counted as they settle."""

    async def execute(self) -> dict[str, Any]:
        data = dict.fromkeys(self.root.keys)
        waiting: list[_Waiting] = []
        self.start(_Column(self.root, [self.executor.root_value], [data], [None], 0), waiting)
        await self.settle_all(waiting)
        return data

    async def settle_all(self, waiting: Sequence[_Waiting | Awaitable[None]]) -> None:
        """All of them, concurrently; a fallback once every one has settled."""
        awaitables = [self.settle(each) if isinstance(each, _Waiting) else each for each in waiting]
        if len(awaitables) == 1:
            await awaitables[0]
            return
        outcomes = await asyncio.gather(*awaitables, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    # --- a column's fields, all objects at once

    def start(self, column: _Column, waiting: list[_Waiting]) -> None:
        """Every field of the column got; values at hand completed (their objects' columns
        started in turn), awaitables left in ``waiting``. When the plan gives up, the
        coroutines it made and will not await are closed."""
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]] = []
        try:
            self.start_fields(column, pending, waiting)
        except BaseException:
            _close(value for _, _, _, value in pending)
            _close(value for each in waiting for _, _, value in each.entries)
            raise
        if pending:
            pending.sort(key=_row_then_field)
            entries = [(index, step, value) for index, _, step, value in pending]
            waiting.append(_Waiting(column, entries))

    def start_fields(
        self,
        column: _Column,
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        waiting: list[_Waiting],
    ) -> None:
        for position, step in enumerate(column.step.fields):
            kind = step.kind
            if kind == TYPENAME:
                name = column.step.type.name
                for row in column.rows:
                    row[step.key] = name
                continue
            if kind == READ:
                values = self.read(step, column.sources)
            elif kind == BATCH:
                values = self.batch(step, column.sources)
            else:
                assert kind == RESOLVE
                values = self.resolve(step, column)
            self.complete_all(step, position, column, values, pending, waiting)

    def read(self, step: FieldStep, sources: list[Any]) -> list[Any]:
        read = step.read
        assert read is not None
        if step.column is not None and len(sources) >= _SHORT:
            getter, kinds = step.column
            try:
                column = list(map(getter, sources))
            except Exception:
                column = None
            if column is not None and kinds.issuperset(map(type, column)):
                return column
        try:
            return list(map(read, sources))
        except Exception:
            values: list[Any] = []
            for source in sources:
                try:
                    values.append(read(source))
                except Exception as error:
                    values.append(error)
            return values

    def batch(self, step: FieldStep, sources: list[Any]) -> list[Any]:
        assert step.batch is not None
        try:
            values = list(step.batch(sources, self.context))
        except Exception as error:
            return [error] * len(sources)
        if len(values) != len(sources):
            raise _Fallback
        return values

    def resolve(self, step: FieldStep, column: _Column) -> list[Any]:
        """The field's own resolver for each object, with resolve info and arguments."""
        executor = self.executor
        field = step.field
        assert field is not None
        resolve = field.resolve
        if resolve is None:
            raise _Fallback
        try:
            arguments = get_argument_values(field, step.nodes[0], executor.variable_values)
        except Exception as error:
            raise _Fallback from error
        parent_type = column.step.type
        parent_name = parent_type.name
        shared = self.operation_info
        values: list[Any] = []
        for source, path in zip(column.sources, column.paths, strict=True):
            info = PlanResolveInfo(
                step.name,
                step.nodes,
                field.type,
                parent_type,
                Path(path, step.key, parent_name),
                *shared,
            )
            try:
                values.append(resolve(source, info, **arguments))
            except Exception as error:
                values.append(error)
        return values

    def complete_all(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        values: Sequence[Any],
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        waiting: list[_Waiting],
    ) -> None:
        """A field's values for the whole column, in one loop for its shape: the usual
        values written in place, anything else (null, an error, an awaitable, a value to
        coerce) through :meth:`complete`."""
        shape = step.shape
        if shape == LEAF:
            self.leaf_column(step, position, column, values, pending)
            return
        child = _child_column(step, column.clock)
        assert child is not None or shape in (LEAF_LIST, ABSTRACT, ABSTRACT_LIST)
        if shape == OBJECT and child is not None:
            self.object_column(step, position, column, values, pending, child)
        elif shape == OBJECT_LIST and child is not None:
            self.list_column(step, position, column, values, pending, child)
        else:
            self.other_column(step, position, column, values, pending, child, waiting)
        if child is not None and child.sources:
            self.start(child, waiting)

    def leaf_column(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        values: Sequence[Any],
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
    ) -> None:
        coerced = _leaf_values(step, values)
        if coerced is not None:
            _write(column.rows, step.key, coerced)
            return
        assert step.short is not None
        same, members, names, times = step.short
        key = step.key
        rows = column.rows
        for row, value in zip(rows, values, strict=True):
            kind = value.__class__
            if kind is same:
                row[key] = value
            elif kind is members and (name := names.get(value._value_)) is not None:
                row[key] = name
            elif kind is times and value.tzinfo is UTC:
                row[key] = dumps(value)[1:-1].decode()
            elif value is not None or step.non_null:
                self.one(step, position, column, _index_of(rows, row), value, pending, None)

    def object_column(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        values: Sequence[Any],
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        child: _Column,
    ) -> None:
        object_type = child.step.type
        check = object_type.is_type_of
        keys = child.step.keys
        key = step.key
        rows, paths = column.rows, column.paths
        parent_name = column.step.type.name
        sources, answers, child_paths = child[1:4]
        shared: dict[int, dict[str, Any]] | None = {} if child.step.shareable else None
        if shared is None and len(values) >= _SHORT and _plain_objects(values, check):
            made = list(map(dict.fromkeys, repeat(keys, len(values))))
            _write(rows, key, made)
            sources.extend(values)
            answers.extend(made)
            child_paths.extend(map(_path, zip(paths, repeat(key), repeat(parent_name))))
            return
        for index, value in enumerate(values):
            kind = value.__class__
            if (
                value is None
                or not (_NOT_AWAITABLE.get(kind) or _never_awaited(kind, value))
                or isinstance(value, Exception)
                or (check is not None and check(value, None) is not True)  # type: ignore[arg-type]
            ):
                self.one(step, position, column, index, value, pending, child)
                continue
            if shared is not None:
                answer = shared.get(id(value))  # (``values`` holds the object meanwhile)
                if answer is not None:
                    rows[index][key] = answer
                    continue
                answer = shared[id(value)] = dict.fromkeys(keys)
            else:
                answer = dict.fromkeys(keys)
            rows[index][key] = answer
            sources.append(value)
            answers.append(answer)
            child_paths.append(_path((paths[index], key, parent_name)))

    def list_column(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        values: Sequence[Any],
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        child: _Column,
    ) -> None:
        """Lists of objects, one per row: all their items join one column (a page's
        hundred timelines, one column of entries)."""
        check = child.step.type.is_type_of
        keys = child.step.keys
        key, item_non_null = step.key, step.item_non_null
        parent_name = column.step.type.name
        rows, paths = column.rows, column.paths
        sources, answers, child_paths = child[1:4]
        for index, value in enumerate(values):
            kind = value.__class__
            if kind is not list and kind is not tuple:
                self.one(step, position, column, index, value, pending, child)
                continue
            path = _path((paths[index], key, parent_name))
            count = len(value)
            if count >= _SHORT and _plain_items(value, check):
                made = list(map(dict.fromkeys, repeat(keys, count)))
                sources.extend(value)
                answers.extend(made)
                child_paths.extend(map(_path, zip(repeat(path), range(count), repeat(None))))
                rows[index][key] = made
                continue
            items: list[Any] = [None] * count
            for place, item in enumerate(value):
                if item is None:
                    if item_non_null:
                        raise _Fallback
                    continue
                if check is not None and check(item, None) is not True:  # type: ignore[arg-type]
                    raise _Fallback
                answer = dict.fromkeys(keys)
                items[place] = answer
                sources.append(item)
                answers.append(answer)
                child_paths.append(_path((path, place, None)))
            rows[index][key] = items

    def other_column(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        values: Sequence[Any],
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        child: _Column | None,
        waiting: list[_Waiting],
    ) -> None:
        for index, value in enumerate(values):
            self.one(step, position, column, index, value, pending, child, waiting)

    def one(
        self,
        step: FieldStep,
        position: int,
        column: _Column,
        index: int,
        value: Any,
        pending: list[tuple[int, int, FieldStep, Awaitable[Any]]],
        child: _Column | None,
        waiting: list[_Waiting] | None = None,
    ) -> None:
        """One value the column loops do not write themselves: awaited later, or completed."""
        if (
            value is not None
            and not _never_awaited(value.__class__, value)
            and self.is_awaitable(value)
        ):
            pending.append((index, position, step, value))
            return
        self.complete(step, column, index, value, column.clock, child, waiting)

    async def settle(self, waiting: _Waiting) -> None:
        """A column's awaitables, each awaited in a task of its own, in the order
        graphql-core starts them; a column of futures (a loader's, one per object) by a
        callback on each instead (:meth:`settle_futures`)."""
        column = waiting.column
        entries = waiting.entries
        if len(entries) > 1 and all(isfuture(value) for _, _, value in entries):
            await self.settle_futures(column, entries)
            return
        await self.settle_all(
            [self.settle_one(column, index, step, value) for index, step, value in entries]
        )

    async def settle_futures(
        self, column: _Column, entries: list[tuple[int, FieldStep, Awaitable[Any]]]
    ) -> None:
        """Futures completed by a callback each, as :meth:`settle_one` completes a value:
        in the order they settle (the order the tasks awaiting them would wake in), each
        value's sub-selection started at once, so its loads join the same batches. A
        page's hundred referral lists then cost a hundred callbacks, not a hundred tasks.
        Only a value whose sub-selection has something to await gets a task, for that.
        As with :meth:`settle_all`, a failure is raised once every value has settled."""
        loop = get_running_loop()
        finished: Future[None] = loop.create_future()
        remaining = len(entries)
        failures: list[BaseException] = []
        later: list[asyncio.Task[None]] = []

        def settled(index: int, step: FieldStep, future: Future[Any]) -> None:
            nonlocal remaining
            value: Any
            try:
                value = future.result()
            except Exception as error:
                value = error
            except BaseException as error:  # cancelled: raised, as an await would
                failures.append(error)
                value = None
            if not failures:
                self.clock += 1
                child = _child_column(step, self.clock)
                then: list[_Waiting] = []
                try:
                    self.complete(step, column, index, value, self.clock, child, then)
                    if child is not None and child.sources:
                        self.start(child, then)
                except BaseException as error:
                    failures.append(error)
                if then and not failures:
                    later.append(loop.create_task(self.settle_all(then)))
            remaining -= 1
            if not remaining and not finished.done():
                finished.set_result(None)

        for index, step, future in entries:
            cast("Future[Any]", future).add_done_callback(partial(settled, index, step))
        try:
            await finished
            if later:
                await self.settle_all(later)
        except BaseException:
            for task in later:
                task.cancel()
            raise
        if failures:
            raise failures[0]

    async def settle_one(
        self, column: _Column, index: int, step: FieldStep, awaitable: Awaitable[Any]
    ) -> None:
        """One value awaited and completed as soon as it settles, its sub-selection started
        at once (graphql-core's ``await_completed``): loads it makes join the batches of
        the values settling with it."""
        try:
            value = await awaitable
        except Exception as error:
            value = error
        self.clock += 1
        child = _child_column(step, self.clock)
        then: list[_Waiting] = []
        self.complete(step, column, index, value, self.clock, child, then)
        if child is not None and child.sources:
            self.start(child, then)
        if then:
            await self.settle_all(then)

    # --- one value

    def complete(
        self,
        step: FieldStep,
        column: _Column,
        index: int,
        value: Any,
        clock: int,
        child: _Column | None,
        waiting: list[_Waiting] | None = None,
    ) -> None:
        """``value`` completed into the row; an object's dict joins ``child``."""
        if value is None:
            if step.non_null:
                raise _Fallback
            return
        if isinstance(value, Exception):
            self.field_error(step, column, index, value, clock)
            return
        row = column.rows[index]
        shape = step.shape
        if shape in (ABSTRACT, ABSTRACT_LIST):
            assert waiting is not None
            self.abstract(step, column, index, value, clock, waiting)
            return
        if shape == LEAF:
            row[step.key] = self.leaf(step, value)
            return
        if shape == OBJECT:
            assert child is not None
            _check(child.step.type, value)
            answer = dict.fromkeys(child.step.keys)
            row[step.key] = answer
            child.sources.append(value)
            child.rows.append(answer)
            child.paths.append(Path(column.paths[index], step.key, column.step.type.name))
            return
        items = _items(value)
        if shape == LEAF_LIST:
            row[step.key] = [self.leaf_item(step, item) for item in items]
            return
        assert child is not None
        self.list_items(step, column, index, items, child)

    def list_items(
        self,
        step: FieldStep,
        column: _Column,
        index: int,
        items: Sequence[Any],
        child: _Column,
    ) -> None:
        """A list of objects: each item's dict joins ``child``."""
        object_type = child.step.type
        check = object_type.is_type_of
        keys = child.step.keys
        path = Path(column.paths[index], step.key, column.step.type.name)
        answers: list[Any] = [None] * len(items)
        sources, rows, paths = child[1:4]
        for position, item in enumerate(items):
            if item is None:
                if step.item_non_null:
                    raise _Fallback
                continue
            if check is not None and check(item, None) is not True:  # type: ignore[arg-type]
                raise _Fallback
            answer = dict.fromkeys(keys)
            answers[position] = answer
            sources.append(item)
            rows.append(answer)
            paths.append(_path((path, position, None)))
        column.rows[index][step.key] = answers

    def abstract(
        self,
        step: FieldStep,
        column: _Column,
        index: int,
        value: Any,
        clock: int,
        waiting: list[_Waiting],
    ) -> None:
        """An interface's or union's value (or list of them): each object's type named by the
        type's ``resolve_type`` (the executor's type resolver when it has none),
        its answer made by that type's step, in a column of its own."""
        abstract, possible = step.abstract, step.possible
        assert abstract is not None and possible is not None
        path = Path(column.paths[index], step.key, column.step.type.name)
        info = self.info(step, column.step.type, path)
        resolve = abstract.resolve_type or self.executor.type_resolver
        columns: dict[str, _Column] = {}

        def answer(item: Any, item_path: Path) -> dict[str, Any]:
            try:
                name = resolve(item, info, abstract)
            except Exception as error:
                raise _Fallback from error
            if not isinstance(name, str) or (object_step := possible.get(name)) is None:
                raise _Fallback  # an awaitable name, or a type it cannot be
            _check(object_step.type, item)
            found = dict.fromkeys(object_step.keys)
            into = columns.get(name)
            if into is None:
                into = columns[name] = _Column(object_step, [], [], [], clock)
            into.sources.append(item)
            into.rows.append(found)
            into.paths.append(item_path)
            return found

        if step.shape == ABSTRACT:
            column.rows[index][step.key] = answer(value, path)
        else:
            answers: list[Any] = []
            for place, item in enumerate(_items(value)):
                if item is None or isinstance(item, Exception):
                    if step.item_non_null or item is not None:
                        raise _Fallback
                    answers.append(None)
                    continue
                answers.append(answer(item, _path((path, place, None))))
            column.rows[index][step.key] = answers
        for each in columns.values():
            self.start(each, waiting)

    def info(self, step: FieldStep, parent_type: GraphQLObjectType, path: Path) -> Any:
        """The resolve info of ``step``'s field at ``path``."""
        field = step.field
        assert field is not None
        return PlanResolveInfo(
            step.name, step.nodes, field.type, parent_type, path, *self.operation_info
        )

    @cached_property
    def operation_info(self) -> _OperationInfo:
        """The resolve info fields that are the same for every field of the run (the last
        ten of :class:`PlanResolveInfo`, in its order), read once per run."""
        executor = self.executor
        return (
            executor.schema,
            executor.fragment_definitions,
            executor.root_value,
            executor.operation,
            executor.variable_values.coerced,
            self.context,
            executor.is_awaitable,
            executor.abort_signal,
            executor.async_helpers,
            executor.operation_extensions,
        )

    @staticmethod
    def leaf(step: FieldStep, value: Any) -> Any:
        assert step.coerce is not None
        try:
            coerced = step.coerce(value)
        except Exception as error:
            raise _Fallback from error
        if coerced is None or coerced is Undefined:
            raise _Fallback
        return coerced

    def leaf_item(self, step: FieldStep, item: Any) -> Any:
        if item is None:
            if step.item_non_null:
                raise _Fallback
            return None
        if isinstance(item, Exception):
            raise _Fallback
        return self.leaf(step, item)

    def field_error(
        self, step: FieldStep, column: _Column, index: int, error: Exception, clock: int
    ) -> None:
        """A nullable field's error, reported as graphql-core reports it; a non-null
        field's is left to graphql-core."""
        if step.non_null or column.step.shareable:
            raise _Fallback from error  # (a shared answer's error belongs at each place)
        path = Path(column.paths[index], step.key, column.step.type.name)
        self.errors.append((clock, path, located_error(error, step.nodes, path.as_list())))

    def errors_in_order(self) -> list[GraphQLError]:
        """Errors as graphql-core lists them: in the order the values they came from
        settled, and those of one value (its own and its sub-selection's, completed at once)
        in document order."""
        if len(self.errors) <= 1:
            return [error for _, _, error in self.errors]
        keyed = sorted(self.errors, key=lambda found: (found[0], self.order(found[1])))
        return [error for _, _, error in keyed]

    def order(self, path: Path) -> tuple[int, ...]:
        """Where ``path`` comes in document order: each key's position among its object's."""
        order: list[int] = []
        step: ObjectStep | None = self.root
        for key in path.as_list():
            if isinstance(key, int):
                order.append(key)
                continue
            assert step is not None
            position = step.keys.index(key)
            order.append(position)
            step = step.fields[position].child
        return tuple(order)


_path: Callable[[tuple[Any, ...]], Path] = partial(tuple.__new__, Path)
"""A ``Path`` from a (prev, key, typename) tuple without the Python-level ``__new__`` a
NamedTuple generates: a page makes one per object (hundreds)."""

_NOT_AWAITABLE: dict[type, bool] = {}
"""Per class, whether its instances are never awaitable (no ``__await__``, not a
coroutine or generator): the column loops skip strawberry's check for them."""


def _never_awaited(kind: type, value: Any) -> bool:
    found = _NOT_AWAITABLE.get(kind)
    if found is None:
        found = _NOT_AWAITABLE[kind] = not (
            hasattr(kind, "__await__") or isinstance(value, Coroutine | Generator | Future)
        )
    return found


_NONE = type(None)
_tzinfo = attrgetter("tzinfo")
_enum_value = attrgetter("_value_")
_UTC_ID = id(UTC)


def _leaf_values(step: FieldStep, values: Sequence[Any]) -> Sequence[Any] | None:
    """A leaf column's response values in loops that run in C, when every value is of the
    one kind its :class:`~resolvers.plan.Short` writes (nulls too, where the field is
    nullable): strings as they are, enum members by name, UTC datetimes as their ISO text
    (one orjson call for the column: ``loads(dumps(values))`` gives each its text, as
    ``utc_iso`` does one by one); None when any value needs the loop of
    :meth:`_Run.leaf_column` (an error, an awaitable, a value to coerce, a null in a
    non-null field)."""
    short = step.short
    if short is None or len(values) < _SHORT:
        return None
    kinds = set(map(type, values))
    nulls = _NONE in kinds
    if nulls:
        if step.non_null:
            return None
        kinds.discard(_NONE)
    if len(kinds) != 1:
        return None if kinds else values
    (kind,) = kinds
    if kind is short.same:
        return values
    if kind is short.members:
        names = short.names.get
        if nulls:
            found = [None if value is None else names(value._value_) for value in values]
            if found.count(None) != values.count(None):
                return None
            return found
        found = list(map(names, map(_enum_value, values)))
        return None if None in found else found
    if kind is short.times:
        present = filter(None, values) if nulls else values
        if set(map(id, map(_tzinfo, present))) != {_UTC_ID}:
            return None
        texts: list[Any] = loads(dumps(values))
        return texts
    return None


_TRUE_ID = id(True)

_SHORT = 8
"""Columns and lists of fewer values keep the per-value loops: for a detail page's few
objects, the maps and sets of the loops that run in C cost about what they save."""


def _plain_objects(values: Sequence[Any], check: Any) -> bool:
    """Whether every value of an object column is one the per-value loop of
    :meth:`_Run.object_column` would take as it is (not null, not an error, of a class
    known never to be awaited, accepted by the type's ``is_type_of``), checked in loops that
    run in C; the column is then made at once."""
    for kind in set(map(type, values)):
        if kind is _NONE or issubclass(kind, Exception) or not _NOT_AWAITABLE.get(kind):
            return False
    return check is None or set(map(id, map(check, values, repeat(None)))) == {_TRUE_ID}


def _plain_items(items: Sequence[Any], check: Any) -> bool:
    """Whether a list's items are all objects :meth:`_Run.list_column` takes as they are (no
    null, each accepted by ``is_type_of``), checked in loops that run in C."""
    if _NONE in set(map(type, items)):
        return False
    return check is None or set(map(id, map(check, items, repeat(None)))) == {_TRUE_ID}


def _write(rows: list[dict[str, Any]], key: str, values: Sequence[Any]) -> None:
    """``rows[i][key] = values[i]`` for every row, in a loop that runs in C."""
    deque(map(setitem, rows, repeat(key), values), maxlen=0)


def _index_of(rows: list[dict[str, Any]], row: dict[str, Any]) -> int:
    """Where ``row`` stands in its column (for the rare value a loop hands on by index)."""
    for index, found in enumerate(rows):
        if found is row:
            return index
    raise ValueError(row)  # pragma: no cover - every row is its column's


def _close(awaitables: Iterable[Awaitable[Any]]) -> None:
    """Coroutines that will not be awaited, closed (no warning that they never were)."""
    for awaitable in awaitables:
        if isinstance(awaitable, Coroutine):
            awaitable.close()


def _child_column(step: FieldStep, clock: int) -> _Column | None:
    if step.child is None:
        return None
    return _Column(step.child, [], [], [], clock)


def _row_then_field(entry: tuple[int, int, FieldStep, Any]) -> tuple[int, int]:
    return entry[0], entry[1]


def _check(object_type: GraphQLObjectType, value: Any) -> None:
    """graphql-core's ``is_type_of`` check of an object, left to graphql-core when it fails.
    (strawberry's checks, made for types with interfaces, read nothing of the info.)"""
    check = object_type.is_type_of
    if check is not None and check(value, None) is not True:  # type: ignore[arg-type]
        raise _Fallback


def _items(value: Any) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, str | bytes | dict):
        raise _Fallback
    try:
        return list(value)
    except TypeError as error:
        raise _Fallback from error
