"""Which record fields a page of cases will be read for: the document's selection, mapped
through each ``Case`` field's needs.

A dashboard's page asks a few fields of each case; an SQL source that knows which can leave
the other columns unread (three of four time columns, the costliest values to decode, and
most text: bench/README.md). :func:`fields_read` walks the selection under ``cases`` (edges,
node, fragments at any level) and unites the record fields each selected ``Case`` field reads
(``RECORD_FIELDS_READ``, next to the fields in :mod:`resolvers.case`). Anything it cannot
account for reads the whole record: a ``Case`` field missing from that table (a new field
costs speed, never correctness), a field of the connection or edge it does not know. The
directives ``@skip`` and ``@include`` are not evaluated: a field they leave out is still read.
Whether each entry of the table is enough is tested field by field against whole records
(tests/resolvers/test_projection.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from graphql import OperationDefinitionNode
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from resolvers import loaders
from resolvers.case import RECORD_FIELDS_READ
from resolvers.context import GraphInfo
from sources._model import TIMELINE

_CONNECTION_FIELDS = frozenset({"edges", "pageInfo", "totalCount", "__typename"})
_EDGE_FIELDS = frozenset({"node", "cursor", "__typename"})
"""Fields of ``CaseConnection`` and ``CaseEdge`` that read no case field but the order's,
which every record holds (``Source.search_cases``)."""


class _WholeRecord(Exception):
    """A selection the table cannot account for: read the whole record."""


_known: dict[tuple[int, str | int], tuple[OperationDefinitionNode, frozenset[str] | None]] = {}
"""Answers by operation and response key: a document is parsed once per text
(:mod:`resolvers.documents`), so its operation node recurs, and the walk (strawberry's
``selected_fields``, which also converts every argument) was 1% of a dashboard page's
instructions. The answer holds its node, so the id cannot be another's meanwhile."""
_KNOWN_LIMIT = 256


def fields_read(info: GraphInfo) -> frozenset[str] | None:
    """The ``CaseRecord`` fields that the selection of this ``cases`` field reads; None for
    the whole record. (It depends on the document alone: directives are not evaluated.)

    ``"timeline"`` among them lets a source carry each case's timeline in the page's own
    round trip (``CaseRecord.timeline``); not in the N+1 baseline of the benchmark
    (``COMPLAINT_GRAPH_DATALOADERS=off``), where every timeline is its own round trip."""
    operation, key = info.operation, info.path.key
    known = _known.get((id(operation), key))
    if known is not None and known[0] is operation:
        found = known[1]
    else:
        found = _walk(info)
        if len(_known) >= _KNOWN_LIMIT:
            _known.clear()
        _known[(id(operation), key)] = (operation, found)
    if found is not None and not loaders.BATCHING:
        return found - _CARRIED
    return found


_CARRIED = frozenset({TIMELINE})
"""What a page's records may carry besides their fields (``CaseRecord.timeline``)."""


def _walk(info: GraphInfo) -> frozenset[str] | None:
    try:
        needed: set[str] = set()
        for connection in _fields(info.selected_fields):
            for edges in _fields(connection.selections, _CONNECTION_FIELDS, "edges"):
                for node in _fields(edges.selections, _EDGE_FIELDS, "node"):
                    _case_fields(node.selections, RECORD_FIELDS_READ, needed)
        return frozenset(needed)
    except _WholeRecord:
        return None


def _fields(
    selections: Iterable[Selection],
    known: frozenset[str] | None = None,
    wanted: str | None = None,
) -> Iterable[SelectedField]:
    """The fields among ``selections`` (through fragments) named ``wanted`` (all when
    None); a field outside ``known`` reads the whole record."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if known is not None and selection.name not in known:
                raise _WholeRecord
            if wanted is None or selection.name == wanted:
                yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections, known, wanted)
        else:  # pragma: no cover - strawberry has no other kind
            raise _WholeRecord


def _case_fields(
    selections: Iterable[Selection],
    table: Mapping[str, frozenset[str]],
    needed: set[str],
) -> None:
    for field in _fields(selections):
        reads = table.get(field.name)
        if reads is None:
            raise _WholeRecord
        needed.update(reads)
