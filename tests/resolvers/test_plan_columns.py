"""A plan's leaf columns, written in loops that run in C when every value is of one kind
(:func:`resolvers.plan_executor._leaf_values`), answer exactly as strawberry's own executor
for every mix of values: nulls, errors held as values, enum values the schema does not know,
naive and aware datetimes in and out of UTC, strings where an enum or a time is due, and
fields switched by ``@include``/``@skip``."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from types import NoneType
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import strawberry

from resolvers import plan_executor
from resolvers.plan import column_read
from resolvers.plan_executor import OUTCOMES, PlanExecutor

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


@strawberry.enum
class Mood(enum.Enum):
    CALM = "calm"
    CROSS = "cross"


@strawberry.type
class Row:
    text: str
    maybe_text: str | None
    mood: Mood
    maybe_mood: Mood | None
    at: datetime
    maybe_at: datetime | None

    @strawberry.field
    def echo(self) -> str | None:
        """A resolver: objects with it are not answered once per object (``shareable``),
        so a nullable field's error stays on the plan's path."""
        return self.maybe_text


def row(**changes: Any) -> Row:
    values: dict[str, Any] = {
        "text": "ข้อความ",
        "maybe_text": None,
        "mood": Mood.CALM,
        "maybe_mood": None,
        "at": WHEN,
        "maybe_at": None,
    }
    values.update(changes)
    return Row(**values)


USUAL = [
    row(),
    row(text="b", maybe_text="x", mood=Mood.CROSS, maybe_mood=Mood.CROSS, maybe_at=WHEN),
    row(text="", at=datetime(1, 1, 1, tzinfo=UTC), maybe_at=datetime(9999, 12, 31, tzinfo=UTC)),
    row(at=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
]
"""Columns the C loops write: one kind each, nulls only where the field is nullable."""

ODD: dict[str, Row] = {
    "null text": row(text=None),
    "null mood": row(mood=None),
    "null time": row(at=None),
    "error text": row(text=ValueError("no text")),
    "error maybe text": row(maybe_text=ValueError("no text")),
    "error maybe mood": row(maybe_mood=ValueError("no mood")),
    "error maybe time": row(maybe_at=ValueError("no time")),
    "number for text": row(maybe_text=7),
    "unknown enum value": row(maybe_mood="sulky"),
    "enum by name": row(maybe_mood="CALM"),
    "enum by value": row(maybe_mood="calm"),
    "naive time": row(maybe_at=datetime(2026, 3, 4, 5, 6, 7)),
    "time at +07": row(maybe_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=7)))),
    "time at +00 not UTC": row(maybe_at=datetime(2026, 3, 4, 5, 6, tzinfo=timezone(timedelta()))),
    "time in a zone": row(maybe_at=datetime(2026, 3, 4, 5, 6, tzinfo=ZoneInfo("Asia/Bangkok"))),
    "text for time": row(maybe_at="2026-03-04"),
}
"""One row each that a C loop must leave to the per-value path."""

ROWS: list[Row] = []


@strawberry.type
class Other:
    text: str


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row]:
        return list(ROWS)

    @strawberry.field
    def maybe_rows(self) -> list[Row | None]:
        return list(ROWS)

    @strawberry.field
    def nested(self) -> list[Nest]:
        return [Nest(row=one) for one in ROWS]


@strawberry.type
class Nest:
    row: Row | None


reference = strawberry.Schema(query=Query)
planned = strawberry.Schema(query=Query, execution_context_class=PlanExecutor)

EVERY_FIELD = "{ rows { text maybeText mood maybeMood at maybeAt } }"
NULLABLE_FIELDS = "{ rows { maybeText maybeMood maybeAt } }"


async def _alike(document: str, variables: dict[str, Any] | None = None) -> dict[str, int]:
    """Both executors' answers are equal (data, key order, errors); how the plan ran."""
    expected = await reference.execute(document, variable_values=variables)
    before = dict(OUTCOMES)
    got = await planned.execute(document, variable_values=variables)
    assert got.data == expected.data
    assert repr(got.data) == repr(expected.data)  # key order at every depth
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    return {k: OUTCOMES[k] - before.get(k, 0) for k in OUTCOMES if OUTCOMES[k] != before.get(k)}


async def test_usual_columns_are_planned_and_alike() -> None:
    ROWS[:] = USUAL * 2
    assert await _alike(EVERY_FIELD) == {"planned": 1}
    ROWS[:] = [row(maybe_text="x", maybe_mood=Mood.CALM, maybe_at=WHEN)] * 9  # no nulls at all
    assert await _alike(EVERY_FIELD) == {"planned": 1}
    ROWS[:] = []
    assert await _alike(EVERY_FIELD) == {"planned": 1}


@pytest.mark.parametrize("odd", list(ODD))
@pytest.mark.parametrize("place", [0, 2, 4])
async def test_an_odd_value_anywhere_in_a_column_answers_alike(odd: str, place: int) -> None:
    ROWS[:] = [*USUAL[:place], ODD[odd], *USUAL[place:], *USUAL, *USUAL]
    await _alike(EVERY_FIELD)
    await _alike(NULLABLE_FIELDS)
    await _alike("{ rows { echo text maybeMood maybeAt } }")


async def test_nullable_errors_are_planned_with_their_paths() -> None:
    """An error in a nullable leaf stays on the plan's path: null, and the error at its row."""
    ROWS[:] = [*USUAL * 2, ODD["error maybe time"], ODD["error maybe mood"], ODD["naive time"]]
    assert await _alike("{ rows { echo maybeMood maybeAt } }") == {"planned": 1}


async def test_a_value_its_enum_does_not_know_goes_to_graphql_core() -> None:
    ROWS[:] = [*USUAL * 2, ODD["unknown enum value"]]
    assert await _alike(NULLABLE_FIELDS) == {"fallback": 1}


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("include", [True, False])
async def test_switched_leaves_answer_alike(skip: bool, include: bool) -> None:
    ROWS[:] = [*USUAL * 2, ODD["naive time"], ODD["number for text"]]
    document = """query($skip: Boolean!, $include: Boolean!) { rows {
        text @skip(if: $skip) maybeAt @include(if: $include) mood
        ... @include(if: $include) { maybeMood at } ... @skip(if: $skip) { maybeText } } }"""
    assert await _alike(document, {"skip": skip, "include": include}) == {"planned": 1}


async def test_a_column_of_utc_times_is_one_orjson_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not one per value: a page's hundreds of times cost one call each column."""
    calls: list[Any] = []

    def counted(value: Any) -> bytes:
        calls.append(value)
        return orjson.dumps(value)

    monkeypatch.setattr(plan_executor, "dumps", counted)
    ROWS[:] = USUAL * 50
    assert await _alike("{ rows { at maybeAt text } }") == {"planned": 1}
    assert len(calls) == 2


LOUD_CALLS: list[object] = []


def _loud(self: Reading) -> Mood | None:
    """Converts what is not a ``Mood`` (as ``Case.status`` raises for an unmapped value)."""
    LOUD_CALLS.append(self.raw)
    raw = self.raw
    if raw.__class__ is str:
        if raw == "bad":
            raise ValueError("an unmapped value")
        return Mood(raw)
    return raw  # type: ignore[return-value]


@strawberry.type
class Reading:
    raw: strawberry.Private[object]
    mood: Mood | None = strawberry.field(
        resolver=_loud, metadata=column_read(attrgetter("raw"), Mood, NoneType)
    )
    other: int = 0


@strawberry.type
class ReadingQuery:
    @strawberry.field
    def readings(self) -> list[Reading]:
        return [Reading(raw=raw) for raw in READINGS]


READINGS: list[object] = []
read_reference = strawberry.Schema(query=ReadingQuery)
read_planned = strawberry.Schema(query=ReadingQuery, execution_context_class=PlanExecutor)


@pytest.mark.parametrize(
    ("raws", "by_resolver"),
    [
        ([Mood.CALM, None, Mood.CROSS], False),
        ([Mood.CALM, "calm", None], True),  # one the resolver converts
        ([Mood.CALM, "bad", Mood.CROSS], True),  # one the resolver raises for
        ([], False),
    ],
)
async def test_a_column_read_answers_as_its_resolver(raws: list[object], by_resolver: bool) -> None:
    """The column's values as they are where each is of a declared kind, without a call of
    the resolver; else the resolver's, object by object. The answer is the resolver's."""
    READINGS[:] = raws * 4  # (shorter columns keep the per-object loop)
    document = "{ readings { mood other } }"
    expected = await read_reference.execute(document)
    LOUD_CALLS.clear()
    before = dict(OUTCOMES)
    got = await read_planned.execute(document)
    assert got.data == expected.data
    assert [e.formatted for e in got.errors or []] == [e.formatted for e in expected.errors or []]
    assert OUTCOMES["planned"] == before.get("planned", 0) + 1
    assert bool(LOUD_CALLS) is by_resolver


@pytest.mark.parametrize(
    "odd",
    [None, Other(text="another type"), ValueError("no row")],
    ids=["null", "another type", "an error"],
)
@pytest.mark.parametrize("place", [0, 3, 5])
async def test_lists_and_columns_of_objects_with_an_odd_one_answer_alike(
    odd: Any, place: int
) -> None:
    """Lists of many objects and columns of objects are made at once when every one is an
    object of the type; a null, an object of another type or an error anywhere in them
    leaves them to the per-object loops, and the answers stay strawberry's."""
    ROWS[:] = [*USUAL, *USUAL]
    assert await _alike("{ rows { text } maybeRows { at } nested { row { mood } } }") == {
        "planned": 1
    }
    ROWS.insert(place, odd)
    await _alike("{ maybeRows { text at } }")
    await _alike("{ nested { row { text maybeAt } } }")
    await _alike("{ rows { text } }")
