"""``kind: graphql``: an agency that already has a GraphQL API (another complaint-graph, a
Hasura or PostGraphile in front of its database), described in configuration.

The operator's documents say how to page (Relay connections or offset), how to read several
cases in one request (an id-list argument, or the gateway repeating a one-case field under an
alias per id) and where each pushed-down condition goes; every other condition, the caller's
row-level access and the keyset cut are applied by the core (sources/_pushdown.py) on what the
list query returns, as for ``kind: rest``.
One pooled httpx client per source; every HTTP request it sends is counted
(``complaint_graph_source_http_requests_total``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from sources._abilities import Listed
from sources._errors import SourceBadResponse, SourceError, SourceUnavailable
from sources._http import AgencyHttp, HttpSource
from sources._interface import AgencyInfo, Capabilities, Problem
from sources._model import TIMELINE, CaseRecord, TimelineEntry
from sources._pushdown import ListedSearch, count_listed, exact, scan_for_references
from sources._query import CaseFilter, CaseOrder, Position, SortField, received_window
from sources._settings import SourceSettings
from sources.graphql._documents import ALIAS, aliased
from sources.graphql._settings import ByIds, GraphQLSettings
from sources.rest._records import RecordMapper, dig, items_at

__all__ = ["GraphQLSettings", "GraphQLSource"]

_PUSHABLE = {
    # CaseFilter.conditions() name: (list.filters key, the name clients see in pushedDownFilters)
    "statuses": ("status", "status"),
    "categories": ("category", "category"),
    "province_codes": ("province_code", "provinceCode"),
    "district_codes": ("district_code", "districtCode"),
    "received_from": ("received_from", "receivedFrom"),
    "received_before": ("received_before", "receivedBefore"),
    "text": ("text", "text"),
}


class GraphQLSource(ListedSearch, HttpSource):
    settings_model: type[SourceSettings] = GraphQLSettings
    kind = "graphql"
    records: RecordMapper

    def __init__(self, settings: SourceSettings) -> None:
        assert isinstance(settings, GraphQLSettings)
        self.settings = settings
        self.id = settings.id
        self.agency: AgencyInfo = settings.agency.info()
        filters = settings.list.filters
        self.pushed = frozenset(
            name for name, (key, _) in _PUSHABLE.items() if getattr(filters, key) is not None
        )
        self.records = RecordMapper(
            settings.id, settings.fields, settings.vocabulary, settings.timezone, settings.sla
        )
        self._http = AgencyHttp(settings)
        # A statistics scan reads through search_cases, which reads at most max_pages pages.
        listing = settings.list
        self.stats_scan_limit = min(
            settings.stats_scan_limit, listing.max_pages * listing.pagination.page_size - 1
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            pushed_down_filters=frozenset(_PUSHABLE[name][1] for name in self.pushed),
            watches_changes=self.settings.list.filters.updated_from is not None,
            applies_access=False,  # an API knows nothing of our callers: the core judges
        )

    # -- HTTP ------------------------------------------------------------------------------

    async def _post(self, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
        """The ``data`` of one GraphQL request; ``key`` names the configured document in
        errors. An answer with GraphQL errors is an error: a partial answer would drop cases
        silently."""
        response = await self._http.send(
            "POST", self.settings.url, json={"query": query, "variables": variables}
        )
        status = response.status_code
        if status >= 500 or status == 429:
            raise SourceUnavailable(self.id, f"HTTP {status} from the GraphQL API")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if status >= 400:
                raise SourceBadResponse(
                    self.id, f"HTTP {status} from the GraphQL API; check its url and auth"
                ) from None
            kind = response.headers.get("content-type", "no content type")
            raise SourceBadResponse(self.id, f"the GraphQL API answered {kind}, not JSON") from None
        if not isinstance(body, dict):
            raise SourceBadResponse(self.id, "the GraphQL API answered JSON that is no response")
        errors = body.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) else errors
            message = first.get("message") if isinstance(first, dict) else first
            raise SourceBadResponse(
                self.id,
                f"the GraphQL API answered errors to {key}: {str(message)[:300]!r}; "
                f"check {key} against its schema",
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise SourceBadResponse(self.id, f"HTTP {status}: a GraphQL response without data")
        return data

    # -- by id -----------------------------------------------------------------------------

    def _sendable(self, local_ids: Sequence[str]) -> list[str]:
        """The distinct ids, without those the agency's id type cannot hold (no such case)."""
        unique = list(dict.fromkeys(local_ids))
        if self.settings.id_type == "int":
            return [i for i in unique if i.lstrip("-").isdigit()]
        return unique

    def _id_value(self, local_id: str) -> str | int:
        return int(local_id) if self.settings.id_type == "int" else local_id

    def _chunks(self, spec: ByIds, local_ids: Sequence[str]) -> list[list[str]]:
        ids = self._sendable(local_ids)
        return [ids[i : i + spec.max_batch] for i in range(0, len(ids), spec.max_batch)]

    async def _listed(self, spec: ByIds, local_ids: Sequence[str], key: str) -> list[Any]:
        """``batch: ids``: one request per ``max_batch`` ids, all at once; the items found."""

        async def one(chunk: list[str]) -> list[Any]:
            variables = {spec.variable: [self._id_value(i) for i in chunk]}
            data = await self._post(spec.query, variables, f"{key}.query")
            return items_at(self.id, data, spec.items, f"{key}.items")

        found = await asyncio.gather(*(one(chunk) for chunk in self._chunks(spec, local_ids)))
        return [item for items in found for item in items]

    async def _aliased(self, spec: ByIds, local_ids: Sequence[str], key: str) -> dict[str, Any]:
        """``batch: aliases``: one request per ``max_batch`` ids, the document's field once per
        id under an alias; each id's answer (at ``items`` inside it), absent when null."""

        async def one(chunk: list[str]) -> dict[str, Any]:
            query = aliased(spec.query, spec.variable, len(chunk))
            variables = {f"{spec.variable}_{n}": self._id_value(i) for n, i in enumerate(chunk)}
            data = await self._post(query, variables, f"{key}.query")
            answers: dict[str, Any] = {}
            for n, local_id in enumerate(chunk):
                value = data.get(ALIAS.format(n))
                if value is None:
                    continue  # the agency has no such case
                found = dig(value, spec.items)
                if not isinstance(found, dict | list):
                    raise SourceBadResponse(
                        self.id, f"{key}.items: no object or list at {spec.items!r} in an answer"
                    )
                answers[local_id] = found
            return answers

        found = await asyncio.gather(*(one(chunk) for chunk in self._chunks(spec, local_ids)))
        return {local_id: value for answers in found for local_id, value in answers.items()}

    async def _case_documents(self, local_ids: Sequence[str]) -> dict[str, Any]:
        """Each known case's JSON object by its id, through ``fetch``."""
        fetch = self.settings.fetch
        if fetch.batch == "ids":
            items = await self._listed(fetch, local_ids, "fetch")
        else:
            answers = await self._aliased(fetch, local_ids, "fetch")
            items = [
                item
                for value in answers.values()
                for item in (value if isinstance(value, list) else [value])
            ]
        return self.records.by_case_id(items, local_ids)

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        documents = await self._case_documents(local_ids)
        return {local_id: self.records.case(item) for local_id, item in documents.items()}

    async def load_cases_by_reference(self, references: Sequence[str]) -> Mapping[str, CaseRecord]:
        """By id where the case number is the id; else by reading the list for it."""
        if self.settings.fields.reference_number == self.settings.fields.id:
            return await super().load_cases_by_reference(references)
        return await scan_for_references(self, references)

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        history = self.settings.history
        if history is None:
            return {}
        if history.embedded is not None:
            cases = await self._case_documents(local_ids)
            return {
                local_id: self._entries(items_at(self.id, item, history.embedded, "history"))
                for local_id, item in cases.items()
            }
        spec = history.fetch
        assert spec is not None
        if spec.batch == "aliases":
            answers = await self._aliased(spec, local_ids, "history.fetch")
            return {
                local_id: self._entries(items_at(self.id, value, "", "history.fetch.items"))
                for local_id, value in answers.items()
            }
        timelines: dict[str, list[Any]] = {}
        for item in await self._listed(spec, local_ids, "history.fetch"):
            owner = dig(item, history.case_id or "")
            if not isinstance(owner, str | int) or isinstance(owner, bool):
                raise SourceBadResponse(
                    self.id, f"history.case_id: no case id at {history.case_id!r}"
                )
            timelines.setdefault(str(owner), []).append(item)
        return {local_id: self._entries(items) for local_id, items in timelines.items()}

    def _entries(self, items: list[Any]) -> list[TimelineEntry]:
        history = self.settings.history
        assert history is not None
        entries = [self.records.timeline_entry(item, history.fields) for item in items]
        return sorted(entries, key=lambda entry: entry.at)

    def _carried_timeline(self, record: CaseRecord, item: Any) -> CaseRecord:
        """The record with the timeline its search item carries (``history.embedded`` read
        by the list query too), so the page needs no second request; else as it is."""
        history = self.settings.history
        if history is None or history.embedded is None:
            return record
        entries = dig(item, history.embedded)
        if not isinstance(entries, list):
            return record
        return replace(record, timeline=tuple(self._entries(entries)))

    # -- search ----------------------------------------------------------------------------

    async def list_cases(
        self,
        where: CaseFilter,
        order: CaseOrder,
        after: Position | None,
        read: frozenset[str] | None,
        asked: frozenset[str] | None,
        wanted: int | None,
    ) -> AsyncGenerator[Sequence[Listed], None]:
        """Pages of the list query with the conditions it takes, the received window around
        ``after`` and the sort; each case with the timeline its item carries (when whole
        records or TIMELINE are ``asked``). This kind maps no referrals: access is judged
        by ownership and the agency's own referrals alone."""
        with_timelines = asked is None or TIMELINE in asked
        _, sort = self._sort(order)
        variables = self._conditions(where, order, after) | sort
        none: frozenset[str] = frozenset()
        case = self.records.case
        async for items in self._pages(variables, wanted):
            if with_timelines:
                yield [(self._carried_timeline(case(item, read), item), none) for item in items]
            else:
                yield [(case(item, read), none) for item in items]

    async def count_cases(self, where: CaseFilter) -> int:
        if self.records.matches_nothing(where):
            return 0
        listing = self.settings.list
        if listing.total is None or not exact(where, self):
            return await count_listed(self, self, where)
        variables = self._conditions(where, CaseOrder(), None)
        variables |= self._page_variables(1, None, 0)
        data = await self._post(listing.query, variables, "list.query")
        total = dig(data, listing.total)
        if not isinstance(total, int) or isinstance(total, bool):
            raise SourceBadResponse(self.id, f"list.total: no count at {listing.total!r}")
        return total

    def _page_variables(self, size: int, cursor: str | None, offset: int) -> dict[str, Any]:
        pagination = self.settings.list.pagination
        variables: dict[str, Any] = {pagination.size_variable: size}
        if pagination.style == "offset":
            variables[pagination.offset_variable] = offset
        elif cursor is not None:
            variables[pagination.after_variable] = cursor
        return variables

    async def _pages(self, variables: dict[str, Any], wanted: int | None) -> AsyncIterator[Any]:
        """Yield each page's items until the API runs out or ``wanted`` are read; needing
        more than ``list.max_pages`` pages is an error, never a silent cut."""
        listing = self.settings.list
        pagination = listing.pagination
        size = pagination.page_size if wanted is None else min(pagination.page_size, wanted + 1)
        cursor: str | None = None
        offset = 0
        for _ in range(listing.max_pages):
            page = variables | self._page_variables(size, cursor, offset)
            data = await self._post(listing.query, page, "list.query")
            items = items_at(self.id, data, listing.items, "list.items")
            yield [self._node(item) for item in items] if listing.node else items
            offset += len(items)
            if pagination.style == "offset":
                if len(items) < size:
                    return
                continue
            more = dig(data, pagination.has_next_page or "")
            end = dig(data, pagination.end_cursor or "")
            if not isinstance(more, bool):  # a wrong path must not read one page silently
                raise SourceBadResponse(
                    self.id,
                    f"list.pagination.has_next_page: no boolean at {pagination.has_next_page!r}",
                )
            if not more:
                return
            if not isinstance(end, str) or not end:
                raise SourceBadResponse(
                    self.id, f"list.pagination.end_cursor: no cursor at {pagination.end_cursor!r}"
                )
            cursor = end
        raise SourceBadResponse(
            self.id,
            f"more than {listing.max_pages} pages needed; push the filter down (list.filters) "
            "or raise list.max_pages",
        )

    def _node(self, item: Any) -> Any:
        """The case inside a list item (``list.node``: a Relay edge's ``node``)."""
        node = self.settings.list.node
        case = dig(item, node)
        if not isinstance(case, dict):
            raise SourceBadResponse(self.id, f"list.node: no case object at {node!r} in an item")
        return case

    def _sort(self, order: CaseOrder) -> tuple[bool, dict[str, Any]]:
        """Whether the API returns ``order``, and the variable that asks for it, if any."""
        field = "received_at" if order.field is SortField.RECEIVED_AT else "updated_at"
        wanted = f"{field}_{'desc' if order.descending else 'asc'}"
        sort = self.settings.list.sort
        value = getattr(sort, wanted) if sort is not None else None
        if sort is not None and value is not None:
            return True, {sort.variable: value}
        return self.settings.list.natural_order == wanted, {}

    def _conditions(
        self, where: CaseFilter, order: CaseOrder, after: Position | None
    ) -> dict[str, Any]:
        """The filter variable: each condition the API takes at its configured path, the
        keyset position narrowed to a received-time bound where it can be."""
        paths = self.settings.list.filters
        vocabulary = self.settings.vocabulary
        condition: dict[str, Any] = {}
        if paths.status and where.statuses is not None:
            natives = [n for n, c in vocabulary.statuses.items() if c in where.statuses]
            _put(condition, paths.status, natives)
        if paths.category and where.categories is not None:
            natives = [n for n, c in vocabulary.categories.items() if c in where.categories]
            _put(condition, paths.category, natives)
        if paths.province_code and where.province_codes is not None:
            _put(condition, paths.province_code, sorted(where.province_codes))
        if paths.district_code and where.district_codes is not None:
            _put(condition, paths.district_code, sorted(where.district_codes))
        if paths.text and where.text:
            _put(condition, paths.text, where.text)
        lower, upper = received_window(where, order, after)
        watching = after is not None and order.field is SortField.UPDATED_AT
        if watching and not order.descending and paths.updated_from and after is not None:
            _put(condition, paths.updated_from, self._sent_time(after.value))
        if paths.received_from and lower is not None:
            _put(condition, paths.received_from, self._sent_time(lower))
        if paths.received_before and upper is not None:
            _put(condition, paths.received_before, self._sent_time(upper))
        return {paths.variable: condition} if condition else {}

    def _sent_time(self, value: datetime) -> str:
        """A time as the agency's API compares it: in ``timezone``, with that zone's offset.
        A column with a time zone reads the offset; one without (PostGraphile's ``Datetime``
        over a ``timestamp``) drops it and compares the wall clock, which is then the local
        one its rows hold, not UTC's, seven hours off in Bangkok."""
        return value.astimezone(self.records.zone).isoformat()

    # -- check -----------------------------------------------------------------------------

    async def check(self) -> list[Problem]:
        """Read one page, then its first cases through ``fetch`` and their timelines: each
        document is asked once, so a field the agency's schema lacks is found before serving."""
        try:
            data = await self._post(
                self.settings.list.query, self._page_variables(20, None, 0), "list.query"
            )
            listing = self.settings.list
            items = items_at(self.id, data, listing.items, "list.items")
            records = [self.records.case(self._node(item)) for item in items]
        except SourceError as exc:
            fix = "check url, auth, list.query against the API's schema, and the dotted paths"
            return [Problem(self.id, "list", exc.detail, fix)]
        problems: list[Problem] = []
        ids = [record.local_id for record in records[:3]]
        try:
            found = await self.load_cases(ids)
            if set(found) != set(ids):
                problems.append(
                    Problem(
                        self.id,
                        "fetch",
                        f"cases {sorted(set(ids) - set(found))} listed but not found by fetch",
                        "check fetch.query, fetch.variable, fetch.items and id_type",
                    )
                )
            await self.load_timelines(ids)
        except SourceError as exc:
            fix = "check fetch and history against the API's schema, and their dotted paths"
            problems.append(Problem(self.id, "fetch", exc.detail, fix))
        problems += self.records.unmapped_problems(records)
        return problems


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the dotted ``path`` inside nested objects, merging with what is there
    (``receivedAt.greaterThanOrEqualTo`` and ``receivedAt.lessThan`` share ``receivedAt``)."""
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
