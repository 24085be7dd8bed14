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
    can bring them in its own round trip (``Loaders.case``). None when the operation has no
    plan, or the selection asks no such field."""
    plan = known_plan(info.operation, info.variable_values)
    if plan is None or plan.root is None:
        return _NONE
    step = _object_at(plan.root, info.path, type_name)
    if step is None:
        return _NONE
    read: set[str] = set()
    for field in step.fields:
        if field.declared_reads is not None:
            read.update(field.declared_reads & CARRIED)
    return frozenset(read)


def _object_at(root: ObjectStep, path: Path, type_name: str) -> ObjectStep | None:
    """The plan's sub-selection on the ``type_name`` object the field at ``path`` answers:
    down from the root by the path's response keys (list indexes skipped), through an
    interface or union by the type the path names below it."""
    entries: list[Path] = []
    at: Path | None = path
    while at is not None:
        if at.key.__class__ is str:
            entries.append(at)
        at = at.prev
    entries.reverse()
    step: ObjectStep | None = root
    for index, entry in enumerate(entries):
        assert step is not None
        field = next((found for found in step.fields if found.key == entry.key), None)
        if field is None:
            return None
        below = entries[index + 1].typename if index + 1 < len(entries) else type_name
        step = field.possible.get(str(below)) if field.possible is not None else field.child
        if step is None or step.type.name != below:
            return None
    return step
