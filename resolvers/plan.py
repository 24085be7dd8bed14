"""Execution plans: what an operation asks, worked out once per document and directive values.

A front-end sends the same few documents again and again. graphql-core works out for every
object of every response which fields its sub-selection asks (fragments, ``@include``/``@skip``)
and how each is resolved and completed. An :class:`ExecutionPlan` does that once per operation
and per truth of the variables its ``@include``/``@skip`` directives read: for each object type
reached, the response keys in order and, per key, how its value is got (an attribute read, a
resolver that needs nothing but its object, a :mod:`batched <resolvers.batched>` function for
a whole list, or the field's own resolver with arguments and resolve info) and completed (a
leaf's coercion, an object's sub-plan, a list of either).

An interface or union (``node``) has a step for each object type it may be, chosen at run time
by the type's own ``resolve_type``. What a plan does not cover is marked, and an operation with
any such field is executed by graphql-core's public ``execute_operation``
(:mod:`resolvers.plan_executor`): introspection, a field whose resolver has effects that must
happen exactly once (``metadata={"plan": "never"}``, such as the complainant's audited
reveal), another directive than ``@include``/``@skip`` (``@defer``, ``@stream``), lists of
lists.

The plan also says which record fields a ``cases`` page must read: the union of the ``reads``
each selected ``Case`` field declares (``strawberry.field(metadata=reads(...))``), with the
directives evaluated (:func:`fields_read`).

Everything here uses graphql-core's and strawberry's public types: the document's AST, the
schema's ``GraphQLField``/``GraphQLObjectType``, and the strawberry field each schema field
carries in its ``extensions`` (``DEFINITION_BACKREF``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from resolvers.batched import BatchResolver, batch_resolver
from resolvers.coercion import (
    OutputCoercion,
    enum_names,
    is_iso_datetime,
    output_coercion,
    passes_as_is,
)

READS = "reads"
"""The metadata key of a field's declared record reads (:func:`reads`)."""

PLAN = "plan"
"""The metadata key that keeps a field out of plans: ``{"plan": "never"}``."""

_DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF


def reads(*fields: str) -> dict[str, Any]:
    """Field metadata declaring the record fields (of ``CaseRecord``) the field reads, beyond
    ``source`` and ``local_id``, which every record holds."""
    return {READS: frozenset(fields)}


COLUMN = "column"
"""The metadata key of a field's column read (:func:`column_read`)."""


def column_read(getter: Callable[[Any], Any], *kinds: type) -> dict[str, Any]:
    """Field metadata saying how a plan may read the field for a whole column in C: its
    resolver answers ``getter(object)`` as it is whenever that is an instance of exactly
    one of ``kinds`` (``type(None)`` for null); any other value (one the resolver would
    raise an error for, or convert) and the column is read by the resolver, object by
    object. ``getter`` is an ``operator.attrgetter``, so a page's column costs no Python
    call per object (``Case.status`` reads ``record.status``)."""
    return {COLUMN: (getter, frozenset(kinds))}


NEVER_PLANNED: dict[str, Any] = {PLAN: "never"}
"""Field metadata for resolvers whose effects must happen once per request (an audited
reveal): operations that select them run on graphql-core's path from the start."""


# How a field's value is got (FieldStep.kind).
TYPENAME = 0
"""``__typename``: the object type's name."""
READ = 1
"""An attribute of the object, or a resolver that needs nothing else: ``read(object)``."""
BATCH = 2
"""A batched field (resolvers/batched.py): ``batch(objects, context)`` for a whole column."""
RESOLVE = 3
"""The field's own resolver (strawberry's wrapper), with resolve info and arguments."""
UNCOVERED = 4
"""Something a plan does not do: the operation runs on graphql-core's path."""

# How it is completed (FieldStep.shape).
LEAF = 0
OBJECT = 1
LEAF_LIST = 2
OBJECT_LIST = 3
ABSTRACT = 4
"""An interface or union: the object's type resolved at run time, then its type's step."""
ABSTRACT_LIST = 5


@dataclass(frozen=True, slots=True, eq=False)
class FieldStep:
    """One response key of an object: how its value is got and completed."""

    key: str
    name: str
    nodes: list[FieldNode]
    field: GraphQLField | None
    kind: int
    shape: int
    non_null: bool
    item_non_null: bool = False
    read: Callable[[Any], Any] | None = None
    batch: BatchResolver | None = None
    coerce: OutputCoercion | None = None
    child: ObjectStep | None = None
    declared_reads: frozenset[str] | None = None
    """What the field declares it reads of its object's record (None: not declared)."""
    short: Short | None = None
    """A leaf's values that need no coercion call (:class:`Short`)."""
    attribute: bool = False
    """Whether ``read`` reads a plain attribute (:attr:`ObjectStep.shareable`)."""
    abstract: GraphQLAbstractType | None = None
    """For an interface or union: the type whose ``resolve_type`` names an object's type."""
    possible: Mapping[str, ObjectStep] | None = None
    """For an interface or union: the step of each object type it may be, by name."""
    column: tuple[Callable[[Any], Any], frozenset[type]] | None = None
    """For a ``READ`` by resolver: the field's :func:`column_read`, if it declares one."""


class Short(NamedTuple):
    """What a leaf column writes without calling the type's coercion (resolvers/coercion.py
    gives the same answers): values of class ``same`` as they are (``str`` for String and
    ID), members of the enum class ``members`` by ``names`` of their values, a UTC
    ``datetime`` (class ``times``) as its ISO text."""

    same: type | None
    members: type | None
    names: Mapping[Any, str]
    times: type | None


def _short(leaf: Any) -> Short:
    enum = enum_names(leaf)
    members, names = enum if enum is not None else (None, {})
    return Short(passes_as_is(leaf), members, names, datetime if is_iso_datetime(leaf) else None)


@dataclass(frozen=True, slots=True, eq=False)
class ObjectStep:
    """An object type's sub-selection: its response keys in order and a step for each."""

    type: GraphQLObjectType
    keys: tuple[str, ...]
    fields: tuple[FieldStep, ...]
    covered: bool
    """Whether every step below is one a plan runs."""
    shareable: bool = False
    """Whether the sub-selection asks only plain attributes of leaf type (and
    ``__typename``): the answer for one object is the same dict wherever the object recurs
    in a column (a page's hundred cases share a few categories and agencies)."""


@dataclass(frozen=True, slots=True, eq=False)
class ExecutionPlan:
    """An operation's plan for one set of ``@include``/``@skip`` values."""

    operation: OperationDefinitionNode
    root: ObjectStep | None
    """None when the operation is not a query or uses something no plan covers
    anywhere (``@defer``); else the root's steps, ``root.covered`` saying whether the plan
    can run the whole operation."""

    @property
    def runnable(self) -> bool:
        return self.root is not None and self.root.covered


class _Uncovered(Exception):
    """A selection no plan covers at all (another directive, a bad fragment)."""


_PLANS_LIMIT = 512
_plans: dict[tuple[int, tuple[bool, ...]], ExecutionPlan] = {}
"""Plans by operation node and directive values. Documents are parsed once per text
(:mod:`resolvers.documents`), so their operation nodes recur; each plan holds its node, so
the id cannot be another node's while the entry lives."""
_switches: dict[int, tuple[OperationDefinitionNode, tuple[str, ...]]] = {}
"""Per operation node, the variables its ``@include``/``@skip`` directives read."""


def plan_for(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> ExecutionPlan:
    """The operation's plan for these variables (coerced), compiled on first use."""
    key = (id(operation), _switch_values(operation, fragments, variables))
    plan = _plans.get(key)
    if plan is not None and plan.operation is operation:
        return plan
    plan = ExecutionPlan(operation, _compile(schema, operation, fragments, variables))
    if len(_plans) >= _PLANS_LIMIT:
        _plans.clear()
        _switches.clear()
    _plans[key] = plan
    return plan


def known_plan(
    operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> ExecutionPlan | None:
    """The plan :func:`plan_for` made for this operation and variables, if it still holds it
    (resolvers ask; the executor compiled it before running them)."""
    switches = _switches.get(id(operation))
    if switches is None or switches[0] is not operation:
        return None
    plan = _plans.get((id(operation), tuple(bool(variables.get(n)) for n in switches[1])))
    return plan if plan is not None and plan.operation is operation else None


def _switch_values(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> tuple[bool, ...]:
    found = _switches.get(id(operation))
    if found is None or found[0] is not operation:
        names: dict[str, None] = {}
        _directive_variables(operation.selection_set, fragments, names, set())
        found = _switches[id(operation)] = (operation, tuple(names))
    return tuple(bool(variables.get(name)) for name in found[1])


def _directive_variables(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    names: dict[str, None],
    seen: set[str],
) -> None:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        for directive in selection.directives or ():
            for argument in directive.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names[argument.value.name.value] = None
        if isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                _directive_variables(fragment.selection_set, fragments, names, seen)
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            _directive_variables(selection.selection_set, fragments, names, seen)


# --- compiling


def _compile(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> ObjectStep | None:
    if operation.operation is not OperationType.QUERY or schema.query_type is None:
        return None
    compiler = _Compiler(schema, fragments, variables)
    try:
        return compiler.object_step(schema.query_type, [operation])
    except (_Uncovered, RecursionError):
        return None


class _Compiler:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def object_step(
        self, object_type: GraphQLObjectType, parents: Iterable[FieldNode | OperationDefinitionNode]
    ) -> ObjectStep:
        """The merged sub-selections of ``parents`` (one response key's field nodes) on
        ``object_type``, grouped by response key in graphql-core's order."""
        grouped: dict[str, list[FieldNode]] = {}
        for parent in parents:
            self.collect(object_type, parent.selection_set, grouped, set())
        steps = tuple(self.field_step(object_type, key, nodes) for key, nodes in grouped.items())
        covered = all(
            step.kind != UNCOVERED and (step.child is None or step.child.covered) for step in steps
        )
        shareable = all(
            step.kind == TYPENAME or (step.kind == READ and step.attribute and step.shape == LEAF)
            for step in steps
        )
        return ObjectStep(object_type, tuple(grouped), steps, covered, shareable)

    def collect(
        self,
        object_type: GraphQLObjectType,
        selection_set: SelectionSetNode | None,
        grouped: dict[str, list[FieldNode]],
        spread: set[str],
    ) -> None:
        """graphql-core's ``collect_fields`` for one object type, on the public AST."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self.applies(condition.name.value, object_type):
                    self.collect(object_type, selection.selection_set, grouped, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in spread:
                    continue
                spread.add(name)
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise _Uncovered(name)
                if self.applies(fragment.type_condition.name.value, object_type):
                    self.collect(object_type, fragment.selection_set, grouped, spread)

    def included(self, selection: Any) -> bool:
        """``@skip``/``@include`` evaluated; any other directive is not covered."""
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                raise _Uncovered(name)
            (argument,) = directive.arguments
            value = argument.value
            if isinstance(value, BooleanValueNode):
                condition = value.value
            elif isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                if not isinstance(found, bool):
                    raise _Uncovered(value.name.value)
                condition = found
            else:
                raise _Uncovered(name)
            if condition is (name == "skip"):
                return False
        return True

    def applies(self, type_name: str, object_type: GraphQLObjectType) -> bool:
        condition = self.schema.get_type(type_name)
        if condition is object_type:
            return True
        if condition is None or is_object_type(condition):
            return False
        return self.schema.is_sub_type(condition, object_type)  # type: ignore[arg-type]

    def field_step(
        self, parent_type: GraphQLObjectType, key: str, nodes: list[FieldNode]
    ) -> FieldStep:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldStep(
                key, name, nodes, None, TYPENAME, LEAF, True, declared_reads=frozenset()
            )
        field = parent_type.fields.get(name)
        if field is None:  # introspection (__schema, __type)
            return FieldStep(key, name, nodes, None, UNCOVERED, LEAF, False)
        non_null, shape, item_non_null, named = _shape(field.type)
        definition = (field.extensions or {}).get(_DEFINITION)
        declared = None
        if isinstance(definition, StrawberryField):
            declared = definition.metadata.get(READS)
        if declared is None:
            declared = _inherited_reads(parent_type).get(name)
        kind, read, batch = _how_got(parent_type, name, field, definition)
        child = None
        coerce = None
        short = None
        abstract: Any = None
        possible: dict[str, ObjectStep] | None = None
        if shape in (LEAF, LEAF_LIST) and named is not None:
            coerce = output_coercion(named)  # type: ignore[arg-type]
            short = _short(named)
        elif shape in (OBJECT, OBJECT_LIST) and named is not None:
            child = self.object_step(named, nodes)  # type: ignore[arg-type]
        elif shape in (ABSTRACT, ABSTRACT_LIST) and is_abstract_type(named):
            abstract = named
            possible = {
                each.name: self.object_step(each, nodes)
                for each in self.schema.get_possible_types(named)
            }
            if not all(each.covered for each in possible.values()):
                kind = UNCOVERED
        else:
            kind = UNCOVERED  # lists of lists
        return FieldStep(
            key,
            name,
            nodes,
            field,
            kind,
            shape,
            non_null,
            item_non_null,
            read,
            batch,
            coerce,
            child,
            declared,
            short,
            isinstance(read, attrgetter),
            abstract,
            possible,
            definition.metadata.get(COLUMN)
            if kind == READ and isinstance(definition, StrawberryField)
            else None,
        )


def _inherited_reads(object_type: GraphQLObjectType) -> Mapping[str, frozenset[str]]:
    """Reads a type declares for the fields it inherits (relay's ``id``), as the class
    attribute ``INHERITED_READS`` of its strawberry class."""
    definition = (object_type.extensions or {}).get(_DEFINITION)
    found = getattr(getattr(definition, "origin", None), "INHERITED_READS", None)
    return found if isinstance(found, Mapping) else {}


def _shape(
    field_type: GraphQLOutputType,
) -> tuple[bool, int, bool, GraphQLOutputType | None]:
    """(non-null, shape, list items non-null, named type) of a field's type; the named type
    is None for what no plan completes (lists of lists)."""
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        item_non_null = isinstance(item, GraphQLNonNull)
        named = item.of_type if isinstance(item, GraphQLNonNull) else item
        if is_leaf_type(named):
            return non_null, LEAF_LIST, item_non_null, named
        if is_object_type(named):
            return non_null, OBJECT_LIST, item_non_null, named
        if is_abstract_type(named):
            return non_null, ABSTRACT_LIST, item_non_null, named
        return non_null, OBJECT_LIST, item_non_null, None
    if is_leaf_type(inner):
        return non_null, LEAF, False, inner
    if is_object_type(inner):
        return non_null, OBJECT, False, inner
    return non_null, ABSTRACT, False, inner


def _how_got(
    parent_type: GraphQLObjectType,
    name: str,
    field: GraphQLField,
    definition: object,
) -> tuple[int, Callable[[Any], Any] | None, BatchResolver | None]:
    """How the field's value is got: (kind, read, batch)."""
    if not isinstance(definition, StrawberryField):
        return UNCOVERED, None, None
    if definition.metadata.get(PLAN) == "never":
        return UNCOVERED, None, None
    if field.args:
        return RESOLVE, None, None
    batch = batch_resolver(parent_type.name, name)
    if batch is not None:
        return BATCH, None, batch
    read = _reader(definition)
    if read is not None:
        return READ, read, None
    return RESOLVE, None, None


def _reader(definition: StrawberryField) -> Callable[[Any], Any] | None:
    """How to read the field from its object alone, or None when it needs more.

    A field without resolver is an attribute (strawberry's default resolver is ``getattr``); a
    synchronous resolver that takes only ``self`` (or nothing) is called with the object.
    Fields with extensions (permissions among them), arguments, ``info``, ``root`` or
    ``parent``, or asynchronous resolvers go through the field's own resolver."""
    if definition.extensions:
        return None
    resolver = definition.base_resolver
    if resolver is None:
        if definition.default_resolver is not getattr:
            return None
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


# --- record reads


_CONNECTION = ("edges", "node")
"""The path from a ``cases`` field to its cases: a Relay connection's edges and nodes."""


def fields_read(plan: ExecutionPlan, response_key: str) -> frozenset[str] | None:
    """The record fields the root field at ``response_key`` (a ``cases`` connection) reads
    of each case: the union of the ``reads`` declared by each field selected on its nodes;
    None (the whole record) when a selected field declares none."""
    if plan.root is None:
        return None
    step = _step(plan.root, response_key)
    if step is None:
        return None
    nodes = [step]
    for name in _CONNECTION:
        nodes = [
            found
            for parent in nodes
            if parent.child is not None
            for found in parent.child.fields
            if found.name == name
        ]
    needed: set[str] = set()
    for node in nodes:
        assert node.child is not None
        for field in node.child.fields:
            if field.declared_reads is None:
                return None
            needed.update(field.declared_reads)
    return frozenset(needed)


def _step(object_step: ObjectStep, key: str) -> FieldStep | None:
    for step in object_step.fields:
        if step.key == key:
            return step
    return None
