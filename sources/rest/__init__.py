"""``kind: rest``: an agency's own HTTP/JSON API, described in configuration.

One pooled httpx client per source (HTTP/1.1 keep-alive), over a transport that never reuses a
connection whose request was cancelled or timed out (``sources/_http.py``). Filters the API declares
parameters for are pushed down; the others, the caller's access and the keyset cut are applied by
the core (sources/_pushdown.py) to what the list returns, reading at most ``list.max_pages``
pages. An API that sorts lets reading stop early; ties on the sort value are ordered by case id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import orjson

from sources._abilities import Listed
from sources._errors import SourceBadResponse, SourceError, SourceUnavailable
from sources._http import AgencyHttp, HttpSource
from sources._interface import AgencyInfo, Capabilities, Problem
from sources._model import (
    TIMELINE,
    CaseRecord,
    ComplainantRecord,
    ReferralRecord,
    TimelineEntry,
)
from sources._pushdown import ListedSearch, count_listed, exact, scan_for_references
from sources._query import CaseFilter, CaseOrder, Position, SortField, received_window
from sources._settings import SourceSettings
from sources._stats import BIN_COUNT, Bucket, CaseStats, Dimension, Durations
from sources._writes import CaseWriter, WritesWithWriter
from sources.rest._records import RecordMapper, dig, items_at
from sources.rest._settings import Pagination, ReferralListing, RestSettings, StatsEndpoint
from sources.rest._writes import RestWriter

__all__ = ["RestSettings", "RestSource"]

log = logging.getLogger(__name__)

_FILTER_NAMES = (
    "status",
    "category",
    "province_code",
    "district_code",
    "received_from",
    "received_before",
    "text",
)
# CaseFilter field names as clients know them, for `pushedDownFilters`.
_PUBLIC = {
    "status": "status",
    "category": "category",
    "province_code": "provinceCode",
    "district_code": "districtCode",
    "received_from": "receivedFrom",
    "received_before": "receivedBefore",
    "text": "text",
}


_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""``bytes.translate`` table: each ASCII digit to ``0``, every other byte to a space."""

_LONG_DIGIT_RUN = b"0" * 19
"""19 digits in a row: maybe an integer past orjson's 64 bits (below -2**63 or above 2**64 - 1),
which it would read as a float."""


class RestSource(WritesWithWriter, ListedSearch, HttpSource):
    settings_model: type[SourceSettings] = RestSettings
    kind = "rest"
    records: RecordMapper

    def __init__(self, settings: SourceSettings) -> None:
        assert isinstance(settings, RestSettings)
        self.settings = settings
        self.id = settings.id
        self.agency: AgencyInfo = settings.agency.info()
        params = settings.list.filters
        self.pushed = frozenset(name for name in _FILTER_NAMES if getattr(params, name))
        self.records = RecordMapper(
            settings.id, settings.fields, settings.vocabulary, settings.zone, settings.sla
        )
        self._http = AgencyHttp(
            settings, base_url=settings.base_url.rstrip("/"), params=settings.query
        )
        self.writer: CaseWriter | None = (
            RestWriter(settings, self._http) if settings.writes else None
        )
        # A statistics scan reads through search_cases, which reads at most max_pages pages.
        pages = settings.list
        self.stats_scan_limit = min(
            settings.stats_scan_limit, pages.max_pages * pages.pagination.page_size - 1
        )

    async def close(self) -> None:
        await super().close()
        await self.close_writer()

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            pushed_down_filters=frozenset(_PUBLIC[name] for name in self.pushed),
            watches_changes=self.settings.list.filters.updated_from is not None,
            finds_referrals_to=self.settings.referrals is not None
            and self.settings.referrals.find is not None,
            finds_complainants=self.settings.complainant is not None
            and self.settings.complainant.find_param is not None,
            lists_referrals=self._referral_listing() is not None or self._scans_referrals(),
            scan_limit=self.settings.list.max_pages * self.settings.list.pagination.page_size,
            applies_access=False,  # an API knows nothing of our callers: the core judges
        )

    def _scans_referrals(self) -> bool:
        referrals = self.settings.referrals
        return referrals is not None and referrals.listed_by_scan

    def _referral_listing(self) -> ReferralListing | None:
        referrals = self.settings.referrals
        search = referrals.find if referrals is not None else None
        return search.list_all if search is not None else None

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        """GET ``path`` (POST ``body`` as JSON when given) and decode the JSON answer,
        translating every failure into a source error."""
        method: Literal["GET", "POST"] = "GET" if body is None else "POST"
        response = await self._http.send(method, path, params=params, json=body)
        if response.status_code == 404:
            raise _NotFound(self.id, "not found")
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(self.id, f"HTTP {response.status_code} from the API")
        if response.status_code >= 400:
            raise SourceBadResponse(
                self.id, f"HTTP {response.status_code} from the API; check its auth and paths"
            )
        content = response.content
        # orjson first: several times quicker than the standard library on a page of a
        # hundred cases (bench/README.md). What it refuses or reads otherwise goes to httpx's
        # decoding: another UTF than UTF-8, and integers past 64 bits, which orjson reads as
        # floats (a run of 19 digits is looked for first: 15 microseconds for 28 KB).
        if _LONG_DIGIT_RUN not in content.translate(_DIGITS):
            try:
                return orjson.loads(content)
            except orjson.JSONDecodeError:
                pass
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise SourceBadResponse(self.id, f"the API answered {kind}, not JSON") from None

    # -- by id -----------------------------------------------------------------------------

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, CaseRecord]:
        documents = await self._case_documents(local_ids)
        return {local_id: self.records.case(item) for local_id, item in documents.items()}

    async def _case_documents(self, local_ids: Sequence[str]) -> dict[str, Any]:
        """Each known case's JSON object by its id, through the fetch endpoint."""
        fetch = self.settings.fetch
        if fetch.ids_param is not None:
            documents = await self._batches(
                local_ids,
                fetch.path,
                fetch.ids_param,
                fetch.max_batch,
                fetch.ids_separator,
                post=fetch.method == "POST",
            )
            items = [
                item
                for document in documents
                for item in items_at(self.id, document, fetch.items, "fetch.items")
            ]
        else:
            found = await self._each(local_ids, fetch.path, fetch.concurrency)
            items = [
                item
                for document in found.values()
                for item in _one_or_list(items_at_or_self(self.id, document, fetch.items))
            ]
        return self.records.by_case_id(items, local_ids)

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
                local_id: self._entries(document, history.embedded)
                for local_id, document in cases.items()
            }
        assert history.path is not None
        if history.ids_param is None:
            found = await self._each(local_ids, history.path, history.concurrency)
            return {
                local_id: self._entries(document, history.items)
                for local_id, document in found.items()
            }
        documents = await self._batches(
            local_ids, history.path, history.ids_param, history.max_batch, history.ids_separator
        )
        timelines: dict[str, list[TimelineEntry]] = {}
        for document in documents:
            for item in items_at(self.id, document, history.items, "history.items"):
                owner = dig(item, history.case_id or "")
                if not isinstance(owner, str | int):
                    raise SourceBadResponse(
                        self.id, f"history.case_id: no case id at {history.case_id!r}"
                    )
                entry = self.records.timeline_entry(item, history.fields)
                timelines.setdefault(str(owner), []).append(entry)
        for entries in timelines.values():
            entries.sort(key=lambda entry: entry.at)
        return timelines

    async def load_referrals(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        if self.settings.referrals is None:
            return {}
        cases = await self._case_documents(local_ids)
        found: dict[str, Sequence[ReferralRecord]] = {}
        for local_id, document in cases.items():
            records = self._embedded_referrals(local_id, document)
            if records is None:
                continue  # a case nobody referred anywhere may omit the list
            found[local_id] = sorted(records, key=lambda record: record.at)
        return found

    def _embedded_referrals(self, local_id: str, item: Any) -> list[ReferralRecord] | None:
        """The referrals listed inside a case's JSON object; None when it has no such list
        (or the source maps none)."""
        referrals = self.settings.referrals
        entries = dig(item, referrals.embedded) if referrals is not None else None
        if referrals is None or not isinstance(entries, list):
            return None
        return [self.records.referral(local_id, entry, referrals.fields) for entry in entries]

    async def load_complainants(self, local_ids: Sequence[str]) -> Mapping[str, ComplainantRecord]:
        fields = self.settings.complainant
        if fields is None:
            return {}
        cases = await self._case_documents(local_ids)
        return {i: self.records.complainant(i, item, fields) for i, item in cases.items()}

    async def cases_by_complainant(
        self, citizen_keys: Sequence[str]
    ) -> Mapping[str, Sequence[CaseRecord]]:
        """Through the list endpoint's ``complainant.find_param``, every page."""
        fields = self.settings.complainant
        if fields is None or fields.find_param is None or not citizen_keys:
            return {}
        wanted = set(citizen_keys)
        params = {fields.find_param: self.settings.list.filters.list_separator.join(citizen_keys)}
        found: dict[str, list[CaseRecord]] = {}
        async for page in self._pages(params, None):
            for record, item in page:
                who = self.records.complainant(record.local_id, item, fields)
                key = who.citizen_key
                if key in wanted and not (who.is_anonymous or who.is_confidential):
                    found.setdefault(key, []).append(record)
        return found

    async def find_referrals_to(
        self, agency: str, references: Sequence[str]
    ) -> Mapping[str, Sequence[ReferralRecord]]:
        """Through ``referrals.find``: one request per ``max_batch`` references (and per native
        code of ``agency``), all at once."""
        referrals = self.settings.referrals
        search = referrals.find if referrals is not None else None
        natives = [n for n, code in self.settings.vocabulary.agencies.items() if code == agency]
        if referrals is None or search is None or not natives or not references:
            return {}
        size = search.max_batch
        chunks = [list(references[i : i + size]) for i in range(0, len(references), size)]
        documents = await asyncio.gather(
            *(
                self._get(
                    search.path,
                    {search.agency_param: native, search.references_param: ",".join(chunk)},
                )
                for native in natives
                for chunk in chunks
            )
        )
        wanted = set(references)
        found: dict[str, list[ReferralRecord]] = {}
        for document in documents:
            for item in items_at(self.id, document, search.items, "referrals.find.items"):
                owner = dig(item, search.case_id)
                if not isinstance(owner, str | int):
                    raise SourceBadResponse(
                        self.id, f"referrals.find.case_id: no case id at {search.case_id!r}"
                    )
                record = self.records.referral(str(owner), item, referrals.fields)
                if record.their_reference in wanted:
                    found.setdefault(record.their_reference, []).append(record)
        for records in found.values():
            records.sort(key=lambda record: record.at)
        return found

    async def referred_references(self) -> Sequence[tuple[str, str]]:
        """Through ``referrals.find`` asked with neither agency nor references, every page
        (``referrals.find.list_all``): each referral to a known agency that names their case."""
        referrals = self.settings.referrals
        listing = self._referral_listing()
        if referrals is not None and listing is None and referrals.listed_by_scan:
            return await self._scanned_referral_references()
        if referrals is None or referrals.find is None or listing is None:
            return ()
        search = referrals.find
        found: set[tuple[str, str]] = set()
        pages = self._item_pages(
            search.path,
            search.items,
            "referrals.find",
            listing.pagination,
            listing.max_pages,
            {},
            advice="raise referrals.find.list_all.max_pages",
        )
        async for items in pages:
            for item in items:
                owner = dig(item, search.case_id)
                if not isinstance(owner, str | int):
                    raise SourceBadResponse(
                        self.id, f"referrals.find.case_id: no case id at {search.case_id!r}"
                    )
                record = self.records.referral(str(owner), item, referrals.fields)
                if isinstance(record.to_agency, str) and record.their_reference is not None:
                    found.add((record.to_agency, record.their_reference))
        return sorted(found)

    def _entries(self, document: Any, path: str) -> list[TimelineEntry]:
        history = self.settings.history
        assert history is not None
        entries = [
            self.records.timeline_entry(item, history.fields)
            for item in items_at(self.id, document, path, "history")
        ]
        return sorted(entries, key=lambda entry: entry.at)

    async def _batches(
        self,
        local_ids: Sequence[str],
        path: str,
        ids_param: str,
        size: int,
        separator: str,
        *,
        post: bool = False,
    ) -> list[Any]:
        """One request per ``size`` ids, all at once: a batch endpoint's answers (the ids as
        a JSON list in a POST body, else joined by ``separator`` in the query)."""
        chunks = [list(local_ids[i : i + size]) for i in range(0, len(local_ids), size)]
        if post:
            calls = [self._get(path, body={ids_param: chunk}) for chunk in chunks]
        else:
            calls = [self._get(path, {ids_param: separator.join(chunk)}) for chunk in chunks]
        return list(await asyncio.gather(*calls))

    async def _each(self, local_ids: Sequence[str], path: str, concurrency: int) -> dict[str, Any]:
        """One GET per id, ``concurrency`` at a time; ids the API does not know are left out."""
        gate = asyncio.Semaphore(concurrency)

        async def one(local_id: str) -> Any:
            async with gate:
                try:
                    return await self._get(path.replace("{id}", quote(local_id, safe="")))
                except _NotFound:
                    return None

        documents = await asyncio.gather(*(one(local_id) for local_id in local_ids))
        return {i: d for i, d in zip(local_ids, documents, strict=True) if d is not None}

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
        """Pages of the list endpoint with the filters it takes, the received window around
        ``after`` and the sort; each case with the agencies its embedded referrals name when
        the caller's access is judged by them. A page asked with its timelines carries them
        (TIMELINE among ``asked``) where the list's items hold them (history.in_list)."""
        carries = asked is not None and TIMELINE in asked and self._lists_history()
        _, sort = self._sort(order)
        params = self._filter_params(where, order, after)
        if sort is not None:
            params.update(sort)
        if carries:
            assert self.settings.history is not None
            params.update(self.settings.history.list_params)
        judged = where.access is not None
        none: frozenset[str] = frozenset()
        async for page in self._pages(params, wanted, read, timelines=carries):
            yield [
                (record, self._referred_to(record, item) if judged else none)
                for record, item in page
            ]

    async def count_cases(self, where: CaseFilter) -> int:
        if self.records.matches_nothing(where):
            return 0
        listing = self.settings.list
        if listing.total is None or not exact(where, self):
            return await count_listed(self, self, where)
        params = self._filter_params(where, CaseOrder(), None)
        params.update(self._page_params(0, 1, None))
        document = await self._get(listing.path, params)
        total = _dig_total(document, listing.total)
        if total is None:
            raise SourceBadResponse(self.id, f"list.total: no count at {listing.total!r}")
        return total

    async def _scanned_referral_references(self) -> list[tuple[str, str]]:
        """``referrals.listed_by_scan``: every page of the case list, each case's embedded
        referrals; more pages than ``list.max_pages`` is an error, never a partial list."""
        found: set[tuple[str, str]] = set()
        async for page in self._pages({}, None):
            for record, item in page:
                for referral in self._embedded_referrals(record.local_id, item) or ():
                    if isinstance(referral.to_agency, str) and referral.their_reference:
                        found.add((referral.to_agency, referral.their_reference))
        return sorted(found)

    def _referred_to(self, record: CaseRecord, item: Any) -> frozenset[str]:
        """Agency codes the case's embedded referrals name (none when the source maps none)."""
        found = self._embedded_referrals(record.local_id, item) or ()
        return frozenset(r.to_agency for r in found if isinstance(r.to_agency, str))

    async def _pages(
        self,
        params: dict[str, str],
        wanted: int | None,
        fields: frozenset[str] | None = None,
        *,
        timelines: bool = False,
    ) -> Any:
        """Yield pages of (record, its JSON object) until the API runs out, ``wanted`` are
        read, or max_pages; the records mapped for ``fields`` (None: whole), carrying the
        timelines listed in each item with ``timelines`` (``history.in_list``)."""
        listing = self.settings.list
        size = (
            listing.pagination.page_size
            if wanted is None
            else min(listing.pagination.page_size, wanted + 1)
        )
        pages = self._item_pages(
            listing.path,
            listing.items,
            "list",
            listing.pagination,
            listing.max_pages,
            params,
            size,
            "push the filter down (list.filters) or raise list.max_pages",
        )
        case = self.records.case
        if not timelines:
            async for items in pages:
                yield [(case(item, fields), item) for item in items]
            return
        carried = self._carried_timeline
        async for items in pages:
            yield [(case(item, fields, carried(item)), item) for item in items]

    def _lists_history(self) -> bool:
        history = self.settings.history
        return history is not None and history.in_list

    def _carried_timeline(self, item: Any) -> tuple[TimelineEntry, ...] | None:
        """The timeline a listed case's object holds (``history.in_list``); None when it is
        missing or malformed: the loader then asks for it, and reports the error at that
        case's timeline alone, as a page's other fields are not lost for it."""
        history = self.settings.history
        assert history is not None and history.embedded is not None
        try:
            return tuple(self._entries(item, history.embedded))
        except SourceBadResponse:
            return None

    async def _item_pages(
        self,
        path: str,
        items_path: str,
        key: str,
        pagination: Pagination,
        max_pages: int,
        params: dict[str, str],
        size: int | None = None,
        advice: str = "",
    ) -> AsyncIterator[list[Any]]:
        """Yield the items of each page of ``path`` until the API runs out; needing more than
        ``max_pages`` pages is an error saying ``advice``, never a silent cut. ``key`` names
        the settings the items were read with, for errors."""
        size = pagination.page_size if size is None else size
        cursor: str | None = None
        offset = 0
        for page_number in range(max_pages):
            query = dict(params) | self._page_params(offset, size, cursor, page_number, pagination)
            document = await self._get(path, query)
            items = items_at(self.id, document, items_path, f"{key}.items")
            yield items
            offset += len(items)
            if len(items) < size:
                return
            if pagination.style == "cursor":
                next_cursor = dig(document, pagination.next_cursor or "")
                if not isinstance(next_cursor, str) or not next_cursor:
                    return
                cursor = next_cursor
        raise SourceBadResponse(self.id, f"more than {max_pages} pages needed; {advice}")

    def _page_params(
        self,
        offset: int,
        size: int,
        cursor: str | None,
        page_number: int = 0,
        pagination: Pagination | None = None,
    ) -> dict[str, str]:
        pagination = pagination or self.settings.list.pagination
        params = {pagination.limit_param: str(size)}
        if pagination.style == "offset":
            params[pagination.offset_param] = str(offset)
        elif pagination.style == "page":
            params[pagination.page_param] = str(pagination.first_page + page_number)
        elif cursor is not None:
            params[pagination.cursor_param] = cursor
        return params

    def _sort(self, order: CaseOrder) -> tuple[bool, dict[str, str] | None]:
        """Whether the API returns ``order``, and the parameter that asks for it, if any."""
        field = "received_at" if order.field is SortField.RECEIVED_AT else "updated_at"
        wanted = f"{field}_{'desc' if order.descending else 'asc'}"
        sort = self.settings.list.sort
        value: str | None = getattr(sort, wanted) if sort is not None else None
        if sort is not None and value is not None:
            return True, {sort.param: value}
        return self.settings.list.natural_order == wanted, None

    def _filter_params(
        self, where: CaseFilter, order: CaseOrder, after: Position | None
    ) -> dict[str, str]:
        names = self.settings.list.filters
        join = names.list_separator.join
        vocabulary = self.settings.vocabulary
        params: dict[str, str] = {}
        if names.status and where.statuses is not None:
            params[names.status] = join(
                n for n, c in vocabulary.statuses.items() if c in where.statuses
            )
        if names.category and where.categories is not None:
            params[names.category] = join(
                n for n, c in vocabulary.categories.items() if c in where.categories
            )
        if names.province_code and where.province_codes is not None:
            params[names.province_code] = join(sorted(where.province_codes))
        if names.district_code and where.district_codes is not None:
            params[names.district_code] = join(sorted(where.district_codes))
        if names.text and where.text:
            params[names.text] = where.text
        lower, upper = received_window(where, order, after)
        watching = (
            after is not None and order.field is SortField.UPDATED_AT and not order.descending
        )
        if watching and names.updated_from and after is not None:
            # Changes since a watermark: only what moved at or after it; cut exactly later.
            params[names.updated_from] = self._sent_time(after.value)
        if names.received_from and lower is not None:
            params[names.received_from] = self._sent_time(lower)
        if names.received_before and upper is not None:
            params[names.received_before] = self._sent_time(upper)
        return params

    def _sent_time(self, value: datetime) -> str:
        """A time in a parameter as the API writes its own: with ``timezone``, local to that
        zone without an offset (midnight in Bangkok as ``2026-10-01T00:00:00``), which such an
        API compares correctly, or with the zone's offset under ``list.filters.time_offset``;
        without ``timezone``, as the caller gave it, with its offset."""
        settings = self.settings
        if settings.timezone is None and settings.sends_offsets:
            return value.isoformat()
        local = value.astimezone(self.records.zone)
        if not settings.sends_offsets:
            local = local.replace(tzinfo=None)
        return local.isoformat()

    # -- statistics ------------------------------------------------------------------------

    async def case_stats(
        self, where: CaseFilter, dimensions: Sequence[Dimension], now: datetime
    ) -> CaseStats:
        """The agency's own statistics endpoint when it can answer exactly (every filter and
        dimension it knows, its own due dates in force, no row-level restriction); otherwise
        the bounded scan through search."""
        endpoint = self.settings.stats
        if endpoint is None or not self._endpoint_answers(endpoint, where, dimensions):
            return await super().case_stats(where, dimensions, now)
        params = self._filter_params(where, CaseOrder(), None)
        names = [endpoint.dimensions[d] for d in dimensions if d in endpoint.dimensions]
        params[endpoint.group_by_param] = ",".join(names)
        params[endpoint.as_of_param] = self._sent_time(now)
        document = await self._get(endpoint.path, params)
        return self._stats_of(document, endpoint, dimensions)

    def _endpoint_answers(
        self, endpoint: StatsEndpoint, where: CaseFilter, dimensions: Sequence[Dimension]
    ) -> bool:
        constant = {Dimension.AGENCY, Dimension.SOURCE}
        return (
            all(d in endpoint.dimensions or d in constant for d in dimensions)
            and exact(where, self)
            and self.settings.sla.uses_source_due
        )

    def _stats_of(
        self, document: Any, endpoint: StatsEndpoint, dimensions: Sequence[Dimension]
    ) -> CaseStats:
        stats = CaseStats(tuple(dimensions))
        for group in items_at(self.id, document, endpoint.items, "stats.items"):
            native = group.get("key") if isinstance(group, dict) else None
            if not isinstance(native, dict):
                raise SourceBadResponse(self.id, "stats.items: a group without a key object")
            key = tuple(
                self._stats_key(d, native.get(endpoint.dimensions.get(d, ""))) for d in dimensions
            )
            stats.bucket(key).merge(self._figures(group))
        stats.total.merge(self._figures(dig(document, endpoint.total)))
        return stats

    def _stats_key(self, dimension: Dimension, native: Any) -> str | None:
        vocabulary = self.settings.vocabulary
        if dimension is Dimension.AGENCY:
            return self.agency.code
        if dimension is Dimension.SOURCE:
            return self.id
        if native is None:
            return None
        text = str(native)
        vocabularies: dict[Dimension, Mapping[str, Any]] = {
            Dimension.CATEGORY: vocabulary.categories,
            Dimension.STATUS: vocabulary.statuses,
            Dimension.CHANNEL: vocabulary.channels,
            Dimension.REFERRED_TO: vocabulary.agencies,
        }
        mapped: Any = vocabularies.get(dimension, {}).get(text, text)
        return str(getattr(mapped, "value", mapped))

    def _figures(self, group: Any) -> Bucket:
        try:
            return Bucket(
                (),
                count=int(group["count"]),
                open=int(group["open"]),
                overdue=int(group["overdue"]),
                resolved=int(group["resolved"]),
                resolution=self._durations(group["resolution_hours"]),
                open_age=self._durations(group["open_age_hours"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceBadResponse(self.id, f"stats: a group lacks {exc}") from None

    def _durations(self, found: Any) -> Durations:
        histogram = [int(n) for n in found["histogram"]]
        if len(histogram) != BIN_COUNT:
            raise SourceBadResponse(
                self.id, f"stats: a histogram has {len(histogram)} bins, not {BIN_COUNT}"
            )
        return Durations(int(found["count"]), float(found["sum"]), histogram)

    async def check(self) -> list[Problem]:
        """Read one page; report an unreachable API, a wrong shape, unmapped values, and
        listed cases without the history ``history.in_list`` says they hold."""
        try:
            params = self._page_params(0, 50, None)
            if self._lists_history():
                assert self.settings.history is not None
                params.update(self.settings.history.list_params)
            document = await self._get(self.settings.list.path, params)
            items = items_at(self.id, document, self.settings.list.items, "list.items")
            records = [self.records.case(item) for item in items]
        except SourceError as exc:
            return [Problem(self.id, "base_url", exc.detail, "check the URL, auth and paths")]
        problems = self.records.unmapped_problems(records)
        return problems + self._unlisted_history(items, records)

    def _unlisted_history(self, items: list[Any], records: list[CaseRecord]) -> list[Problem]:
        """``history.in_list`` with listed cases whose history is missing or malformed: each
        costs a request through the loader, which reports the error at its timeline."""
        history = self.settings.history
        if history is None or not history.in_list:
            return []
        lacking = [
            r.local_id
            for r, item in zip(records, items, strict=True)
            if self._carried_timeline(item) is None
        ]
        if not lacking:
            return []
        return [
            Problem(
                self.id,
                "history.in_list",
                f"{len(lacking)} of {len(items)} listed cases (first {lacking[0]!r}) have no "
                f"readable history at {history.embedded!r}",
                "fix history.embedded, or drop in_list if the list does not embed the history",
            )
        ]


class _NotFound(SourceBadResponse):
    """HTTP 404 for one id: the case does not exist there, which is an answer, not a failure."""


def _dig_total(document: Any, path: str) -> int | None:
    value = dig(document, path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def items_at_or_self(source: str, document: Any, path: str) -> Any:
    return dig(document, path) if path else document


def _one_or_list(found: Any) -> list[Any]:
    """A per-id endpoint may answer the object itself or a one-element list (Open311 does)."""
    return found if isinstance(found, list) else [found]
