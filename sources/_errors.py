"""Errors a source raises, each carrying the source id and a stable code.

Class tree::

    SourceError                 code
    ├── SourceUnavailable       SOURCE_UNAVAILABLE   cannot connect, refused, gone
    ├── SourceTimeout           SOURCE_TIMEOUT       did not answer in its configured time
    │   └── SourceBusy          SOURCE_TIMEOUT       no free slot before the deadline (ours)
    ├── SourceBadResponse       SOURCE_BAD_RESPONSE  answered, but not in the mapped shape
    │   └── SourceQueryFailed   SOURCE_QUERY_FAILED  refused the statement (a function, table
    │                                                or permission it lacks): not retried
    └── SourceConfigError       SOURCE_MISCONFIGURED the mapping does not fit the backend

Adapters translate driver errors into these at the boundary (``raise ... from exc``); the graph
layer maps the codes to GraphQL errors in one place.
"""

from __future__ import annotations


class SourceError(Exception):
    code = "SOURCE_ERROR"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source '{source}': {message}")
        self.source = source
        self.detail = message


class SourceUnavailable(SourceError):
    code = "SOURCE_UNAVAILABLE"


class CircuitOpen(SourceUnavailable):
    """Refused by the source's open circuit: nothing was sent to the agency. ``retry_after``:
    seconds until the circuit lets its next trial through (a write waiting in the outbox is
    tried again then, without counting this as one of its attempts)."""

    def __init__(self, source: str, message: str, retry_after: float) -> None:
        super().__init__(source, message)
        self.retry_after = retry_after


class SourceTimeout(SourceError):
    code = "SOURCE_TIMEOUT"


class SourceBusy(SourceTimeout):
    """Every slot for the source was taken until the request's deadline: the gateway's own
    congestion, which never counts towards opening the source's circuit."""


class SourceBadResponse(SourceError):
    code = "SOURCE_BAD_RESPONSE"


class SourceQueryFailed(SourceBadResponse):
    """The database is there and refused the statement. It would refuse it again, so it is
    neither retried nor counted against the circuit, unlike an unreachable database. The
    message names the driver's error; ``reason`` is the database's own words (``FUNCTION
    date_part does not exist``) for operators: logs and ``complaint-graph check``, not
    clients, since it may name the agency's tables and columns."""

    code = "SOURCE_QUERY_FAILED"

    def __init__(self, source: str, message: str, reason: str = "") -> None:
        super().__init__(source, message)
        self.reason = reason


class WritesUnsupported(SourceError):
    """The source cannot take this write: its kind does not write (no
    :class:`~sources._abilities.WritesCases`) or its configuration has no ``writes:`` for it."""


class SourceConfigError(SourceError):
    code = "SOURCE_MISCONFIGURED"
