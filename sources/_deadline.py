"""The deadline of the request a source call works for, in a context variable.

The gateway sets it when a request (HTTP, WebSocket, SSE, an export, one subscription event)
starts; everything running on the request's behalf, data loader batches included (tasks inherit
their creator's context), sees it. The guard around each source gives a call what is left of it
minus a margin for merging the sources' answers, and makes every attempt and retry fit inside.
So a source that cannot answer in time fails its own part of the answer, as SOURCE_TIMEOUT,
before the request's deadline, instead of the whole request failing at the deadline.

Work without a deadline (the event pollers) keeps the source's own per-attempt timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

MARGIN_FRACTION = 0.25
"""Of the whole request's time, kept back for later stages and answering: ..."""
MARGIN_MIN_SECONDS = 0.2
MARGIN_MAX_SECONDS = 2.0
"""... but at least 0.2 s and never more than 2 s (1.25 s of a 5 s request, 2 s of a 30 s one).
The first third of it is for calls started late (a count after a page that waited for a hung
source), the other two thirds for abandoning calls, merging and encoding the answer: on a
loaded machine (the chaos suite on two shared cores) the last call's clean-up and the answer
took more than the half they had of a 3 s request's 0.6 s, and the request reached its hard
stop with the other agencies' data in hand."""


@dataclass(frozen=True)
class Deadline:
    at: float
    """``loop.time()`` by which the answer must be on its way."""
    seconds: float
    """The request's whole time, for messages."""
    margin: float
    timed_out: set[str] = field(default_factory=set)
    """Sources that already ran out of this request's time: later calls to them (the count
    after the page) fail at once instead of waiting again."""

    def left(self) -> float:
        """Seconds the sources still have: the time left minus the merging margin."""
        return self.at - self.margin - asyncio.get_running_loop().time()

    def for_call(self) -> float:
        """Seconds a call starting now may take: :meth:`left`, or once that is spent (a later
        stage: the count after a page that waited for a hung source) a third of the margin: a
        healthy source answers in milliseconds, and two thirds are still left to send the
        answer. Retries never use the margin."""
        now = asyncio.get_running_loop().time()
        left = self.at - self.margin - now
        return left if left > 0 else self.last_moment() - now

    def last_moment(self) -> float:
        """When every source call must have ended, its clean-up included."""
        return self.at - self.margin * 2 / 3


_DEADLINE: ContextVar[Deadline | None] = ContextVar("complaint_graph_deadline", default=None)


def start_deadline(seconds: float) -> Deadline:
    """Set the current context's deadline ``seconds`` from now (no reset: for a context that
    ends with the work, such as one subscription event of a subscription's own task)."""
    margin = min(max(seconds * MARGIN_FRACTION, MARGIN_MIN_SECONDS), MARGIN_MAX_SECONDS)
    deadline = Deadline(asyncio.get_running_loop().time() + seconds, seconds, margin)
    _DEADLINE.set(deadline)
    return deadline


@contextlib.contextmanager
def deadline_scope(seconds: float) -> Iterator[Deadline]:
    """A deadline ``seconds`` from now for what runs inside, the outer one restored after."""
    token = _DEADLINE.set(None)
    try:
        yield start_deadline(seconds)
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    return _DEADLINE.get()


_CALLER: ContextVar[str | None] = ContextVar("complaint_graph_caller", default=None)


def set_caller(caller: str | None) -> None:
    """Who the current request works for (a key id, a token's subject, "anonymous"): the
    sources' bulkheads share their slots out by it. Background work has none."""
    _CALLER.set(caller)


def current_caller() -> str | None:
    return _CALLER.get()
