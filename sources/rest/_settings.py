"""The ``kind: rest`` keys: how an agency's JSON API is called and where its fields are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sources._settings import Auth, PushedConditions, SourceSettings, Strict, known_zone
from sources._stats import Dimension
from sources.rest._write_settings import RestWrites


class Pagination(Strict):
    """How the list endpoint pages: by offset, by page number, or by an opaque next cursor."""

    style: Literal["offset", "page", "cursor"] = "offset"
    limit_param: str = "limit"
    offset_param: str = "offset"
    page_param: str = "page"
    first_page: int = 1
    cursor_param: str = "cursor"
    next_cursor: str | None = Field(
        default=None, description="Dotted path of the next cursor in a page (style: cursor)."
    )
    page_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="after")
    def _cursor_needs_path(self) -> Pagination:
        if self.style == "cursor" and not self.next_cursor:
            raise ValueError("style 'cursor' needs next_cursor: the dotted path of the next cursor")
        return self


class FilterParams(PushedConditions):
    """Query parameters the API filters by; a filter without one is applied in the gateway."""

    list_separator: str = ","
    time_offset: bool | None = Field(
        default=None,
        description="Write the times sent (bounds, watermarks, stats as_of) with their UTC "
        "offset (2026-10-01T00:00:00+07:00); false: as local times of `timezone` without one "
        "(2026-10-01T00:00:00). Absent: without one when the source sets `timezone`.",
    )


class SortParams(Strict):
    """The sort parameter and its value for each order the gateway asks for."""

    param: str = "sort"
    received_at_desc: str | None = None
    received_at_asc: str | None = None
    updated_at_desc: str | None = None
    updated_at_asc: str | None = None


class ListEndpoint(Strict):
    path: str
    items: str = Field(default="", description="Dotted path of the case list ('' = the body).")
    total: str | None = Field(default=None, description="Dotted path of the total match count.")
    pagination: Pagination = Field(default_factory=Pagination)
    filters: FilterParams = Field(default_factory=FilterParams)
    sort: SortParams | None = None
    natural_order: Literal["received_at_desc", "received_at_asc"] | None = Field(
        default=None, description="The order the API returns cases in when no sort is asked."
    )
    max_pages: int = Field(
        default=20, ge=1, description="Pages one search may read when filtering in the gateway."
    )


class FetchEndpoint(Strict):
    """Cases by id: a batch endpoint (``ids_param``, or ``{id}`` absent) or one call per id.

    A batch goes as ``GET path?ids_param=a,b,c``, or with ``method: POST`` as the JSON body
    ``{ids_param: ["a", "b", "c"]}``.
    """

    path: str = Field(description="'/cases' with ids_param for a batch, or '/cases/{id}'.")
    ids_param: str | None = None
    ids_separator: str = Field(
        default=",", min_length=1, description="Between the ids of a GET batch's parameter."
    )
    method: Literal["GET", "POST"] = "GET"
    items: str = ""
    max_batch: int = Field(default=100, ge=1)
    concurrency: int = Field(default=8, ge=1, le=100)

    @model_validator(mode="after")
    def _batch_or_per_id(self) -> FetchEndpoint:
        if (self.ids_param is None) == ("{id}" not in self.path):
            raise ValueError("give either ids_param (batch) or a path with {id} (one call per id)")
        return self


class HistoryFields(Strict):
    at: str
    status: str | None = None
    note: str | None = None


class HistoryEndpoint(Strict):
    """Status changes and notes: embedded in each case, a batch endpoint, or one call per case."""

    embedded: str | None = Field(
        default=None, description="Dotted path of the entries inside a case (read via fetch)."
    )
    in_list: bool = Field(
        default=False,
        description="The list endpoint's items carry the entries too (at `embedded`): a page "
        "asked with its timelines carries them, with no request per case.",
    )
    list_params: dict[str, str] = Field(
        default_factory=dict,
        description="Query parameters that make the list embed the entries ({include: "
        "history}), sent only with pages asked with their timelines (in_list).",
    )
    path: str | None = Field(
        default=None, description="'/timeline' with ids_param, or '/cases/{id}/history'."
    )
    ids_param: str | None = None
    ids_separator: str = Field(
        default=",", min_length=1, description="Between the ids of a batch's parameter."
    )
    case_id: str | None = Field(
        default=None, description="Dotted path of the case id in each entry (batch endpoints)."
    )
    items: str = ""
    fields: HistoryFields
    max_batch: int = Field(default=100, ge=1)
    concurrency: int = Field(default=8, ge=1, le=100)

    @model_validator(mode="after")
    def _one_way_to_get_it(self) -> HistoryEndpoint:
        if (self.embedded is None) == (self.path is None):
            raise ValueError("give either embedded (entries inside each case) or path")
        if self.in_list and self.embedded is None:
            raise ValueError("in_list needs embedded: where in each listed case the entries are")
        if self.list_params and not self.in_list:
            raise ValueError("list_params are sent for in_list: set in_list: true")
        if self.path is not None and (self.ids_param is None) == ("{id}" not in self.path):
            raise ValueError(
                "give either ids_param (batch) or a path with {id} (one call per case)"
            )
        if self.ids_param is not None and self.case_id is None:
            raise ValueError(
                "a batch history endpoint needs case_id: where each entry names its case"
            )
        return self


class ReferralFields(Strict):
    to_agency: str
    at: str
    kind: str | None = None
    status: str | None = None
    their_reference: str | None = None
    secrecy: str | None = None


class ReferralListing(Strict):
    """How the search endpoint pages when asked with neither agency nor references: then it
    lists every referral entry this API holds, which is what this agency handed on."""

    pagination: Pagination = Field(default_factory=Pagination)
    max_pages: int = Field(
        default=20, ge=1, description="Pages one listing may read; more is an error, not a cut."
    )


class ReferralSearch(Strict):
    """An endpoint listing referrals by their target: ``GET path?agency_param=X&
    references_param=a,b`` answers the referral entries (the same ``fields``) whose receiving
    agency is X and whose receiving reference is a or b, each naming its own case. Without it
    the gateway cannot tell which of this API's cases referred to another agency's case."""

    path: str
    agency_param: str
    references_param: str
    items: str = Field(default="", description="Dotted path of the entry list ('' = the body).")
    case_id: str = Field(description="Dotted path of the referring case's id in each entry.")
    max_batch: int = Field(default=100, ge=1)
    list_all: ReferralListing | None = Field(
        default=None,
        description="Declared when the endpoint without parameters lists every referral, "
        "paged: the agency's searches then include the cases it handed on.",
    )


class EmbeddedReferrals(Strict):
    """Referrals listed inside each case's JSON (read through the fetch endpoint)."""

    embedded: str
    fields: ReferralFields
    find: ReferralSearch | None = Field(
        default=None, description="Search by target, for Case.referredFrom and relatedCases."
    )
    listed_by_scan: bool = Field(
        default=False,
        description="When the API cannot list referrals (no find.list_all): read every page of "
        "the case list (at most list.max_pages) for the referrals embedded in its cases, so "
        "that this agency's searches include the cases it handed on. One full read of the list "
        "for each request of this agency's principals that searches cases.",
    )


class CaseFields(Strict):
    """Dotted paths in one case's JSON object for each unified field."""

    id: str
    reference_number: str
    title: str
    description: str
    channel: str | None = Field(default=None, description="Absent: every case is OTHER.")
    category: str
    status: str
    received_at: str
    updated_at: str | None = None
    due_at: str | None = None
    closed_at: str | None = None
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    responsible: str | None = Field(
        default=None, description="Who the agency says is responsible (free text)."
    )
    media_urls: str | None = Field(default=None, description="A photo URL, or a list of them.")
    status_notes: str | None = Field(
        default=None, description="The agency's explanation of the current status (free text)."
    )


class StatsEndpoint(Strict):
    """An endpoint where the agency aggregates by itself (complaint-graph's stats protocol).

    GET ``path`` with the list filters, ``group_by`` (the API's names of the dimensions, comma
    separated) and ``as_of`` (ISO 8601); the answer holds ``groups``, each with ``key`` (the
    API's dimension name -> native value; time periods as the ISO date of their first day in
    Asia/Bangkok), and the figures ``count``, ``open``, ``overdue`` (by the agency's own due
    dates), ``resolved``, ``resolution_hours`` and ``open_age_hours`` (each ``count``, ``sum``
    and ``histogram``: 66 counts over the bins 0 h, 1 h, 2^(1/4) h, ... 65,536 h), and a
    ``total`` with the same figures. Used only when it can answer exactly; else the gateway
    scans."""

    path: str
    items: str = Field(default="result.groups", description="Dotted path of the groups.")
    total: str = Field(default="result.total", description="Dotted path of the total.")
    group_by_param: str = "group_by"
    as_of_param: str = "as_of"
    dimensions: dict[Dimension, str] = Field(
        description="Unified dimension -> the API's name for it; others are scanned."
    )


class ComplainantFields(Strict):
    """Dotted paths in each case's JSON for who filed it (read through the fetch endpoint).

    ``citizen_key`` holds the agency's HMAC-SHA256(matching key, citizen ID) in hex;
    ``find_param`` is a list-endpoint parameter that selects the cases whose key is one of a
    comma-separated list, so the gateway can find a person's cases here by key alone.
    """

    name: str | None = None
    citizen_id: str | None = None
    phone: str | None = None
    address: str | None = None
    is_anonymous: str | None = None
    is_confidential: str | None = None
    citizen_key: str | None = None
    find_param: str | None = None

    @model_validator(mode="after")
    def _find_needs_key(self) -> ComplainantFields:
        if self.find_param is not None and self.citizen_key is None:
            raise ValueError("find_param needs citizen_key: where each case holds the key")
        return self


class RestSettings(SourceSettings):
    base_url: str
    timezone: str | None = Field(
        default=None,
        description="IANA zone of the times the API writes without an offset (Asia/Bangkok); "
        "times with one keep it. Absent: UTC.",
    )
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(
        default_factory=dict, description="Query parameters sent with every request."
    )
    auth: Auth | None = None
    max_connections: int = Field(default=10, ge=1, le=200)
    list: ListEndpoint
    fetch: FetchEndpoint
    history: HistoryEndpoint | None = None
    referrals: EmbeddedReferrals | None = None
    stats: StatsEndpoint | None = None
    fields: CaseFields
    complainant: ComplainantFields | None = Field(
        default=None, description="Personal data of the complainant; absent: the API has none."
    )
    writes: RestWrites | None = Field(
        default=None, description="Endpoints that create and update cases; absent: read-only."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @property
    def zone(self) -> str:
        """The zone of the API's times written without an offset."""
        return self.timezone or "UTC"

    @property
    def sends_offsets(self) -> bool:
        """Whether the times the gateway sends carry their offset (``list.filters``)."""
        offset = self.list.filters.time_offset
        return self.timezone is None if offset is None else offset
