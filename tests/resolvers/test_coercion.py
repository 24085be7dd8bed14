"""Leaf coercion's short paths answer exactly as the types' own coercion, for any value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLLeafType, GraphQLScalarType, is_leaf_type

from resolvers import build_schema
from resolvers.coercion import output_coercion, passes_as_is

LEAVES: list[GraphQLLeafType] = [
    t for t in build_schema()._schema.type_map.values() if is_leaf_type(t)
]
OTHER_VALUES: list[Any] = [
    "RECEIVED",
    "no such value",
    "",
    "ข้อความ",
    0,
    7,
    2**40,
    1.5,
    float("nan"),
    True,
    False,
    datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
    datetime(2026, 11, 25, 9, 30, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 0, 0, 0, 120000, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 11, 25, 9, 30, tzinfo=timezone(timedelta(hours=7))),
    datetime(2026, 11, 25, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
    datetime(2026, 11, 25, 9, 30),
    date(2026, 11, 25),
    [],
    object(),
]


def answer(coerce: Any, value: Any) -> tuple[str, Any]:
    try:
        return ("value", coerce(value))
    except Exception as error:
        return (type(error).__name__, str(error))


def values_for(leaf: GraphQLLeafType) -> list[Any]:
    """Every member of an enum's Python class, then values of every other kind."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    members = list(wrapped) if isinstance(wrapped, type) and issubclass(wrapped, Enum) else []
    return [*members, *OTHER_VALUES]


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: leaf.name)
def test_short_paths_answer_as_the_type_does(leaf: GraphQLLeafType) -> None:
    quick = output_coercion(leaf)
    for value in values_for(leaf):
        expected = answer(leaf.coerce_output_value, value)
        if expected[0] == "value" and expected[1] != expected[1]:  # NaN
            continue
        assert answer(quick, value) == expected, (leaf.name, value)


def test_every_enum_member_is_named_without_the_scan() -> None:
    """The short path is taken: once made, the coercion names an enum's members from its own
    table; strawberry's, which scans the type's values at every call, would fail here."""
    enums = [
        leaf
        for leaf in LEAVES
        if isinstance(leaf, GraphQLEnumType) and hasattr(leaf, "wrapped_cls")  # strawberry's
    ]
    assert len(enums) > 3
    for leaf in enums:
        quick = output_coercion(leaf)
        members = values_for(leaf)[: len(leaf.values)]
        expected = [leaf.coerce_output_value(m) for m in members]
        values = leaf.values
        leaf.values = Unreadable()  # type: ignore[assignment]
        try:
            with pytest.raises(AssertionError):
                leaf.coerce_output_value(members[0])
            assert [quick(m) for m in members] == expected
        finally:
            leaf.values = values


class Unreadable(dict[str, Any]):
    def items(self) -> Any:
        raise AssertionError("the enum's values were scanned")


def test_values_said_to_pass_as_they_are_do() -> None:
    """``passes_as_is`` names the class the list executor writes out without coercing: for
    those types, the type's own coercion gives back the very value."""
    named = {leaf.name: passes_as_is(leaf) for leaf in LEAVES}
    assert named["String"] is str and named["ID"] is str and named["Boolean"] is bool
    assert named["Int"] is None and named["DateTime"] is None
    for leaf in LEAVES:
        kind = passes_as_is(leaf)
        for value in OTHER_VALUES:
            if kind is not None and value.__class__ is kind:
                assert leaf.coerce_output_value(value) is value, (leaf.name, value)


def test_datetime_has_a_short_path_for_utc_times() -> None:
    """``DateTime`` leaves (a page's ``receivedAt`` and timeline ``at``) have their own
    coercion, which the comparison above holds to strawberry's ``isoformat()`` text."""
    leaf = build_schema()._schema.type_map["DateTime"]
    assert isinstance(leaf, GraphQLScalarType)
    quick = output_coercion(leaf)
    assert quick is not leaf.coerce_output_value
    assert (
        quick(datetime(2026, 11, 25, 9, 30, 0, 5, tzinfo=UTC)) == "2026-11-25T09:30:00.000005+00:00"
    )
