"""The hard stop (resolvers/deadline.py) cancels an operation's tasks without leaving coroutines
never awaited (issue 19).

anyio's task groups run each child as a wrapper coroutine awaiting the child's own: httpx's
connection attempts are such children (anyio ``connect_tcp`` starts a ``try_connect`` per
address). A task cancelled before its first step has its coroutine closed unrun, so the child's
coroutine was never awaited and Python warned "coroutine 'try_connect' was never awaited" when
it was collected: an error under ``filterwarnings = error``, failing whichever test was running.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import warnings
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

from resolvers.deadline import OperationTimeout, run_with_deadline
from samples.serving import ThreadedServer


def never_awaited(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "was never awaited" in str(w.message)]


async def test_a_task_group_child_made_just_before_the_hard_stop_is_cancelled_cleanly() -> None:
    cancelled: list[str] = []

    async def child() -> None:
        try:
            await anyio.sleep(10)
        except BaseException:
            cancelled.append("child")
            raise

    async def operation() -> None:
        # The fault: the event loop busy elsewhere past the 0.1 s deadline. This task's step
        # after it is queued before the deadline's timer is: in that step the child is made (its
        # first step queued), then the deadline fires before the child has run.
        asyncio.get_running_loop().call_soon(time.sleep, 0.15)
        await asyncio.sleep(0)  # the busy callback, then this task
        await asyncio.sleep(0)  # this task again, ahead of the deadline's timer
        async with anyio.create_task_group() as group:
            group.start_soon(child)
            await anyio.sleep(10)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OperationTimeout):
            await run_with_deadline(0.1, operation)
        gc.collect()
    assert never_awaited(caught) == []
    assert cancelled == ["child"], "the child was not started and then cancelled"


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A loopback agency that answers at once."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def agency() -> Iterator[ThreadedServer]:
    server = ThreadedServer(answer)
    server.start()
    yield server
    server.stop()


async def test_requests_cut_off_while_connecting_leave_no_coroutine_unawaited(
    agency: ThreadedServer,
) -> None:
    """Real httpx connections to a loopback server, each request's deadline falling at a
    different point of it: before the fix, about one in four left ``try_connect`` unawaited."""
    rng = random.Random(19)
    stopped = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(200):
            async with httpx.AsyncClient(base_url=agency.url) as client:  # a fresh connection
                try:
                    await run_with_deadline(rng.uniform(0.0, 0.003), partial(client.get, "/"))
                except OperationTimeout:
                    stopped += 1
        gc.collect()
    assert stopped > 0
    assert never_awaited(caught) == []
