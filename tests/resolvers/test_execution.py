"""The plain-field executor answers exactly as strawberry's own, errors included, but faster."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from graphql.pyutils import Path

from resolvers.execution import PlainFieldExecutor


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag:
    label: str
    weight: int


@strawberry.type
class Item(Named):
    name: str
    note: str | None
    at: datetime
    colour: Colour
    count: int

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def later(self) -> str:
        return f"later {self.name}"

    @strawberry.field
    def greet(self, whom: str = "you") -> str:
        return f"{self.name} greets {whom}"

    @strawberry.field
    def risky(self) -> int:
        if self.note is not None:
            raise ValueError(f"no risk for {self.name}")
        return len(self.name or "")

    @strawberry.field
    def maybe(self) -> str:
        return None if self.note is not None else "sure"  # type: ignore[return-value]

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        return f"{info.path.key} of {self.name}"

    @strawberry.field
    def wrong(self) -> Colour:
        return "green"  # type: ignore[return-value]

    @strawberry.field
    def tag(self) -> Tag:
        if self.note is not None:
            return None  # type: ignore[return-value]
        return Tag(label=self.name or "?", weight=self.count if isinstance(self.count, int) else 0)

    @strawberry.field
    def twin(self) -> Item | None:
        return Tag(label="not an item", weight=0) if self.note else self  # type: ignore[return-value]

    @strawberry.field
    async def slow_twin(self) -> Item:
        return self


def item(label: str, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "name": label,
        "note": None,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "colour": Colour.RED,
        "count": 3,
    }
    values.update(changes)
    return Item(**values)


ITEMS = [
    item("a"),
    item("b", note="kept"),
    item("c", name=None),  # null for a non-null field
    item("d", count=ValueError("count unavailable")),  # an error held as the value
    item("e", colour="purple"),  # a value the enum does not know
    item("f", count="many"),  # a value the scalar refuses
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return list(ITEMS)

    @strawberry.field
    def first(self) -> Item:
        return ITEMS[0]


reference = strawberry.Schema(query=Query)
plain = strawberry.Schema(query=Query, execution_context_class=PlainFieldExecutor)

DOCUMENTS = [
    "{ items { name note at colour count } }",
    "{ items { later name shout note count colour at } }",
    "{ items { n1: name n2: name count } }",
    "{ items { name name note ... on Item { name count } } }",
    '{ items { name greet greetMe: greet(whom: "me") } }',
    "{ first { count name later } items { name } }",
    "{ items { __typename name } }",
    "{ items { name risky maybe where } }",
    "{ items { risky } first { maybe wrong } }",
    "{ items { wrong } }",
    "{ items { name tag { label weight } } }",
    "{ items { name twin { name count twin { name } } } }",
    "{ items { twin { slowTwin { name tag { label } } } } }",
    "{ first { tag { weight } twin { count } } }",
    "query @experimental_disableErrorPropagation { items { name } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_answers_and_errors_equal_strawberrys(document: str) -> None:
    expected = await reference.execute(document)
    got = await plain.execute(document)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    if got.data is not None and got.data.get("items"):
        # field order as the document asks, also for mixed plain and resolved fields
        for ours, theirs in zip(got.data["items"], expected.data["items"], strict=True):
            assert list(ours or {}) == list(theirs or {})


async def test_plain_fields_skip_resolve_info(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = PlainFieldExecutor.build_resolve_info

    def counting(
        self: PlainFieldExecutor,
        field_def: GraphQLField,
        field_nodes: list[Any],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo:
        built.append(f"{parent_type.name}.{field_nodes[0].name.value}")
        return original(self, field_def, field_nodes, parent_type, path)

    monkeypatch.setattr(PlainFieldExecutor, "build_resolve_info", counting)
    result = await plain.execute("{ first { name at colour count shout where } }")
    assert result.errors is None
    assert result.data == {
        "first": {
            "name": "a",
            "at": "2026-01-02T03:04:05+00:00",
            "colour": "RED",
            "count": 3,
            "shout": "A",
            "where": "where of a",
        }
    }
    # plain attributes and resolvers needing only `self` build none; `info` needs one
    assert built == ["Item.where"]
