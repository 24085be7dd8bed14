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

from resolvers.context import GraphInfo
from resolvers.plan import fields_read as plan_fields_read
from resolvers.plan import known_plan


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
