"""complaint-graph's statistics protocol, agency side: what a sample agency's stats endpoint
answers (see ``StatsEndpoint`` in sources/rest/_settings.py).

Groups keyed by the agency's own names and values, each with count, open, overdue (by the
agency's own due dates), resolved, and resolution and open-age hours as count, sum and a
histogram over the shared bins: under 1 h, then 2^(i/4) h up to 65,536 h.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

BOUNDS = [2 ** (i / 4) for i in range(65)]
BANGKOK = timezone(timedelta(hours=7))

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the figures need to know of one case."""

    received: datetime
    state: Literal["open", "resolved", "other"]
    due: datetime | None
    closed: datetime | None


def period(moment: datetime, unit: str) -> str:
    """The ISO date of the first day (Asia/Bangkok) of the day, week or month of ``moment``."""
    day: date = moment.astimezone(BANGKOK).date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return day.isoformat()


def _durations() -> dict[str, Any]:
    return {"count": 0, "sum": 0.0, "histogram": [0] * (len(BOUNDS) + 1)}


def _figures() -> dict[str, Any]:
    return {
        "count": 0,
        "open": 0,
        "overdue": 0,
        "resolved": 0,
        "resolution_hours": _durations(),
        "open_age_hours": _durations(),
    }


def _add(figures: dict[str, Any], facts: Facts, as_of: datetime) -> None:
    figures["count"] += 1
    hours: float | None = None
    kind = ""
    if facts.state == "open":
        figures["open"] += 1
        figures["overdue"] += facts.due is not None and facts.due < as_of
        hours, kind = (as_of - facts.received).total_seconds() / 3600, "open_age_hours"
    elif facts.state == "resolved":
        figures["resolved"] += 1
        if facts.closed is not None:
            hours = (facts.closed - facts.received).total_seconds() / 3600
            kind = "resolution_hours"
    if hours is not None:
        durations = figures[kind]
        durations["count"] += 1
        durations["sum"] += hours
        durations["histogram"][bisect_right(BOUNDS, hours)] += 1


def aggregate(
    items: Iterable[T],
    names: list[str],
    as_of: datetime,
    groups: Mapping[str, Callable[[T], list[Any]]],
    facts: Callable[[T], Facts],
) -> dict[str, Any]:
    """``{"groups": [...], "total": {...}}`` for ``items`` grouped by ``names``; a case with
    several values of one group (referral targets) counts in each, and once in the total."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    total = _figures()
    for item in items:
        known = facts(item)
        _add(total, known, as_of)
        keys: list[tuple[Any, ...]] = [()]
        for name in names:
            keys = [(*key, value) for key in keys for value in groups[name](item)]
        for key in keys:
            _add(found.setdefault(key, _figures()), known, as_of)
    return {
        "groups": [
            {"key": dict(zip(names, key, strict=True)), **figures} for key, figures in found.items()
        ],
        "total": total,
    }
