"""``kind: open311``: any Open311 GeoReport v2 server, as a preset of the REST adapter.

GeoReport v2 fixes the endpoints and field names: ``services.json`` (service codes are the
categories), ``requests.json`` (filters ``service_code``, ``start_date``, ``end_date``,
``service_request_id`` for batches), ``requests/{id}.json``. Requests come newest first; the
widespread ``page``/``page_size`` extension pages them. ``status`` is only open/closed, so a
server with richer states names them in ``status_field`` (an extended attribute), and the
``notes`` extension, when present, is the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from sources._interface import Problem
from sources._model import TimelineEntry
from sources._open311_writes import Open311Writer, Open311Writes
from sources._settings import SourceSettings, Strict
from sources.rest import RestSource
from sources.rest._records import dig, items_at
from sources.rest._settings import (
    CaseFields,
    EmbeddedReferrals,
    FetchEndpoint,
    FilterParams,
    HistoryEndpoint,
    HistoryFields,
    ListEndpoint,
    Pagination,
    ReferralFields,
    RestSettings,
    StatsEndpoint,
)

__all__ = ["Open311Settings", "Open311Source"]


class Open311Extensions(Strict):
    """Dotted paths of the server's extensions to GeoReport v2 (absent = not offered)."""

    title: str | None = None
    channel: str | None = None
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    notes: str | None = "notes"
    note_status: str | None = Field(default=None, description="A state inside each note.")
    referrals: str | None = Field(
        default=None,
        description="Where a request lists its hand-overs; each with to, at, type, state, ref.",
    )
    referrals_listed_by_scan: bool = Field(
        default=False,
        description="GeoReport v2 cannot list referrals: read every page of requests.json (at "
        "most max_pages) for them, so this agency's searches include the cases it handed on.",
    )


class Open311Settings(SourceSettings):
    base_url: str = Field(description="Up to and including the version, e.g. …/open311/v2")
    jurisdiction_id: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    status_field: str = Field(
        default="status", description="Where the status is: 'status' or an extended attribute."
    )
    extensions: Open311Extensions = Field(default_factory=Open311Extensions)
    updated_after_param: str | None = Field(
        default=None,
        description="The server's extension parameter for 'updated at or after' (for events).",
    )
    page_size: int | None = Field(
        default=100, ge=1, description="page/page_size paging; null for servers without it."
    )
    max_pages: int = Field(default=20, ge=1)
    max_connections: int = Field(default=10, ge=1)
    stats: StatsEndpoint | None = Field(
        default=None, description="The server's statistics extension, if it has one."
    )
    writes: Open311Writes | None = Field(
        default=None,
        description="POST requests.json for referrals (sources/_open311_writes.py); absent: "
        "the source takes no writes.",
    )

    def as_rest(self) -> RestSettings:
        """The same source described as a generic REST source."""
        common = {
            "jurisdiction_id": self.jurisdiction_id,
            "api_key": self.api_key,
        }
        ext = self.extensions
        return RestSettings(
            id=self.id,
            kind=self.kind,
            agency=self.agency,
            vocabulary=self.vocabulary,
            timeout_seconds=self.timeout_seconds,
            resilience=self.resilience,
            sla=self.sla,
            stats_scan_limit=self.stats_scan_limit,
            stats=self.stats,
            base_url=self.base_url,
            headers=self.headers,
            query={k: v for k, v in common.items() if v is not None},
            max_connections=self.max_connections,
            list=ListEndpoint(
                path="/requests.json",
                pagination=Pagination(
                    style="page",
                    page_param="page",
                    limit_param="page_size",
                    page_size=self.page_size or 1000,
                ),
                filters=FilterParams(
                    category="service_code",
                    received_from="start_date",
                    received_before="end_date",
                    updated_from=self.updated_after_param,
                ),
                natural_order="received_at_desc",
                max_pages=self.max_pages if self.page_size else 1,
            ),
            fetch=FetchEndpoint(path="/requests.json", ids_param="service_request_id"),
            history=HistoryEndpoint(
                embedded=ext.notes,
                # requests.json both lists and fetches by ids: a page asked with its
                # timelines carries the notes (_carried_timeline)
                in_list=True,
                fields=HistoryFields(at="datetime", status=ext.note_status, note="description"),
            )
            if ext.notes
            else None,
            referrals=EmbeddedReferrals(
                embedded=ext.referrals,
                fields=ReferralFields(
                    to_agency="to", at="at", kind="type", status="state", their_reference="ref"
                ),
                listed_by_scan=ext.referrals_listed_by_scan,
            )
            if ext.referrals
            else None,
            fields=CaseFields(
                id="service_request_id",
                reference_number="service_request_id",
                title=ext.title or "description",
                description="description",
                channel=ext.channel,
                category="service_code",
                status=self.status_field,
                received_at="requested_datetime",
                updated_at="updated_datetime",
                due_at="expected_datetime",
                province_code=ext.province_code,
                district_code=ext.district_code,
                subdistrict_code=ext.subdistrict_code,
                address="address",
                latitude="lat",
                longitude="long",
                responsible="agency_responsible",
                media_urls="media_url",
                status_notes="status_notes",
            ),
        )


class Open311Source(RestSource):
    settings_model: type[SourceSettings] = Open311Settings
    kind = "open311"

    def __init__(self, settings: SourceSettings) -> None:
        assert isinstance(settings, Open311Settings)
        self.open311 = settings
        super().__init__(settings.as_rest())
        self.writer = Open311Writer(settings, self._http) if settings.writes is not None else None

    async def load_timelines(
        self, local_ids: Sequence[str]
    ) -> Mapping[str, Sequence[TimelineEntry]]:
        """The notes extension, where a request carries it: a request without a notes list
        (a plain GeoReport v2 server, or one that omits it) has an empty timeline, not a bad
        response; its ``status_notes`` is on the case."""
        path = self.open311.extensions.notes
        if path is None:
            return {}
        documents = await self._case_documents(local_ids)
        return {
            local_id: self._entries(document, path)
            for local_id, document in documents.items()
            if isinstance(dig(document, path), list)
        }

    def _carried_timeline(self, item: Any) -> tuple[TimelineEntry, ...] | None:
        """As :meth:`load_timelines` reads the same representation: a request without a
        notes list has an empty timeline."""
        path = self.open311.extensions.notes
        if path is not None and not isinstance(dig(item, path), list):
            return ()
        return super()._carried_timeline(item)

    async def check(self) -> list[Problem]:
        """Also compare the server's service list with the category vocabulary."""
        problems = await super().check()
        if problems and problems[0].key == "base_url":
            return problems
        services = items_at(self.id, await self._get("/services.json"), "", "services.json")
        mapped = self.open311.vocabulary.categories
        for service in services:
            code = str(service.get("service_code")) if isinstance(service, dict) else None
            if code is not None and code not in mapped:
                problems.append(
                    Problem(
                        self.id,
                        "vocabulary.categories",
                        f"service_code {code!r} is not mapped",
                        f"add {code!r} under vocabulary.categories",
                    )
                )
        return problems
