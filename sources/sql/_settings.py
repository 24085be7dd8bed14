"""The ``kind: sql`` keys: where in an agency's own tables the unified model lives."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sources._model import Channel
from sources._settings import SourceSettings, Strict, known_zone
from sources.sql._write_settings import SqlWrites


class Constant(Strict):
    """A value the agency does not keep, the same for every case: ``channel: {value: PHONE}``
    for an agency whose complaints all come by telephone."""

    value: str


class CaseColumns(Strict):
    """The table holding one row per case, and which of its columns mean what.

    A field the agency does not keep is left out (description: empty; channel, due date,
    closing time, location: none) or given a constant (``channel: {value: PHONE}``)."""

    table: str
    id: str
    reference_number: str
    title: str
    description: str | Constant | None = Field(
        default=None, description="Absent: every case's description is empty."
    )
    channel: str | Constant | None = Field(
        default=None,
        description="Absent: no channel. A constant is a channel name (PHONE, WEB, ...).",
    )
    category: str | Constant
    status: str
    received_at: str
    updated_at: str | None = Field(
        default=None, description="Missing or NULL values fall back to received_at."
    )
    due_at: str | None = None
    closed_at: str | None = None
    responsible: str | None = Field(
        default=None, description="Who the agency says is responsible (free text)."
    )


class LocationColumns(Strict):
    """Location columns, on the case table itself or in a table keyed by the case id."""

    table: str | None = None
    case_id: str | None = None
    province_code: str | None = None
    district_code: str | None = None
    subdistrict_code: str | None = None
    address: str | None = None
    latitude: str | None = None
    longitude: str | None = None

    @model_validator(mode="after")
    def _table_needs_its_key(self) -> LocationColumns:
        if (self.table is None) != (self.case_id is None):
            raise ValueError("'table' and 'case_id' go together: give both or neither")
        return self


class CategoryLookup(Strict):
    """When the case row holds a key into a category table rather than the code itself."""

    table: str
    key: str
    code: str


class StatusLookup(Strict):
    """When the case row (and the timeline row) holds a key into the agency's table of status
    names, ``tb_status(status_id, status_name)``: the name is the agency's own status, shown as
    ``sourceStatus``, and the one ``vocabulary.statuses`` maps."""

    table: str
    key: str
    label: str


class TimelineColumns(Strict):
    """The table of status changes and notes, one row per event."""

    table: str
    case_id: str
    at: str
    status: str | None = None
    note: str | None = None
    tie_breaker: str | None = Field(
        default=None, description="Column ordering events that share a timestamp, e.g. a serial id."
    )


class ReferralColumns(Strict):
    """The table of hand-overs to other agencies, one row per referral."""

    table: str
    case_id: str
    to_agency: str = Field(description="Native code of the receiving agency (vocabulary.agencies).")
    at: str
    kind: str | None = Field(default=None, description="Absent: every referral is FORWARD.")
    status: str | None = None
    their_reference: str | None = Field(
        default=None, description="The receiving agency's own id for the case."
    )
    secrecy: str | None = None
    tie_breaker: str | None = None


class ComplainantColumns(Strict):
    """Who filed each case: columns on the case table, or in a table keyed by the case id.

    ``citizen_key`` is a column the agency fills with HMAC-SHA256(matching key, citizen ID) in
    hex: the gateway finds a person's cases by it, so the citizen ID itself is never sent.
    """

    table: str | None = None
    case_id: str | None = None
    name: str | None = None
    citizen_id: str | None = None
    phone: str | None = None
    address: str | None = None
    is_anonymous: str | None = Field(default=None, description="A boolean (or 0/1) column.")
    is_confidential: str | None = Field(default=None, description="A boolean (or 0/1) column.")
    citizen_key: str | None = None

    @model_validator(mode="after")
    def _table_needs_its_key(self) -> ComplainantColumns:
        if (self.table is None) != (self.case_id is None):
            raise ValueError("'table' and 'case_id' go together: give both or neither")
        return self


class SqlSettings(SourceSettings):
    url: str = Field(
        description=(
            "SQLAlchemy async URL: postgresql+asyncpg://…, mysql+asyncmy://… "
            "(pip install 'complaint-graph[mysql]') or sqlite+aiosqlite:///…"
        )
    )
    dialect: Literal["postgresql", "mysql", "sqlite"] | None = Field(
        default=None,
        description=(
            "The SQL the database speaks, when SQLAlchemy's name for it has no strategy of "
            "its own (a database compatible with one of these); absent: from the URL."
        ),
    )
    timezone: str = Field(
        default="UTC", description="Zone of date/time columns stored without a time zone."
    )
    pool_size: int = Field(
        default=5, ge=1, le=100, description="Connections kept open, idle or not."
    )
    pool_overflow: int = Field(
        default=0,
        ge=0,
        le=100,
        description="More connections opened under demand, closed when returned.",
    )
    ask_together: bool = Field(
        default=True,
        description=(
            "PostgreSQL and MySQL/MariaDB: a merged page or count over several sources reading "
            "this database (one shared pool) with the same column shape asks them in one "
            "statement; false: this source is always asked on its own."
        ),
    )
    cases: CaseColumns
    location: LocationColumns = Field(default_factory=LocationColumns)
    category_lookup: CategoryLookup | None = None
    status_lookup: StatusLookup | None = None
    timeline: TimelineColumns | None = None
    referrals: ReferralColumns | None = None
    complainant: ComplainantColumns | None = Field(
        default=None, description="Personal data of the complainant; absent: the source has none."
    )
    writes: SqlWrites | None = Field(
        default=None, description="How cases are created and updated here; absent: read-only."
    )
    notify_channel: str | None = Field(
        default=None,
        description=(
            "PostgreSQL only: LISTEN on this channel and poll at once on every NOTIFY; "
            "`complaint-graph sources install-triggers` adds the triggers."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @model_validator(mode="after")
    def _constants_map_to_themselves(self) -> SqlSettings:
        """A constant channel is a unified channel name, a constant category a unified
        category code: each maps to itself, so the vocabulary need not list it."""
        channel = self.cases.channel
        if isinstance(channel, Constant):
            try:
                unified = Channel(channel.value)
            except ValueError:
                known = ", ".join(member.value for member in Channel)
                raise ValueError(
                    f"cases.channel: {channel.value!r} is not a channel; use one of: {known}"
                ) from None
            self.vocabulary.channels.setdefault(channel.value, unified)
        category = self.cases.category
        if isinstance(category, Constant):
            if self.category_lookup is not None:
                raise ValueError("cases.category is a constant: category_lookup has no use")
            self.vocabulary.categories.setdefault(category.value, category.value)
        return self

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if "+" not in scheme:
            raise ValueError(
                f"URL scheme {scheme!r} names no async driver; use postgresql+asyncpg://, "
                "mysql+asyncmy:// or sqlite+aiosqlite:///"
            )
        return value
