"""Fields answered for a whole list of objects at once.

A page of 100 cases asks ``timeline`` (or ``id``) of each case. graphql-core calls the field's
resolver once per case, each call with its own resolve info and strawberry's argument
handling, and awaits each answer in a coroutine of its own, gathered in a task per case
(bench/README.md, "Making it fast"). A *batched* field also has a function that takes every
object of the list and the request's context and returns one answer per object, in order: a
value, or an awaitable such as a data loader's future (the loaders still do the batching per
source).

An execution plan (:mod:`resolvers.plan`) uses it for every column of objects (a list's, or
one object's) when the field is asked without arguments; graphql-core's own execution (an
operation no plan covers) runs the field's own resolver, so both must give the same answer
(the tests compare them). Batched functions see the graph's objects and the context, never
resolve info: they are for fields whose answer depends only on the object and the request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

BatchResolver = Callable[[Sequence[Any], Any], Sequence[Any]]
"""``(objects, context) -> one value or awaitable per object``, in the objects' order."""

_batched: dict[tuple[str, str], BatchResolver] = {}


def batched(type_name: str, field_name: str) -> Callable[[BatchResolver], BatchResolver]:
    """Register ``function`` as the list-at-once answer of ``type_name.field_name`` (the
    GraphQL names, as in schema.graphql)."""

    def register(function: BatchResolver) -> BatchResolver:
        _batched[(type_name, field_name)] = function
        return function

    return register


def batch_resolver(type_name: str, field_name: str) -> BatchResolver | None:
    return _batched.get((type_name, field_name))


def batched_fields() -> list[tuple[str, str]]:
    """Every registered ``(type, field)``: the tests check each against the schema."""
    return sorted(_batched)
