"""Subscriptions resolved once per event for every subscriber that would get the same answer.

Subscribers whose operations share the document, operation name, variables, request
``extensions`` and access scope (roles, agency, scopes, whether they authenticated: everything
the answer depends on) form a group. The group runs the operation once, in a context of its
own, and hands each result to every member: 10,000 subscribers on a few documents cost a few
resolutions per event, as Hasura multiplexes its live queries.

Each member has a bounded queue. A member that stops reading is cut off alone, with
``SUBSCRIBER_TOO_SLOW`` as before; the group and its other members go on. A member joins when
its stream is first read and is handed every result from then on, so it may also get an event
published just before it joined that the group was still resolving. The group's work runs in
a task of its own started from the first member's, whose request id (logs) and caller (fair
shares of the sources) it keeps.

Personal data: while a group resolves, its audit recorder only notes what would be written
(every reveal, every denial) and for which field (resolvers/audited_field.py). Before a result
reaches a member, those entries are written with that member's own principal and purpose,
through that member's own audit log, so the log holds exactly the entries per-subscriber
execution wrote. A member some of whose entries cannot be written (the audit store is
unavailable) gets what it would get resolving alone: the event, with each field whose entry
failed null (``complainant``, say) and that field's ``AUDIT_UNAVAILABLE`` error; its stream
goes on. (An entry written for no known field: the member is sent the error instead of the
event, and its stream ends; it resumes with ``after``, on its own.)

Run per subscriber, as before: a resume (``after`` with a value: the replay is the subscriber's
own), a caller without a role or whose credentials were refused (its error names it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_operation_ast,
    parse,
)
from strawberry.types import ExecutionResult

from resolvers.access import AccessError, Principal
from resolvers.audited_field import AUDITED_FIELD, AuditedField
from resolvers.context import Context
from resolvers.errors import with_code
from sources._changes import SubscriberTooSlow

log = logging.getLogger("complaint_graph.subscriptions")

Result = Any
"""What a strawberry stream yields: an ``ExecutionResult`` (or its ``PreExecutionError``)."""

StartStream = Callable[[Context], Awaitable[AsyncGenerator[Result, None]]]
"""Starts the operation's stream in a given context (the schema's own ``stream``)."""


@dataclass(frozen=True, slots=True)
class GroupKey:
    """Everything a subscription's answers depend on besides the events themselves."""

    query: str
    operation_name: str | None
    variables: bytes
    extensions: bytes
    roles: frozenset[str]
    agency: str | None
    scopes: frozenset[str]
    authenticated: bool
    match_key: str | None


@dataclass(frozen=True, slots=True)
class _Entry:
    """One audit entry a group's resolution would have written: written per member."""

    action: str  # "reveal" or "deny"
    source: str
    local_id: str
    fields: tuple[str, ...] = ()
    reason: str = ""
    at: AuditedField | None = None
    """The field it was written for, when the resolver said (resolvers/audited_field.py)."""


class _AuditRecorder:
    """The group context's audit log: notes entries, writes nothing (members write them)."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []

    async def denied(self, principal: Principal, source: str, local_id: str, reason: str) -> None:
        at = AUDITED_FIELD.get()
        self.entries.append(_Entry("deny", source, local_id, reason=reason, at=at))

    async def revealed(
        self, principal: Principal, source: str, local_id: str, fields: Sequence[str]
    ) -> None:
        at = AUDITED_FIELD.get()
        self.entries.append(_Entry("reveal", source, local_id, fields=tuple(fields), at=at))

    def take(self) -> list[_Entry]:
        entries, self.entries = self.entries, []
        return entries


_END: Any = object()


@dataclass(eq=False)
class Member:
    """One subscriber of a group: the results handed to it and not yet sent."""

    context: Context
    queue: asyncio.Queue[Result]
    received: int = 0
    cut_off: bool = False
    final: Result | None = None
    """Sent after what it has queued, before its stream ends: why it was cut off."""

    def offer(self, result: Result) -> bool:
        """Queue ``result``; False when the member is too far behind (then it is cut off)."""
        if self.cut_off:
            return True
        try:
            self.queue.put_nowait(result)
        except asyncio.QueueFull:
            return False
        return True

    def end_with(self, final: Result | None) -> None:
        """What it has not read is dropped: ``final`` (an error) is next, then the end."""
        self.cut_off = True
        self.final = final
        while not self.queue.empty():  # emptied in place: its reader may be waiting on it
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    async def write_audit(self, entries: list[_Entry]) -> list[tuple[_Entry, AccessError]]:
        """The group's entries, as this member's: awaited together (one batch per member).
        Each is written or not on its own, as each field's are when resolving alone: the
        ones the audit log refused, with why."""
        access = self.context.case_access
        audit, principal = access.audit, access.principal
        written = await asyncio.gather(
            *(
                audit.revealed(principal, e.source, e.local_id, e.fields)
                if e.action == "reveal"
                else audit.denied(principal, e.source, e.local_id, e.reason)
                for e in entries
            ),
            return_exceptions=True,
        )
        refused: list[tuple[_Entry, AccessError]] = []
        for entry, outcome in zip(entries, written, strict=True):
            if isinstance(outcome, AccessError):
                refused.append((entry, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
        return refused


class _Group:
    """One shared resolution and the members it answers."""

    def __init__(self, registry: SubscriptionGroups, key: GroupKey, context: Context) -> None:
        self.registry = registry
        self.key = key
        self.context = context
        self.recorder = _AuditRecorder()
        context.authenticate(
            context.case_access.principal, self.recorder, context.case_access.match_key
        )
        self.members: set[Member] = set()
        self.results = 0
        self.task: asyncio.Task[None] | None = None

    def start(self, start_stream: StartStream) -> None:
        self.task = asyncio.create_task(self._pump(start_stream), name="subscription-group")
        self.task.add_done_callback(_report_failure)

    async def _pump(self, start_stream: StartStream) -> None:
        SHARED_BY.set(self.member_count)  # the broker counts this stream as its members
        try:
            results = await start_stream(self.context)
            async with contextlib.aclosing(results):
                async for result in results:
                    self.results += 1
                    self.registry.resolutions += 1
                    await self._hand_out(result, self.recorder.take())
        finally:
            self.registry.forget(self)
            for member in self.members:
                if not member.offer(_END):
                    member.end_with(None)
            self.context.release()

    async def _hand_out(self, result: Result, entries: list[_Entry]) -> None:
        members = [m for m in self.members if not m.cut_off]
        results = [result] * len(members)
        if entries:
            answered = await asyncio.gather(
                *(_audited(m, entries, result, self.key) for m in members)
            )
            members = [m for m, own in zip(members, answered, strict=True) if own is not None]
            results = [own for own in answered if own is not None]
        for member, own in zip(members, results, strict=True):
            if member.offer(own):
                self.registry.deliveries += 1
            else:
                self.registry.cut_off += 1
                member.end_with(_error_result(_too_slow(self.registry.queue_size)))

    def member_count(self) -> int:
        return len(self.members)

    async def stop(self) -> None:
        """Its last member left: the shared stream (and its broker subscription) ends."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task})  # a cancellation of the caller still propagates


async def _audited(
    member: Member, entries: list[_Entry], result: Result, key: GroupKey
) -> Result | None:
    """What the member is sent once its entries are written: the result, or (where some
    could not be) the result as resolving alone would have answered it. None: the member was
    sent an error instead, and its stream ends."""
    refused = await member.write_audit(entries)
    if not refused:
        return result
    if any(entry.at is None for entry, _ in refused) or getattr(result, "data", None) is None:
        member.end_with(_error_result(with_code(refused[0][1])))
        return None
    return _without(result, refused, key)


def _without(result: Result, refused: list[tuple[_Entry, AccessError]], key: GroupKey) -> Result:
    """``result`` with each field whose entry was refused null and erring, as in a resolution
    of the member's own: one error per field, none under a field already null."""
    failed: dict[tuple[str | int, ...], tuple[tuple[str | int, ...], AccessError]] = {}
    for entry, error in refused:
        assert entry.at is not None
        at = tuple(entry.at.error_at.as_list())
        failed.setdefault(at, (tuple(entry.at.null_at.as_list()), error))
    data = result.data
    errors: list[GraphQLError] = []
    for at, (null_at, error) in failed.items():
        if any(len(other) < len(at) and at[: len(other)] == other for other in failed):
            continue  # under a field that failed itself: alone, it was never resolved
        data = _null(data, null_at)
        nodes = _field_nodes(key.query, key.operation_name, at)
        errors.append(
            GraphQLError(
                str(error),
                nodes=nodes,
                path=list(at),
                original_error=error,
                extensions={"code": error.code},
            )
        )
    return ExecutionResult(
        data=data, errors=[*(result.errors or ()), *errors], extensions=result.extensions
    )


def _null(data: Any, path: tuple[str | int, ...]) -> Any:
    """A copy of ``data`` with the value at ``path`` null, copying only what leads there
    (the group's result is shared by the other members)."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and isinstance(head, str) and head in data:
        return {**data, head: _null(data[head], rest)}
    if isinstance(data, list) and isinstance(head, int) and 0 <= head < len(data):
        copied = list(data)
        copied[head] = _null(data[head], rest)
        return copied
    return data  # already null on the way: nothing to hide


def _field_nodes(
    query: str, operation_name: str | None, path: tuple[str | int, ...]
) -> list[FieldNode] | None:
    """The document's field nodes at a response path (for the error's ``locations``)."""
    document = _parsed(query)
    if document is None:
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    sets: list[SelectionSetNode] = [operation.selection_set]
    nodes: list[FieldNode] = []
    for key in path:
        if isinstance(key, int):
            continue
        nodes = [f for s in sets for f in _fields(s, fragments) if _response_key(f) == key]
        sets = [f.selection_set for f in nodes if f.selection_set is not None]
    return nodes or None


def _fields(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _response_key(field: FieldNode) -> str:
    return field.alias.value if field.alias is not None else field.name.value


@lru_cache(maxsize=512)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLError:
        return None


SHARED_BY: ContextVar[Callable[[], int] | None] = ContextVar("shared_by", default=None)
"""Set in a group's task: how many subscribers the stream subscribing from it stands for."""


class SubscriptionGroups:
    """The groups of one gateway's event stream, and the counts operators read in /metrics."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._groups: dict[GroupKey, _Group] = {}
        self.resolutions = 0
        """Results a group resolved (one per event it saw, whatever its number of members)."""
        self.alone_resolutions = 0
        """Results of subscriptions that run on their own (one per event per subscriber)."""
        self.deliveries = 0
        """Results handed to members."""
        self.cut_off = 0
        """Members cut off for falling ``queue_size`` results behind."""

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def members(self) -> list[Member]:
        """Every group's members, for tests and operators' debugging."""
        return [member for group in self._groups.values() for member in group.members]

    def forget(self, group: _Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]

    async def alone(
        self, context: Context, start_stream: StartStream
    ) -> AsyncGenerator[Result, None]:
        """A subscription that shares with no one, its results counted all the same."""
        results = await start_stream(context)
        async with contextlib.aclosing(results):
            async for result in results:
                self.alone_resolutions += 1
                yield result

    async def join(
        self, key: GroupKey, context: Context, start_stream: StartStream
    ) -> AsyncGenerator[Result, None]:
        """The member's stream of results. It joins its group (made if need be) when first
        read, as a subscription registers when its stream first runs."""
        retried = False
        while True:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(self, key, _shared_context(context))
                group.start(start_stream)
            member = Member(context, asyncio.Queue(maxsize=self.queue_size))
            group.members.add(member)
            joined_at = group.results
            try:
                while (result := await member.queue.get()) is not _END:
                    member.received += 1
                    yield result
                if member.final is not None:
                    member.received += 1
                    yield member.final
            finally:
                group.members.discard(member)
                if not group.members:
                    self.forget(group)
                    await group.stop()
            if member.received or group.results != joined_at or retried:
                return
            # It joined a group that was ending (its last result already handed out): once,
            # it starts a group of its own, so it still gets that result (an error, say).
            retried = True


def _shared_context(member: Context) -> Context:
    """A context like the member's, for the group: the same sources, limits and principal;
    the group gives it its audit recorder."""
    access = member.case_access
    context = Context.for_request(
        member.federation,
        member.directory,
        member.limits,
        member.events,
        access.principal,
        member.clock,
    )
    context.writes = member.writes
    return context


def shared_stream(
    context: object,
    query: str | None,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    extensions: dict[str, Any] | None,
    start_stream: StartStream,
) -> AsyncGenerator[Result, None] | None:
    """The subscription's results through its group (or alone, counted), or None when the
    context's event stream keeps no groups."""
    if not isinstance(context, Context) or not isinstance(context.events, SharesResolutions):
        return None
    groups = context.events.subscription_groups
    key = group_key(context, query, variables, operation_name, extensions)
    if key is None:
        return groups.alone(context, start_stream)
    return groups.join(key, context, start_stream)


def group_key(
    context: Context,
    query: str | None,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    extensions: dict[str, Any] | None,
) -> GroupKey | None:
    """The group a subscription belongs to, or None when it runs on its own."""
    access = context.access
    if query is None or access is None or context.auth_error is not None:
        return None
    principal = access.principal
    if access.refusal is not None or not principal.roles:
        return None
    if _resumes(query, operation_name, variables):
        return None
    try:
        encoded_variables = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        encoded_extensions = orjson.dumps(extensions or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return GroupKey(
        query,
        operation_name,
        encoded_variables,
        encoded_extensions,
        frozenset(principal.roles),
        principal.agency,
        principal.scopes,
        principal.authenticated,
        access.match_key,
    )


def _resumes(query: str, operation_name: str | None, variables: dict[str, Any] | None) -> bool:
    """Whether a root field is given an ``after`` value (a literal, or a variable set)."""
    after = _after_arguments(query, operation_name)
    if after is None:
        return True  # does not parse: strawberry answers it alone
    given = variables or {}
    return any(name is None or given.get(name) is not None for name in after)


@lru_cache(maxsize=512)
def _after_arguments(query: str, operation_name: str | None) -> tuple[str | None, ...] | None:
    """Per root field's ``after`` argument: the variable it names, or None for a literal
    value; a literal null is no resume. None when the document does not parse."""
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return None
    if not isinstance(operation, OperationDefinitionNode):
        return None
    found: list[str | None] = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None  # fragments at the root: rare enough to run alone
        for argument in selection.arguments or ():
            if argument.name.value != "after" or isinstance(argument.value, NullValueNode):
                continue
            value = argument.value
            found.append(value.name.value if isinstance(value, VariableNode) else None)
    return tuple(found)


@runtime_checkable
class SharesResolutions(Protocol):
    """An event stream whose subscribers may share resolutions (the gateway's broker)."""

    @property
    def subscription_groups(self) -> SubscriptionGroups: ...


def _too_slow(queue_size: int) -> GraphQLError:
    return with_code(
        SubscriberTooSlow(
            f"subscriber fell more than {queue_size} events behind and was cut off; "
            "reconnect with after: the id of the last event received"
        )
    )


def _error_result(error: GraphQLError) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[error])


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a shared subscription failed", exc_info=task.exception())
