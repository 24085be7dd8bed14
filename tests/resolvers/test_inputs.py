"""Plain input objects (resolvers/inputs.py) are built as strawberry's own conversion builds
them, for every field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument
from strawberry.types.base import get_object_definition

from resolvers.audit import AuditFilter
from resolvers.enums import CaseOrderField, CaseStatus, OrderDirection
from resolvers.filters import CaseFilterInput, CaseOrderInput
from resolvers.inputs import plain_input
from resolvers.schema import build_schema

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

VALUES: list[tuple[type, dict[str, Any]]] = [
    (CaseFilterInput, {}),
    (CaseFilterInput, {"source": ["damrongdhama"]}),
    (CaseFilterInput, {"status": None, "text": None}),
    (
        CaseFilterInput,
        {
            "status": [CaseStatus.RECEIVED, CaseStatus.CLOSED],
            "agency": ["MOI-DDC"],
            "source": ["damrongdhama", "pmoc-1111"],
            "category": ["ROADS"],
            "provinceCode": ["40"],
            "districtCode": ["4001"],
            "receivedFrom": WHEN,
            "receivedBefore": WHEN,
            "text": "ถนน",
            "overdue": False,
        },
    ),
    (CaseOrderInput, {"field": CaseOrderField.UPDATED_AT, "direction": OrderDirection.ASC}),
    (CaseOrderInput, {"direction": OrderDirection.ASC}),
    (AuditFilter, {"subject": "x", "source": "damrongdhama", "caseId": "c", "since": WHEN}),
]


def _convert(type_: type, value: dict[str, Any], *, strawberrys_own: bool) -> Any:
    schema = build_schema()
    definition = get_object_definition(type_, strict=True)
    kept = definition.from_input
    if strawberrys_own:
        definition.from_input = None
    try:
        return convert_argument(
            value, type_, schema.schema_converter.scalar_registry, schema.config
        )
    finally:
        definition.from_input = kept


@pytest.mark.parametrize(("type_", "value"), VALUES)
def test_plain_inputs_are_built_as_strawberry_builds_them(
    type_: type, value: dict[str, Any]
) -> None:
    assert get_object_definition(type_, strict=True).from_input is not None
    built = _convert(type_, value, strawberrys_own=False)
    assert built == _convert(type_, value, strawberrys_own=True)
    for given in vars(built).values():  # lists copied, as strawberry copies them
        if isinstance(given, list):
            assert all(given is not original for original in value.values())


def test_an_input_with_a_nested_input_is_refused() -> None:
    @strawberry.input
    class Inner:
        code: str

    with pytest.raises(TypeError, match=r"Outer\.inner is not a leaf"):

        @plain_input
        @strawberry.input
        class Outer:
            inner: Inner | None = None
