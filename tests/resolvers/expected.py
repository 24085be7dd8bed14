"""Ground truth for graph tests: the same synthetic cases the demo databases were built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from samples import traffy
from samples.generator import SyntheticCase, generate_cases
from tests.conftest import (
    OPEN311_CASES,
    OPEN311_SEED,
    PG_CASES,
    PG_SEED,
    REST_CASES,
    REST_SEED,
    SQLITE_CASES,
    SQLITE_SEED,
)

POSTGRES_SOURCE = "damrongdhama"
SQLITE_SOURCE = "khonkaen-office"
REST_SOURCE = "pmoc-1111"
OPEN311_SOURCE = "traffy-city"
ALL_SOURCES = (POSTGRES_SOURCE, SQLITE_SOURCE, REST_SOURCE, OPEN311_SOURCE)


@dataclass(frozen=True)
class Expected:
    source: str
    case: SyntheticCase


@cache
def all_cases() -> tuple[Expected, ...]:
    postgres = generate_cases(seed=PG_SEED, count=PG_CASES)
    sqlite = generate_cases(seed=SQLITE_SEED, count=SQLITE_CASES, province_codes=["40"])
    rest = generate_cases(seed=REST_SEED, count=REST_CASES)
    city = generate_cases(seed=OPEN311_SEED, count=OPEN311_CASES, province_codes=traffy.PROVINCES)
    return tuple(
        [Expected(POSTGRES_SOURCE, case) for case in postgres]
        + [Expected(SQLITE_SOURCE, case) for case in sqlite]
        + [Expected(REST_SOURCE, case) for case in rest]
        + [Expected(OPEN311_SOURCE, seen_by_the_graph(case)) for case in city]
    )


def seen_by_the_graph(case: SyntheticCase) -> SyntheticCase:
    """The city platform keeps five states and four channels: what the graph can see of them."""
    channel = case.channel if case.channel in ("LINE", "MOBILE_APP", "WEB") else "OTHER"
    return replace(case, status=traffy.seen_status(case.status), channel=channel)


def matching(predicate: Callable[[SyntheticCase], bool]) -> list[Expected]:
    return [expected for expected in all_cases() if predicate(expected.case)]
