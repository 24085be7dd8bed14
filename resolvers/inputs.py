"""Input objects of plain values, built straight from the value graphql-core has coerced.

strawberry turns an argument's input object into its Python class field by field: for every
field of the type, whether the value has it or not, the GraphQL name from the name converter,
the field's type resolved, and a recursive conversion of the value. For ``cases(filter:
{source: [...]})`` that was 3% of the dashboard page's instructions (bench/README.md), for one
field. An input whose fields are all leaves (scalars, enums) or lists of leaves needs none of
it: graphql-core has already coerced each value (an enum to its member, a ``DateTime`` to a
``datetime``), and strawberry's conversion would only copy the lists.

:func:`plain_input` gives such a type a ``from_input`` (strawberry's hook for input types that
build their own value) that does just that: each GraphQL name present to its Python name (the
schema's own name converter, asked once per field), lists copied, the rest as they are. The
tests compare it with strawberry's own conversion for every field.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any, TypeVar

from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryOptional,
    StrawberryType,
    get_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.field import StrawberryField

T = TypeVar("T", bound=type)

_PLAIN_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    datetime.datetime,
    datetime.date,
    datetime.time,
    decimal.Decimal,
    uuid.UUID,
)
"""Python types of scalars whose coerced value strawberry passes on as it is (``GlobalID`` is
not one: strawberry decodes it)."""


def plain_input(cls: T) -> T:
    """Build ``cls`` (a ``@strawberry.input`` of leaves and lists of leaves) without
    strawberry's field-by-field conversion. Raises ``TypeError`` for any other field, when the
    module defining the input is imported."""
    definition = get_object_definition(cls, strict=True)
    for field in definition.fields:
        if not _plain(field.type):
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a leaf or list of leaves")
    implicit_none: dict[str, Any] = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }
    names: dict[int, dict[str, tuple[str, bool]]] = {}

    def from_input(type_: type, value: Mapping[str, Any], context: InputContext) -> Any:
        converter = context.config.name_converter
        fields = names.get(id(converter))
        if fields is None:
            fields = names[id(converter)] = {
                converter.from_field(field): (field.python_name, _is_list(field))
                for field in definition.fields
            }
        arguments = dict(implicit_none)
        for name, given in value.items():
            python_name, is_list = fields[name]
            arguments[python_name] = list(given) if is_list and given is not None else given
        return type_(**arguments)

    definition.from_input = from_input
    return cls


def _plain(type_: StrawberryType | type | Any, in_list: bool = False) -> bool:
    if isinstance(type_, StrawberryOptional):
        return _plain(type_.of_type, in_list)
    if isinstance(type_, StrawberryList):
        return not in_list and _plain(type_.of_type, True)
    if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
        return True
    return isinstance(type_, type) and issubclass(type_, _PLAIN_SCALARS)


def _is_list(field: StrawberryField) -> bool:
    type_: Any = field.type
    while isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    return isinstance(type_, StrawberryList)
