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

from resolvers import loaders
from resolvers.context import GraphInfo
from resolvers.plan import fields_read as plan_fields_read
from resolvers.plan import known_plan
from sources._model import TIMELINE


def fields_read(info: GraphInfo) -> frozenset[str] | None:
    """The ``CaseRecord`` fields that the selection of this ``cases`` field reads; None for
    the whole record (also when the operation has no plan: an executor that compiles none).

    ``"timeline"`` among them lets a source carry each case's timeline in the page's own
    round trip (``CaseRecord.timeline``); not in the N+1 baseline of the benchmark
    (``COMPLAINT_GRAPH_DATALOADERS=off``), where every timeline is its own round trip."""
    plan = known_plan(info.operation, info.variable_values)
    if plan is None:
        return None
    found = plan_fields_read(plan, str(info.path.key))
    if found is not None and not loaders.BATCHING:
        return found - _CARRIED
    return found


_CARRIED = frozenset({TIMELINE})
"""What a page's records may carry besides their fields (``CaseRecord.timeline``)."""
