"""Leaf values coerced for the response, with short paths for the values fields return most.

graphql-core coerces every leaf value through its type's ``coerce_output_value``: a Python call
with type checks for a ``String`` that is already a ``str``, and for strawberry's enums a scan
of the enum's values comparing each (a case's ``status`` among eleven, for each case and each
timeline entry of a page). :func:`output_coercion` gives the same answer for the same value,
quicker where the value is of the type's own kind (a ``str`` for ``String`` and ``ID``, a
``bool`` for ``Boolean``, a member of the enum's class for an enum: one dictionary lookup), and
hands anything else (numbers for ``String``, strings naming an enum value, values the type
refuses) to the type's own coercion, so that results and errors stay graphql-core's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import orjson
from graphql import GraphQLBoolean, GraphQLEnumType, GraphQLID, GraphQLLeafType, GraphQLString
from strawberry.schema.types import base_scalars

OutputCoercion = Callable[[Any], Any]

_coercions: dict[GraphQLLeafType, OutputCoercion] = {}
"""Per leaf type of the schema, its coercion (made on first use; the schema does not change)."""


def output_coercion(leaf: GraphQLLeafType) -> OutputCoercion:
    """A function that answers as ``leaf.coerce_output_value`` does, for any value."""
    coercion = _coercions.get(leaf)
    if coercion is None:
        coercion = _coercions[leaf] = _made_for(leaf)
    return coercion


def passes_as_is(leaf: GraphQLLeafType | None) -> type | None:
    """The class whose instances ``leaf`` coerces to themselves (``str`` for ``String`` and
    ``ID``, ``bool`` for ``Boolean``), so a loop over many values can skip the call; None for
    other types."""
    if leaf is GraphQLString or leaf is GraphQLID:
        return str
    if leaf is GraphQLBoolean:
        return bool
    return None


def enum_names(leaf: GraphQLLeafType | None) -> tuple[type, dict[Hashable, str]] | None:
    """For a strawberry enum: its Python class and each member's name by the member's
    ``_value_``, as strawberry's coercion matches them (the first of the type's values equal
    to it, in the type's order), so a loop over many values can look a member up without the
    call; None for other types, and for enums with a value that cannot be a key."""
    if leaf is None:
        return None
    if leaf in _enum_tables:
        return _enum_tables[leaf]
    found = None
    wrapped = getattr(leaf, "wrapped_cls", None)  # strawberry's enums hold their Python class
    if isinstance(leaf, GraphQLEnumType) and isinstance(wrapped, type):
        values = leaf.values.items()
        if all(isinstance(value.value, Hashable) for _, value in values):
            names: dict[Hashable, str] = {}
            for name, value in values:
                names.setdefault(value.value, name)
            found = (wrapped, names)
    _enum_tables[leaf] = found
    return found


_enum_tables: dict[GraphQLLeafType, tuple[type, dict[Hashable, str]] | None] = {}


def is_iso_datetime(leaf: GraphQLLeafType | None) -> bool:
    """Whether ``leaf`` coerces a ``datetime`` with ``isoformat()`` (strawberry's
    ``DateTime``), which :func:`utc_iso` writes for a UTC one."""
    return leaf is not None and leaf.coerce_output_value is _ISOFORMAT


def utc_iso(value: datetime) -> str:
    """``value.isoformat()`` for an aware UTC ``datetime``, as orjson writes it (the same
    text, checked by the tests, in a third of the time)."""
    return orjson.dumps(value)[1:-1].decode()


def _made_for(leaf: GraphQLLeafType) -> OutputCoercion:
    general: OutputCoercion = leaf.coerce_output_value
    kind = passes_as_is(leaf)
    if kind is not None:
        return lambda value: value if value.__class__ is kind else general(value)
    if is_iso_datetime(leaf):
        return _iso_coercion(general)
    enum = enum_names(leaf)
    if enum is not None:
        return _enum_coercion(*enum, general)
    return general


def _enum_coercion(
    wrapped: type, names: dict[Hashable, str], general: OutputCoercion
) -> OutputCoercion:
    """A member of the enum's class by its value (:func:`enum_names`), anything else as the
    type's own coercion answers it."""

    def coerce(output: Any) -> Any:
        if output.__class__ is wrapped:
            # ``_value_``, what the ``value`` property returns: read through the property, a
            # Python-level descriptor call each time, it cost more than the lookup.
            name = names.get(getattr(output, "_value_", None))
            if name is not None:
                return name
        return general(output)

    return coerce


_ISOFORMAT = getattr(base_scalars, "isoformat", None)
"""strawberry's ``DateTime`` (and ``Date``, ``Time``) output coercion: ``value.isoformat()``."""


def _iso_coercion(general: OutputCoercion) -> OutputCoercion:
    """``isoformat()`` of a UTC ``datetime`` as orjson writes it (the same text, checked by the
    tests, in a third of the time: a page writes two hundred of them, a case's ``receivedAt``
    and its timeline's ``at``); any other value as strawberry's coercion does it."""

    def coerce(value: Any) -> Any:
        if value.__class__ is datetime and value.tzinfo is UTC:
            return utc_iso(value)
        return general(value)

    return coerce
