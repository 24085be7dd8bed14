"""Retries never use the margin kept back for merging the sources' answers (issue 19).

The guard checks, before its backoff's sleep, that a retry would still fit before the margin.
On a busy event loop the sleep ends late; a retry started then would get the margin's fallback
time from ``Deadline.for_call`` (meant for a later stage's first call), so the check is made
again when the sleep is over: the source's own failure is the answer, no retry is started."""

from __future__ import annotations

import asyncio
import time

import pytest

from sources import CaseFilter, CaseOrder, Resilience, SourceUnavailable, deadline_scope
from sources._guard import Guarded
from tests.sources.test_guard_coverage import failing_source


async def test_a_backoff_that_ends_inside_the_margin_starts_no_retry() -> None:
    inner, asked = failing_source()
    seen: list[bool] = []
    guarded = Guarded(
        inner,
        timeout_seconds=5,
        # A backoff of 0.5 to 1 s: the check before it passes with 1.5 s left.
        resilience=Resilience(retries=2, retry_initial_seconds=0.5, retry_max_seconds=1.0),
        observe=lambda source, operation, seconds, size, ok: seen.append(ok),
    )
    loop = asyncio.get_running_loop()
    woke: list[float] = []
    with deadline_scope(2.0) as deadline:  # a margin of 0.5 s
        # The event loop busy (blocked) from the middle of the backoff until the middle of the
        # margin's first third: the sleep ends there, late, when a retry would still be given
        # time (``for_call``) out of the margin.
        inside = deadline.at - deadline.margin * 5 / 6

        def busy() -> None:
            time.sleep(max(0.0, inside - loop.time()))  # the fault: a loop busy elsewhere
            woke.append(loop.time())

        loop.call_later(0.25, busy)
        with pytest.raises(SourceUnavailable, match="search_cases is down"):
            await guarded.search_cases(CaseFilter(), CaseOrder(), None, 5)
        assert woke, "the loop was not busy during the backoff"
        # The scenario held: the sleep ended inside the margin, where for_call still gives time.
        assert deadline.at - deadline.margin < woke[0] < deadline.last_moment()
    assert asked == ["search_cases"], "a retry was started inside the margin"
    assert seen == [False]


async def test_a_backoff_that_ends_in_time_retries() -> None:
    """The same source and deadline, the loop not busy: the retries are made."""
    inner, asked = failing_source()
    guarded = Guarded(
        inner,
        timeout_seconds=5,
        resilience=Resilience(retries=1, retry_initial_seconds=0.05, retry_max_seconds=0.1),
    )
    with deadline_scope(2.0), pytest.raises(SourceUnavailable):
        await guarded.search_cases(CaseFilter(), CaseOrder(), None, 5)
    assert asked == ["search_cases", "search_cases"]
