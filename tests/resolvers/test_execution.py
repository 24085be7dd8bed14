"""The plan executor answers exactly as strawberry's own, errors included, in small: every kind
of field and every way a value can fail (tests/resolvers/test_plan_execution.py has the graph)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError

from resolvers import plan_executor
from resolvers.batched import batched
from resolvers.plan import NEVER_PLANNED
from resolvers.plan_executor import OUTCOMES, PlanExecutor

MARKED: list[str] = []
"""Objects whose ``mark`` resolver ran: a resolver with an effect, kept out of plans
(``NEVER_PLANNED``), runs exactly as often as under strawberry's own executor."""


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
class Badge:
    """Reference data: a few objects, each shared by several items (as a case's category)."""

    label: str
    colour: Colour
    at: datetime
    note: str | None


SHARED_BADGES = [
    Badge(label="common", colour=Colour.BLUE, at=datetime(2026, 5, 6, 7, 8, tzinfo=UTC), note=None),
    Badge(label="odd", colour="purple", at=datetime(2026, 1, 1, tzinfo=UTC), note="x"),  # type: ignore[arg-type]
    Badge(label=None, colour=Colour.RED, at=datetime(2026, 1, 1, tzinfo=UTC), note=None),  # type: ignore[arg-type]
]
"""A usual badge, one with a value its enum does not know, one null for a non-null field."""


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
    def badge(self) -> Badge | None:
        """The usual badge for most items, the two odd ones for two items each."""
        return {"b": SHARED_BADGES[1], "c": SHARED_BADGES[2], "d": SHARED_BADGES[1]}.get(
            str(self.name), None if self.count == "many" else SHARED_BADGES[0]
        )

    @strawberry.field
    def strict_badge(self) -> Badge:
        return SHARED_BADGES[0] if self.name != "e" else SHARED_BADGES[2]

    @strawberry.field
    def twin(self) -> Item | None:
        return Tag(label="not an item", weight=0) if self.note else self  # type: ignore[return-value]

    @strawberry.field
    async def slow_twin(self) -> Item:
        return self

    @strawberry.field(metadata=NEVER_PLANNED)
    def mark(self, info: strawberry.Info) -> str:
        MARKED.append(str(self.name))
        return "marked"

    @strawberry.field
    def sides(self) -> list[Tag | None]:
        return [Tag(label="left", weight=1), None, Tag(label="right", weight=2)]

    @strawberry.field
    def strict_sides(self) -> list[Tag]:
        return [Tag(label="left", weight=1), None]  # type: ignore[list-item]

    # Batched fields (resolvers/batched.py): the per-object resolver and the list-at-once
    # function below must agree; a plan uses the latter.
    @strawberry.field
    async def pairs(self) -> list[Tag]:  # awaited, as the batched futures are
        return _pairs(self)

    @strawberry.field
    async def loose_pairs(self) -> list[Tag] | None:  # a nullable list: an item's error nulls it
        return _pairs(self)

    @strawberry.field
    async def size(self) -> int | None:
        return _size(self)

    @strawberry.field
    def strict_size(self) -> int:
        return _size(self)  # type: ignore[return-value]

    @strawberry.field
    async def partner(self) -> Item | None:
        return _partner(self)


def _pairs(item: Item) -> list[Tag]:
    if item.note is not None:
        raise ValueError(f"no pairs for {item.name}")
    if item.name == "d":
        return [Tag(label="d-0", weight=0), None]  # type: ignore[list-item]
    return [Tag(label=f"{item.name}-{n}", weight=n) for n in range(2)]


def _size(item: Item) -> int | None:
    if item.colour == "purple":
        raise ValueError(f"no size for {item.name}")
    return None if item.note is not None else len(str(item.name))


def _partner(item: Item) -> Item | None:
    return ITEMS[0] if item.name != "a" else None


BATCH_CALLS: list[tuple[str, int]] = []


def _later(value: Any) -> asyncio.Future[Any]:
    """A future resolved on the next turn of the loop, as a data loader's are."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    settle = future.set_exception if isinstance(value, Exception) else future.set_result
    loop.call_soon(settle, value)
    return future


def _each(function: Any, items: Sequence[Item]) -> list[Any]:
    answers = []
    for one in items:
        try:
            answers.append(function(one))
        except Exception as error:
            answers.append(error)
    return answers


def _batch(field: str, function: Any, *, awaited: bool = True) -> None:
    """Register ``Item.field`` as batched: ``function`` per item, counted in BATCH_CALLS, as
    futures (a loader's way) or, with ``awaited=False``, values and exceptions at once."""

    def answer(items: Sequence[Item], _context: object) -> list[Any]:
        BATCH_CALLS.append((field, len(items)))
        answers = _each(function, items)
        return [_later(one) for one in answers] if awaited else answers

    batched("Item", field)(answer)


_batch("pairs", _pairs)
_batch("loosePairs", _pairs)
_batch("size", _size, awaited=False)
_batch("strictSize", _size)
_batch("partner", _partner)


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
    def strict_items(self, start: int = 0) -> list[Item]:
        return list(ITEMS[start:])

    @strawberry.field
    def first(self) -> Item:
        return ITEMS[0]


reference = strawberry.Schema(query=Query)
planned = strawberry.Schema(query=Query, execution_context_class=PlanExecutor)

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
    "query @experimental_disableErrorPropagation { items { name pairs { label } strictSize } }",
    # lists of objects: nullable and non-null items, nested lists, batched fields
    "{ strictItems { shout count } }",
    "{ strictItems(start: 4) { shout } }",
    "{ strictItems(start: 3) { shout } }",
    "{ items { name mark count } }",
    "{ strictItems { name mark } }",
    "{ items { sides { label weight } } }",
    "{ items { name strictSides { label } } }",
    "{ items { name pairs { label weight } size } }",
    "{ strictItems(start: 2) { pairs { label } } }",
    "{ items { strictSize name } }",
    "{ items { name partner { name pairs { label } partner { name } } } }",
    "{ items { twin { name pairs { weight } size } } }",
    "{ first { pairs { label } size strictSize partner { name size } } }",
    "{ items { tag { label } pairs { label } mark } }",
    "{ items { name loosePairs { label } } }",
    "{ strictItems { loosePairs { label weight } } }",
    # shared objects asked for plain attributes only: answered once each, errors at each place
    "{ items { name badge { label colour at note __typename } } }",
    "{ items { badge { label } strictBadge { colour } } }",
    "{ strictItems { strictBadge { label at } } }",
    "{ items { badge { label l2: label } } }",
    "{ items { badge { label ... on Badge { note } } } }",
]


def _error(error: GraphQLError) -> str:
    return repr(error.formatted)


def _shape(value: Any) -> Any:
    """The keys of every object, in order, at every depth."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return None


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_answers_and_errors_equal_strawberrys(document: str) -> None:
    MARKED.clear()
    expected = await reference.execute(document)
    marked = list(MARKED)
    MARKED.clear()
    got = await planned.execute(document)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    # field order as the document asks, at every depth, also for mixed plain and resolved fields
    assert _shape(got.data) == _shape(expected.data)
    assert marked == MARKED


@pytest.mark.parametrize(
    ("document", "outcome"),
    [
        ("{ items { name note at colour count } }", "fallback"),  # item c: a null name
        ("{ first { name note at colour count shout where later tag { label } } }", "planned"),
        ("{ items { name risky } }", "fallback"),  # ... and a resolver failing
        ("{ items { colour } }", "fallback"),  # a colour the enum refuses (item e)
        ("{ first { risky size pairs { label } } strictItems(start: 5) { shout } }", "planned"),
        ("{ items { sides { label } } }", "planned"),
        ("{ items { strictSides { label } } }", "fallback"),  # a null item, non-null
        ("{ first { mark } }", "unplanned"),  # an effect: graphql-core from the start
    ],
)
async def test_plans_run_or_leave_the_operation_to_graphql_core(
    document: str, outcome: str
) -> None:
    before = dict(OUTCOMES)
    result = await planned.execute(document)
    assert result.data is not None
    assert {k: v - before.get(k, 0) for k, v in OUTCOMES.items() if v != before.get(k)} == {
        outcome: 1
    }


async def test_lists_use_batched_fields_once_per_list() -> None:
    BATCH_CALLS.clear()
    result = await planned.execute("{ first { size partner { size } } items { size } }")
    assert result.data is not None
    # one call per field for the whole list (six items), and for `first` on its own (whose
    # partner is null)
    assert BATCH_CALLS == [("size", 1), ("partner", 1), ("size", 6)]
    BATCH_CALLS.clear()
    result = await planned.execute("{ strictItems(start: 5) { pairs { weight } } }")
    assert result.errors is None
    assert BATCH_CALLS == [("pairs", 1)]


async def test_only_resolvers_that_ask_for_it_get_resolve_info(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[str] = []
    original = plan_executor.PlanResolveInfo

    def counting(*fields: Any) -> Any:
        built.append(f"{fields[3].name}.{fields[0]}")
        return original(*fields)

    monkeypatch.setattr(plan_executor, "PlanResolveInfo", counting)
    result = await planned.execute("{ first { name at colour count shout where later } }")
    assert result.errors is None
    assert result.data == {
        "first": {
            "name": "a",
            "at": "2026-01-02T03:04:05+00:00",
            "colour": "RED",
            "count": 3,
            "shout": "A",
            "where": "where of a",
            "later": "later a",
        }
    }
    # plain attributes and resolvers needing only `self` get none; `info` and async ones do
    assert built == ["Item.where", "Item.later"]


async def test_a_plan_that_breaks_leaves_the_operation_to_graphql_core(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong in a plan (here: a reader that raises a bug's TypeError outside
    any resolver) costs speed, never the answer."""

    def broken(*_: Any) -> list[Any]:
        raise TypeError("a bug in the plan")

    monkeypatch.setattr(plan_executor._Run, "read", broken)
    before = dict(OUTCOMES)
    document = "{ first { name count } items { name } }"
    got = await planned.execute(document)
    expected = await reference.execute(document)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    assert OUTCOMES["fallback"] == before.get("fallback", 0) + 1
    assert "plan failed" in caplog.text


@strawberry.type
class Holder:
    """Plain attributes holding awaitables: graphql-core awaits them, and so must a plan."""

    tag: Tag
    label: str


@strawberry.type
class AwaitingQuery:
    @strawberry.field
    async def holder(self) -> Holder:
        return Holder(tag=_later(Tag(label="later", weight=1)), label=_later("soon"))  # type: ignore[arg-type]


async def test_attributes_holding_awaitables_are_awaited() -> None:
    document = "{ holder { label tag { label weight } } }"
    expected = await strawberry.Schema(query=AwaitingQuery).execute(document)
    before = OUTCOMES["planned"]
    got = await strawberry.Schema(
        query=AwaitingQuery, execution_context_class=PlanExecutor
    ).execute(document)
    assert OUTCOMES["planned"] == before + 1  # awaited by the plan, not handed over
    assert expected.data == {"holder": {"label": "soon", "tag": {"label": "later", "weight": 1}}}
    assert got.data == expected.data
    assert got.errors == expected.errors
