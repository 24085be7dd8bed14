"""One deadline for a whole operation, with every task the operation started cancelled with it.

Data loaders dispatch their batches in tasks of their own (``aiodataloader`` uses
``ensure_future``), which cancelling the request's task would leave running against the sources.
So while an operation runs, a task factory on the event loop records each task created on its
behalf (tasks inherit the context variables of whoever created them, which is how they are
recognised); when the deadline passes, those tasks are cancelled too and awaited, so HTTP
requests and SQL statements to sources are abandoned and their connections released, and the
gateway answers with an error naming the limit.

The same deadline is set for the sources (:func:`sources.deadline_scope`): each source call
gets what is left of it minus a margin, so a source that cannot answer in time fails its own
part, as SOURCE_TIMEOUT, and the rest of the answer is sent before the deadline. The hard stop
here is the backstop for work that is not a source call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, TypeVar

from sources import deadline_scope

log = logging.getLogger("complaint_graph.limits")

T = TypeVar("T")

_OPERATION_TASKS: ContextVar[set[asyncio.Task[Any]] | None] = ContextVar(
    "complaint_graph_operation_tasks", default=None
)
_MARK = "_complaint_graph_scoped"


class OperationTimeout(Exception):
    """The operation ran past its deadline; its tasks have been cancelled."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"operation exceeded {seconds} s")
        self.seconds = seconds


def _install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    previous = loop.get_task_factory()
    if getattr(previous, _MARK, False):
        return

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        task = (
            previous(loop, coro, **kwargs)
            if previous is not None
            else asyncio.Task(coro, loop=loop, **kwargs)
        )
        tasks = _OPERATION_TASKS.get()
        if tasks is not None and isinstance(task, asyncio.Task):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return task

    setattr(factory, _MARK, True)
    loop.set_task_factory(factory)  # type: ignore[arg-type]


def _cancel(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    """Cancel ``task``; one that has not taken its first step yet, just after it.

    Cancelled before its first step, a task's coroutine is closed without running. When that
    coroutine only wraps another, as anyio's task groups run each child (``TaskHandle``'s
    wrapper awaiting the child's coroutine: httpx's connection attempts, anyio ``try_connect``),
    the child's coroutine is left never awaited, and Python warns "coroutine ... was never
    awaited" when it is collected (an error under the tests' ``filterwarnings``). anyio itself
    only cancels tasks that have started. The first step is already queued (``call_soon`` at
    the task's creation), so a cancellation queued now is delivered right after it."""
    coro = task.get_coro()
    if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        loop.call_soon(task.cancel)
    else:
        task.cancel()


async def run_with_deadline(seconds: float, operation: Callable[[], Awaitable[T]]) -> T:
    """``operation()``, or :class:`OperationTimeout` once ``seconds`` have passed, after every
    task it had started by then has been cancelled and has finished.

    Tasks started while the cancellation unwinds are left to run: they are the clean-up (asyncpg
    sends its cancel request to the server from one; cancelling it would leave the statement
    running in the database).
    """
    loop = asyncio.get_running_loop()
    _install_task_factory(loop)
    current = asyncio.current_task()
    assert current is not None
    tasks: set[asyncio.Task[Any]] = set()
    expired: list[asyncio.Task[Any]] = []
    fired = False
    cancelling = current.cancelling()

    def expire() -> None:
        nonlocal fired
        fired = True
        expired.extend(task for task in tasks if not task.done())
        for task in expired:
            _cancel(loop, task)
        current.cancel()

    token = _OPERATION_TASKS.set(tasks)
    deadline = loop.call_later(seconds, expire)
    try:
        with deadline_scope(seconds):  # what each source call may take (sources/_deadline.py)
            return await operation()
    except asyncio.CancelledError:
        if not fired or current.uncancel() > cancelling:
            raise  # cancelled from outside (shutdown, a client gone): not ours to swallow
        if expired:
            _, stuck = await asyncio.wait(expired, timeout=5)
            if stuck:
                log.warning("%d tasks of a timed-out operation ignored cancellation", len(stuck))
        raise OperationTimeout(seconds) from None
    finally:
        deadline.cancel()
        _OPERATION_TASKS.reset(token)
