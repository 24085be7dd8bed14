"""Lists of objects completed a field at a time, for every object of the list at once.

graphql-core completes a list item by item: for each of a page's 100 cases it collects the
sub-selection, executes each field, builds paths, and when any field is asynchronous wraps the
case in a coroutine, which the list gathers in a task per case; a loader future per case is
awaited in a coroutine of its own. :class:`ListExecutor` turns that around for a list of
objects: it takes each field of the sub-selection in turn and answers it for every object of
the list (a *column*):

- a plain field (:mod:`resolvers.execution`) is read and coerced in one loop; a plain object
  field's objects become one column for its own sub-selection, at any depth;
- a :mod:`batched <resolvers.batched>` field is answered by one call for the whole column; its
  awaitables (a data loader's futures) are awaited together, and when it returns lists of
  objects (a case's timeline) all their items form one column;
- any other field runs graphql-core's own ``execute_field`` for each object, as before.

A page's answer is then one list of dicts, filled column by column, with one coroutine per
batched column instead of per object.

Errors, nulls and values a type refuses are completed by graphql-core's own code for that
one field of that one object (``_plain_field``, ``complete_value``,
``complete_list_item_value``), so the message and location are the same. What the column
executor adds is where the error goes next: each object and list it builds has a *slot* (where
its value was put, with that field's type and path, and the slot it sits in), and a non-null
error climbs the slots to the nearest nullable one, which becomes null and records the error,
as graphql-core's nested calls do; past the list's own items it is raised to graphql-core. The
tests run every document both ways and compare data and errors.

Lists of interfaces or unions, lists of scalars, async iterables and executors with middleware
take graphql-core's path.
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from orjson import dumps

from resolvers.batched import BatchResolver, batch_resolver
from resolvers.coercion import enum_names, is_iso_datetime, output_coercion, passes_as_is
from resolvers.execution import PlainFieldExecutor, _Plain, _plans_for, _type_check_needs_no_info


class _Slot(NamedTuple):
    """Where one value of the response was put: ``container[key]``, for a field (or list item)
    of ``type``; ``parent`` is the slot of the object or list holding it."""

    container: Any  # dict (an object's fields) or list (a list's items)
    key: str | int
    type: GraphQLOutputType
    details: FieldDetailsList
    parent: _Slot | None
    within: Path | str | None
    """What the path continues: the name of the type whose field this is (after the parent's
    path), the path of the list graphql-core asked for (an item of it), or None (an item of
    the parent, a list)."""

    @property
    def path(self) -> Path:
        """The response path, made when asked: for an error or a value completed graphql-core's
        way. Most slots never are, and a page has hundreds."""
        within = self.within
        if isinstance(within, Path):
            return Path(within, self.key, None)
        assert self.parent is not None
        return Path(self.parent.path, self.key, within)


_new_slot: Callable[[tuple[Any, ...]], _Slot] = partial(tuple.__new__, _Slot)
"""``_Slot`` from a tuple of its fields, without the Python-level ``__new__`` a NamedTuple
generates (a page makes a slot per object: hundreds)."""


class _Column(NamedTuple):
    """Objects of one type whose sub-selection is completed together: ``rows[i]`` is the dict
    answering ``sources[i]``, already in place at ``slots[i]``.

    An object joins by a new dict put in place (``slot.container[slot.key]``) and one append
    to each list, written out in the two loops that build columns (``_list_items``,
    ``_nested_column``) rather than in a method: a page adds about 500 objects, and the call
    was 1.5% of its instructions."""

    sources: list[Any]
    rows: list[dict[str, Any]]
    slots: list[_Slot]


def _object_item_type(item_type: GraphQLOutputType) -> GraphQLObjectType | None:
    named = item_type.of_type if is_non_null_type(item_type) else item_type
    if is_object_type(named) and _type_check_needs_no_info(named):
        return named
    return None


_CAST = "__as_strawberry_type__"
"""Where ``strawberry.cast`` marks an object as standing for another type
(``strawberry.types.cast.TYPE_CAST_ATTRIBUTE``)."""

_taken_as_they_are: dict[GraphQLObjectType, set[type]] = {}


def _plain_classes(object_type: GraphQLObjectType) -> set[type]:
    """Classes whose instances ``object_type`` takes without asking, unless ``strawberry.cast``
    marked them: strawberry's own class for the type (its generated ``is_type_of`` is an
    ``isinstance`` against it), and for a type with no ``is_type_of`` (anything but a null or
    an error will do) each class :meth:`ListExecutor._usual_object` has seen it take, such as
    the source layer's ``TimelineEntry`` for ``TimelineItem``. The loops below test an
    object's class against it (and look for the cast mark) instead of calling
    ``_usual_object``, three Python calls an object (2.5% of the dashboard page's
    instructions, and another 1% for its timeline entries)."""
    plain = _taken_as_they_are.get(object_type)
    if plain is None:
        definition = (object_type.extensions or {}).get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        plain = _taken_as_they_are[object_type] = {origin} if isinstance(origin, type) else set()
    return plain


_NEVER_AWAITED = frozenset({str, int, float, bool, type(None), list, tuple, dict})
"""Classes whose instances are never awaitable (none defines ``__await__``)."""


def _short_paths(
    leaf: GraphQLLeafType | None,
) -> tuple[type | None, type | None, dict[Any, str], type | None]:
    """What the column loops coerce without a call for ``leaf`` (resolvers/coercion.py gives
    the same answers): the class whose values pass as they are (``str`` for String), the
    enum's class and its members' names by value, and ``datetime`` where a UTC one is its
    ISO text; None where the type has no such path."""
    enum = enum_names(leaf)
    members, names = enum if enum is not None else (None, {})
    return passes_as_is(leaf), members, names, datetime if is_iso_datetime(leaf) else None


class _SharedLeaf(NamedTuple):
    """One leaf field of a sub-selection answered once per object (:func:`_leaf_answers`)."""

    name: str
    read: Callable[[Any], Any] | None
    kind: type | None
    members: type | None
    names: dict[Any, str]
    times: type | None
    nullable: bool
    typename: str | None
    """The answer of ``__typename`` (``read`` is None)."""


def _leaf_answers(value: Any, leaves: tuple[_SharedLeaf, ...]) -> dict[str, Any] | None:
    """An object's answer to a sub-selection of plain attributes, or None when any of them
    is not a value the short paths of :meth:`ListExecutor._leaf_column` take (an error, a
    null for a non-null field, a value to coerce the long way): that object is then completed
    field by field as any other, and its errors reported at each of its places.

    Reference data (a case's category and owning agency) is the same object for many rows of
    a page: its answer is made once and the same dict is put at each place. It holds leaves
    only, which nothing changes after this (an error elsewhere nulls the place, not the dict).
    """
    answers: dict[str, Any] = {}
    for name, read, kind, members, names, times, nullable, typename in leaves:
        if read is None:
            answers[name] = typename
            continue
        try:
            found = read(value)
        except Exception:
            return None
        of = found.__class__
        if of is kind:
            answers[name] = found
        elif of is members:
            text = names.get(found._value_)
            if text is None:
                return None
            answers[name] = text
        elif of is times and found.tzinfo is UTC:
            answers[name] = dumps(found)[1:-1].decode()
        elif found is None and nullable:
            answers[name] = None
        else:
            return None
    return answers


def _answered(slot: _Slot | None, value: Any) -> bool:
    """Whether ``value`` (an object's dict) is still in the response: no error has nulled it
    or an object or list holding it. Fields of a nulled object are not executed, as in
    graphql-core, so their resolvers have no effects (audited reveals, say)."""
    while slot is not None:
        if slot.container[slot.key] is not value:
            return False
        value = slot.container
        slot = slot.parent
    return True


class ListExecutor(PlainFieldExecutor):
    """:class:`~resolvers.execution.PlainFieldExecutor` with lists of objects completed a
    column at a time."""

    _nulled = False
    """Whether an error has nulled anything of this execution's columns (every row and object
    is nulled through :meth:`_propagate`): until then every row is still answered, and no
    column asks :func:`_answered` for each of its rows."""

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        object_type = _object_item_type(item_type)
        if (
            object_type is None
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
            or self.get_stream_usage(field_details_list, path) is not None
        ):
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        items = items if isinstance(items, list | tuple) else list(items)
        pending: list[Awaitable[None]] = []
        column = _Column([], [], [])
        try:
            (completed,) = self._list_items(
                [(items, None)],
                item_type,
                object_type,
                field_details_list,
                path,
                lambda _list_slot: info,
                column,
                pending,
            )
            if column.sources:
                self._object_column(object_type, field_details_list, column, pending)
        except Exception:
            if pending:
                self.settle_in_background(pending)
            raise
        if not pending:
            return completed
        return self._finish(completed, pending)

    def _list_items(
        self,
        lists: Iterable[tuple[Sequence[Any], _Slot | None]],
        item_type: GraphQLOutputType,
        object_type: GraphQLObjectType,
        details: FieldDetailsList,
        path: Path | None,
        info: Callable[[_Slot | None], Any],
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> list[list[Any]]:
        """Lists' completed items, for each ``(items, slot)``: each object joins ``column``;
        anything else (null, an error, an awaitable, a wrong type) is completed graphql-core's
        way, with the list field's resolve info made only then (``info(slot)``: one function
        for all the lists of a column). ``slot`` is the list's own, where its completed list
        is put before its items are (an item's error may null the list there), or None for
        the list graphql-core asked for, at ``path`` (past it, errors are raised). All the
        lists of a column in one call: a page's hundred timelines."""
        plain = _plain_classes(object_type)
        sources, rows, slots = column
        answers: list[list[Any]] = []
        for items, parent in lists:
            completed: list[Any] = [None] * len(items)
            if parent is not None:
                parent.container[parent.key] = completed
            answers.append(completed)
            for index, item in enumerate(items):
                slot = _new_slot((completed, index, item_type, details, parent, path))
                if (
                    item.__class__ in plain and getattr(item, _CAST, None) is None
                ) or self._usual_object(object_type, item):
                    row: dict[str, Any] = {}  # joins the column (see _Column)
                    completed[index] = row
                    sources.append(item)
                    rows.append(row)
                    slots.append(slot)
                else:
                    self._item(item, item_type, details, info(parent), slot, pending)
        return answers

    async def _finish(self, completed: list[Any], pending: list[Awaitable[None]]) -> list[Any]:
        """Await the list's pending work, wave after wave (completing a batched column can
        start columns of its own)."""
        try:
            while pending:
                wave = list(pending)
                pending.clear()
                if len(wave) == 1:
                    await wave[0]
                else:
                    await gather_with_cancel(*wave)
        except Exception:
            if pending:
                self.settle_in_background(pending)
            raise
        return completed

    # --- one column: every field of a sub-selection, for all objects

    @staticmethod
    def _usual_object(object_type: GraphQLObjectType, value: Any) -> bool:
        if value is None or isinstance(value, Exception):
            return False
        check = object_type.is_type_of
        if check is None:  # any such value: its class is taken as it is from now on
            _plain_classes(object_type).add(value.__class__)
            return True
        return check(value, None) is True  # type: ignore[arg-type]

    def _object_column(
        self,
        object_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        grouped, defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        if defer_usages:  # incremental delivery: graphql-core's path, object by object
            for source, slot in zip(column.sources, column.slots, strict=True):
                try:
                    result = self.collect_and_execute_subfields(
                        object_type, field_details_list, slot.path, source, None
                    )
                except Exception as error:
                    slot.container[slot.key] = None
                    self._propagate(slot, error)
                    continue
                self._put(result, slot.container, slot.key, slot, pending)
            return
        self._fields(object_type, grouped, column, pending)

    def _fields(
        self,
        parent_type: GraphQLObjectType,
        grouped: GroupedFieldSet,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        plans = _plans_for(parent_type)
        for name, details in grouped.items():
            node = details[0].node
            if len(details) == 1 and not node.arguments:
                field_name = node.name.value
                if field_name == "__typename":  # the type's name, for every object
                    type_name = parent_type.name
                    for row in column.rows:
                        row[name] = type_name
                    continue
                plan = plans.get(field_name)
                if plan is not None:
                    if plan.leaf is not None:
                        self._leaf_column(plan, parent_type, name, details, column, pending)
                    else:
                        self._plain_object_column(plan, parent_type, name, details, column, pending)
                    continue
                field = parent_type.fields.get(field_name)
                batch = batch_resolver(parent_type.name, field_name)
                if batch is not None and field is not None and not field.args:
                    self._batched_column(batch, field, parent_type, name, details, column, pending)
                    continue
            self._general_column(parent_type, name, details, column, pending)

    def _leaf_column(
        self,
        plan: _Plain,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        read = plan.read
        coerce = plan.coerce
        assert coerce is not None
        # The usual values coerced here without a call (resolvers/coercion.py gives the same
        # answers): a str for String is itself, an enum member is its name, a UTC datetime
        # its ISO text. A page has hundreds of each.
        kind, members, names, times = _short_paths(plan.leaf)
        for source, row, slot in zip(column.sources, column.rows, column.slots, strict=True):
            try:
                value = read(source)
                of = value.__class__
                if of is kind:
                    row[name] = value
                    continue
                if of is members:
                    found = names.get(value._value_)
                    if found is not None:
                        row[name] = found
                        continue
                elif of is times and value.tzinfo is UTC:
                    row[name] = dumps(value)[1:-1].decode()  # utc_iso(value), inline
                    continue
                if value is not None and not isinstance(value, Exception):
                    coerced = coerce(value)
                    if coerced is not None and coerced is not Undefined:
                        row[name] = coerced
                        continue
            except Exception:  # completed again below, the way that reports it
                pass
            self._plain_one(plan, parent_type, source, name, details, row, slot, pending)

    def _plain_object_column(
        self,
        plan: _Plain,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        object_type = plan.object_type
        assert object_type is not None
        read = plan.read
        values: list[Any] = []
        for source in column.sources:
            try:
                values.append(read(source))
            except Exception:
                values.append(None)  # completed again by _plain_one, the way that reports it
        self._nested_column(
            object_type,
            plan.field.type,
            parent_type,
            name,
            details,
            zip(column.sources, column.rows, column.slots, values, strict=True),
            lambda source, row, slot, _value: self._plain_one(
                plan, parent_type, source, name, details, row, slot, pending
            ),
            pending,
        )

    def _nested_column(
        self,
        object_type: GraphQLObjectType,
        field_type: GraphQLOutputType,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        rows: Iterable[tuple[Any, dict[str, Any], _Slot, Any]],
        otherwise: Callable[[Any, dict[str, Any], _Slot, Any], None],
        pending: list[Awaitable[None]],
    ) -> None:
        """Field ``name`` of a column's rows, whose values are objects of ``object_type``:
        each usual one joins a nested column, completed for the sub-selection; anything else
        goes to ``otherwise(source, row, slot, value)``, graphql-core's way."""
        nested = _Column([], [], [])
        plain, parent_name = _plain_classes(object_type), parent_type.name
        # An object asked only for plain attributes is answered once (_leaf_answers) and
        # that answer put at each of its places: reference data, a case's category or
        # owning agency, is one object for many rows. Looked up at the first object.
        leaves: tuple[_SharedLeaf, ...] | None = None
        looked = False
        answered: dict[int, dict[str, Any]] = {}  # by id(object): ``rows`` holds them all
        for source, row, slot, value in rows:
            if (
                value.__class__ in plain and getattr(value, _CAST, None) is None
            ) or self._usual_object(object_type, value):
                if not looked:
                    leaves, looked = self._shared_leaves(object_type, details), True
                if leaves is not None:
                    done = answered.get(id(value))
                    if done is None:
                        done = _leaf_answers(value, leaves)
                        if done is not None:
                            answered[id(value)] = done
                    if done is not None:
                        row[name] = done
                        continue
                child: dict[str, Any] = {}  # joins the nested column (see _Column)
                row[name] = child
                nested.sources.append(value)
                nested.rows.append(child)
                nested.slots.append(_new_slot((row, name, field_type, details, slot, parent_name)))
            else:
                otherwise(source, row, slot, value)
        if nested.sources:
            self._object_column(object_type, details, nested, pending)

    def _shared_leaves(
        self, object_type: GraphQLObjectType, details: FieldDetailsList
    ) -> tuple[_SharedLeaf, ...] | None:
        """The sub-selection as :func:`_leaf_answers` answers it, when it asks only plain
        attributes of leaf type (and ``__typename``), each once, without arguments; else
        None."""
        grouped, defer_usages, _ = self.collect_subfields(object_type, details)
        if defer_usages:
            return None
        plans = _plans_for(object_type)
        leaves: list[_SharedLeaf] = []
        for name, field_details in grouped.items():
            node = field_details[0].node
            if len(field_details) != 1 or node.arguments:
                return None
            field_name = node.name.value
            if field_name == "__typename":
                leaves.append(
                    _SharedLeaf(name, None, None, None, {}, None, False, object_type.name)
                )
                continue
            plan = plans.get(field_name)
            if plan is None or plan.leaf is None or not plan.attribute:
                return None
            kind, members, names, times = _short_paths(plan.leaf)
            nullable = not is_non_null_type(plan.field.type)
            leaves.append(_SharedLeaf(name, plan.read, kind, members, names, times, nullable, None))
        return tuple(leaves)

    def _batched_column(
        self,
        batch: BatchResolver,
        field: GraphQLField,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        if self._nulled:  # rows an error nulled are not asked about
            kept = [i for i, row in enumerate(column.rows) if _answered(column.slots[i], row)]
            if not kept:
                return
            if len(kept) < len(column.rows):
                column = _Column(*([part[i] for i in kept] for part in column))
        try:
            values = list(batch(column.sources, self.context_value))
            if len(values) != len(column.sources):
                raise GraphQLError(
                    f"{parent_type.name}.{name}: {len(values)} answers for "
                    f"{len(column.sources)} objects."
                )
        except Exception as error:
            values = [error] * len(column.sources)
        if not self._any_awaitable(values):
            self._complete_column(field, parent_type, name, details, column, values, pending)
            return
        for row in column.rows:
            row[name] = None  # the response keeps the selection's order
        pending.append(self._await_column(field, parent_type, name, details, column, values))

    def _any_awaitable(self, values: list[Any]) -> bool:
        """Whether any value is awaitable: a loader's future, or what strawberry's check
        says of anything but the plain values batched fields answer with (a page's ids
        are a hundred strings: no call for each)."""
        is_awaitable = self.is_awaitable
        for value in values:
            kind = value.__class__
            if kind is Future:
                return True
            if kind in _NEVER_AWAITED:
                continue
            if is_awaitable(value):
                return True
        return False

    async def _await_column(
        self,
        field: GraphQLField,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        values: list[Any],
    ) -> None:
        """The column's awaitables awaited one after another: a loader's futures resolve
        together, so after the first the rest are done; no task or coroutine per object."""
        is_awaitable = self.is_awaitable
        resolved: list[Any] = []
        for value in values:
            if value.__class__ is Future or is_awaitable(value):  # a loader's, without a call
                try:
                    value = await value
                except Exception as error:
                    value = error
            resolved.append(value)
        pending: list[Awaitable[None]] = []
        self._complete_column(field, parent_type, name, details, column, resolved, pending)
        if pending:
            await self._finish([], pending)

    def _complete_column(
        self,
        field: GraphQLField,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        values: Sequence[Any],
        pending: list[Awaitable[None]],
    ) -> None:
        """A batched field's values completed: leaves coerced, objects and lists of objects
        made columns; anything else by graphql-core, one object at a time."""
        field_type = field.type
        named = field_type.of_type if is_non_null_type(field_type) else field_type
        rows = zip(column.sources, column.rows, column.slots, values, strict=True)
        if is_leaf_type(named):
            coerce = output_coercion(named)
            kind = passes_as_is(named)  # a page's ids: strings, coerced to themselves
            for _source, row, slot, value in rows:
                if value.__class__ is kind:
                    row[name] = value
                    continue
                if value is not None and not isinstance(value, Exception):
                    try:
                        coerced = coerce(value)
                    except Exception:
                        coerced = None  # completed again below, the way that reports it
                    if coerced is not None and coerced is not Undefined:
                        row[name] = coerced
                        continue
                self._complete_one(field, parent_type, name, details, row, slot, value, pending)
            return
        if is_object_type(named) and (object_type := _object_item_type(named)) is not None:
            self._nested_column(
                object_type,
                field_type,
                parent_type,
                name,
                details,
                rows,
                lambda _source, row, slot, value: self._complete_one(
                    field, parent_type, name, details, row, slot, value, pending
                ),
                pending,
            )
        elif (
            isinstance(named, GraphQLList)
            and (object_type := _object_item_type(named.of_type)) is not None
        ):
            self._list_column(
                field, named.of_type, object_type, parent_type, name, details, rows, pending
            )
        else:  # lists of scalars, interfaces, unions: graphql-core's way
            for _source, row, slot, value in rows:
                self._complete_one(field, parent_type, name, details, row, slot, value, pending)

    def _list_column(
        self,
        field: GraphQLField,
        item_type: GraphQLOutputType,
        object_type: GraphQLObjectType,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        rows: Any,
        pending: list[Awaitable[None]],
    ) -> None:
        """Lists of objects, one per object of the column: all their items become one column."""
        items = _Column([], [], [])
        info = partial(self._slot_info, field, details, parent_type)
        field_type, parent_name = field.type, parent_type.name
        lists: list[tuple[Sequence[Any], _Slot | None]] = []
        for _source, row, slot, value in rows:
            kind = value.__class__
            if kind is not list and kind is not tuple and not isinstance(value, list | tuple):
                self._complete_one(field, parent_type, name, details, row, slot, value, pending)
                continue
            lists.append((value, _new_slot((row, name, field_type, details, slot, parent_name))))
        self._list_items(lists, item_type, object_type, details, None, info, items, pending)
        if items.sources:
            self._object_column(object_type, details, items, pending)

    def _general_column(
        self,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        column: _Column,
        pending: list[Awaitable[None]],
    ) -> None:
        """graphql-core's ``execute_field`` for each object (arguments, ``info``, async
        resolvers, interfaces...)."""
        for source, row, slot in zip(column.sources, column.rows, column.slots, strict=True):
            if self._nulled and not _answered(slot, row):
                continue  # nulled by an error (graphql-core stops executing its fields too)
            try:
                result = self.execute_field(
                    parent_type, source, details, Path(slot.path, name, parent_type.name), None
                )
            except Exception as error:
                row[name] = None
                self._propagate(slot, error)
                continue
            if result is not Undefined:
                self._put(result, row, name, slot, pending)

    # --- one value, the unusual way: graphql-core completes and reports it

    def _resolve_info(
        self,
        field: GraphQLField,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> Any:
        """The field's resolve info, made only for the values that need graphql-core's way."""
        return self.build_resolve_info(field, to_nodes(details), parent_type, path)

    def _slot_info(
        self,
        field: GraphQLField,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        slot: _Slot | None,
    ) -> Any:
        """The resolve info of the field whose value is at ``slot`` (a list's own slot)."""
        assert slot is not None
        return self._resolve_info(field, details, parent_type, slot.path)

    def _plain_one(
        self,
        plan: _Plain,
        parent_type: GraphQLObjectType,
        source: Any,
        name: str,
        details: FieldDetailsList,
        row: dict[str, Any],
        slot: _Slot,
        pending: list[Awaitable[None]],
    ) -> None:
        try:
            result = self._plain_field(plan, parent_type, source, details, slot.path, name, None)
        except Exception as error:
            row[name] = None
            self._propagate(slot, error)
            return
        self._put(result, row, name, slot, pending)

    def _complete_one(
        self,
        field: GraphQLField,
        parent_type: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
        row: dict[str, Any],
        slot: _Slot,
        value: Any,
        pending: list[Awaitable[None]],
    ) -> None:
        """A batched field's value for one object, as ``execute_field`` completes a
        resolver's answer (``value`` may be the exception the resolver raised)."""
        path = Path(slot.path, name, parent_type.name)
        try:
            if isinstance(value, Exception):
                raise value
            info = self._resolve_info(field, details, parent_type, path)
            completed = self.complete_value(field.type, details, info, path, value, None)
        except Exception as raw_error:
            row[name] = None
            self._field_failed(raw_error, field.type, details, path, slot)
            return
        row[name] = completed
        if self.is_awaitable(completed):
            row[name] = None
            pending.append(
                self._settled_field(completed, field.type, details, path, row, name, slot)
            )

    async def _settled_field(
        self,
        completed: Awaitable[Any],
        field_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
        row: dict[str, Any],
        name: str,
        slot: _Slot,
    ) -> None:
        try:
            row[name] = await completed
        except Exception as raw_error:
            self._field_failed(raw_error, field_type, details, path, slot)

    def _item(
        self,
        item: Any,
        item_type: GraphQLOutputType,
        details: FieldDetailsList,
        info: Any,
        slot: _Slot,
        pending: list[Awaitable[None]],
    ) -> None:
        """One list item graphql-core's way (null, an error, an awaitable, a wrong type)."""
        if self.is_awaitable(item):
            awaited = self.complete_awaitable_list_item_value(
                item, item_type, details, info, slot.path, None
            )
            self._put(awaited, slot.container, slot.key, slot.parent, pending)
            return
        result: list[Any] = []
        try:
            self.complete_list_item_value(item, result, item_type, details, info, slot.path, None)
        except Exception as error:
            slot.container[slot.key] = None
            self._propagate(slot.parent, error)
            return
        self._put(result[0], slot.container, slot.key, slot.parent, pending)

    # --- where values and errors go

    def _put(
        self,
        result: Any,
        container: Any,
        key: str | int,
        slot: _Slot | None,
        pending: list[Awaitable[None]],
    ) -> None:
        """``result`` at ``container[key]``, now or once awaited; an error it raises goes to
        ``slot``, the object or list holding it."""
        if self.is_awaitable(result):
            container[key] = None
            pending.append(self._settled(result, container, key, slot))
        else:
            container[key] = result

    async def _settled(
        self, awaitable: Awaitable[Any], container: Any, key: str | int, slot: _Slot | None
    ) -> None:
        try:
            container[key] = await awaitable
        except Exception as error:
            self._propagate(slot, error)

    def _field_failed(
        self,
        raw_error: Exception,
        field_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
        slot: _Slot,
    ) -> None:
        """A field's error, reported at the field when it is nullable, else passed up."""
        try:
            self.handle_field_error(raw_error, field_type, details, path)
        except Exception as error:
            self._propagate(slot, error)

    def _propagate(self, slot: _Slot | None, error: Exception) -> None:
        """A non-null field below ``slot`` failed: the nearest nullable slot up the chain
        becomes null and records the error (graphql-core's ``handle_field_error`` at each
        level); past the list's own items the error is raised to graphql-core."""
        self._nulled = True
        while slot is not None:
            try:
                self.handle_field_error(error, slot.type, slot.details, slot.path)
            except Exception as located:
                error = located
                slot = slot.parent
                continue
            slot.container[slot.key] = None
            return
        raise error
