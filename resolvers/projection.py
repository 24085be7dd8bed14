"""Which record fields a page of cases will be read for: the reads its selected fields declare.

A dashboard's page asks a few fields of each case; an SQL source that knows which can leave
the other columns unread. Each field of ``Case`` declares what it reads of the case's record
(``strawberry.field(metadata=reads(...))``, :mod:`resolvers.plan`); the operation's plan,
compiled once per document and ``@include``/``@skip`` values, unites them for each ``cases``
field. A selected ``Case`` field that declares nothing reads the whole record (a new field
costs speed, never correctness); the projection tests ask each field of every agency's cases
both ways and compare.
"""

from __future__ import annotations

from graphql.pyutils import Path

from resolvers.context import GraphInfo
from resolvers.plan import ObjectStep, known_plan
from resolvers.plan import fields_read as plan_fields_read
from sources._model import CARRIED

_NONE: frozenset[str] = frozenset()


def fields_read(info: GraphInfo) -> frozenset[str] | None:
    """The ``CaseRecord`` fields that the selection of this ``cases`` field reads; None for
    the whole record (also when the operation has no plan: an executor that compiles none).

    ``"timeline"`` among them lets a source carry each case's timeline in the page's own
    round trip (``CaseRecord.timeline``); the benchmark's N+1 baseline
    (``limits.dataloader_batching: false``) takes it out again in ``resolvers/query.py``."""
    plan = known_plan(info.operation, info.variable_values)
    if plan is None:
        return None
    return plan_fields_read(plan, str(info.path.key))


def carried_reads(info: GraphInfo, type_name: str = "Case") -> frozenset[str]:
    """The relations a record may carry (``sources._model.CARRIED``: timeline, referrals)
    that the selection on the ``type_name`` object this field answers reads (a ``case``,
    ``node``, a referral's ``counterpart``, each of ``relatedCases``): a case loaded for it
    can bring them in its own round trip (``Loaders.case``). None of them when the
    operation has no plan, or the selection asks no such field."""
    plan = known_plan(info.operation, info.variable_values)
    if plan is None or plan.root is None:
        return _NONE
    keys: list[tuple[str, str | None]] = []  # the path's response keys, list indexes left out
    at: Path | None = info.path
    while at is not None:
        if isinstance(at.key, str):
            keys.append((at.key, at.typename))
        at = at.prev
    place = (id(plan), type_name, tuple(keys))
    known = _carried_at.get(place)
    if known is not None and known[0] is plan:
        return known[1]
    keys.reverse()
    step = _object_at(plan.root, keys, type_name)
    read: set[str] = set()
    for field in step.fields if step is not None else ():
        if field.declared_reads is not None:
            read.update(field.declared_reads & CARRIED)
    found = frozenset(read) if read else _NONE
    if len(_carried_at) >= _CARRIED_AT_LIMIT:
        _carried_at.clear()
    _carried_at[place] = (plan, found)  # the plan held: its id is no other's meanwhile
    return found


_Place = tuple[int, str, tuple[tuple[str, str | None], ...]]
_CARRIED_AT_LIMIT = 1024
_carried_at: dict[_Place, tuple[object, frozenset[str]]] = {}
""":func:`carried_reads` by plan, type and path (without list indexes): a referral's
``counterpart`` asks it for each referral of a list, with the same answer."""


def _object_at(
    root: ObjectStep, keys: list[tuple[str, str | None]], type_name: str
) -> ObjectStep | None:
    """The plan's sub-selection on the ``type_name`` object the field at the path ``keys``
    (response key, parent type name) answers: down from the root by the response keys,
    through an interface or union by the type the path names below it."""
    step: ObjectStep | None = root
    for index, (key, _) in enumerate(keys):
        assert step is not None
        field = next((found for found in step.fields if found.key == key), None)
        if field is None:
            return None
        below = keys[index + 1][1] if index + 1 < len(keys) else type_name
        step = field.possible.get(str(below)) if field.possible is not None else field.child
        if step is None or step.type.name != below:
            return None
    return step
