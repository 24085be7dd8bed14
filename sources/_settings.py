"""Configuration every source shares, whatever its kind; adapters extend it with their own keys."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sources._coverage import ANYTHING, Coverage
from sources._interface import AgencyInfo
from sources._model import CanonicalStatus, Channel, ReferralKind, Unmapped

_SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a mapping must not silently map nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Named(Strict):
    """Something with a code and its Thai and English names: an agency, a category."""

    code: str = Field(min_length=1)
    name_th: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class AgencySettings(Named):
    def info(self) -> AgencyInfo:
        return AgencyInfo(code=self.code, name_th=self.name_th, name_en=self.name_en)


class Vocabulary(Strict):
    """How the agency's own codes translate: native value -> canonical value.

    A native value met at run time that is not listed here becomes a field error naming the source
    and this key, never a guess.
    """

    statuses: dict[str, CanonicalStatus]
    categories: dict[str, str] = Field(default_factory=dict)
    channels: dict[str, Channel] = Field(default_factory=dict)
    agencies: dict[str, str] = Field(
        default_factory=dict, description="Native agency codes in referrals -> agency codes."
    )
    referral_kinds: dict[str, ReferralKind] = Field(default_factory=dict)

    def status(self, source: str, native: str) -> CanonicalStatus | Unmapped:
        return self.statuses.get(native) or Unmapped(source, "statuses", native)

    def category(self, source: str, native: str) -> str | Unmapped:
        return self.categories.get(native) or Unmapped(source, "categories", native)

    def channel(self, source: str, native: str) -> Channel | Unmapped:
        return self.channels.get(native) or Unmapped(source, "channels", native)

    def agency(self, source: str, native: str) -> str | Unmapped:
        return self.agencies.get(native) or Unmapped(source, "agencies", native)

    def referral_kind(self, source: str, native: str | None) -> ReferralKind | Unmapped:
        """Without a kind column or field, every referral is a plain FORWARD."""
        if native is None:
            return ReferralKind.FORWARD
        return self.referral_kinds.get(native) or Unmapped(source, "referral_kinds", native)


class Resilience(Strict):
    """How the gateway protects itself and the agency when the agency is slow or down."""

    max_concurrency: int = Field(default=10, ge=1, description="Round trips in flight at once.")
    max_concurrency_per_caller: int | None = Field(
        default=None,
        ge=1,
        description="Of those, what one caller may hold (default: half, at least one), so "
        "that one caller's heavy document cannot take every slot.",
    )
    retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed read.")
    retry_initial_seconds: float = Field(default=0.05, ge=0)
    retry_max_seconds: float = Field(default=2.0, ge=0)
    circuit_failure_threshold: int = Field(
        default=5, ge=1, description="Failed calls in a row that open the circuit."
    )
    circuit_recovery_seconds: float = Field(
        default=30.0, gt=0, description="How long an open circuit refuses calls before a trial."
    )


class WebhookSettings(Strict):
    """An agency that pushes: ``POST /webhooks/{source}`` signed with this shared secret."""

    secret: str = Field(min_length=16, description="HMAC-SHA256 key shared with the agency.")
    tolerance_seconds: int = Field(default=300, ge=1, description="Oldest timestamp accepted.")


DEFAULT_SLA_DAYS = 15.0


class SlaSettings(Strict):
    """How long an agency has to finish a case, which sets ``dueAt`` and what is overdue.

    The due date of a case is its source's own due date when it has one, else ``received_at``
    plus the days for its category (``categories``, else ``default_days``). With
    ``override_source_due`` the configured days apply to every case, whatever the source says.
    The top-level ``sla:`` is the default for every source; a source's own ``sla:`` overrides
    it key by key (its ``categories`` are laid over the top-level ones). Unset keys inherit.
    """

    default_days: float | None = Field(
        default=None, gt=0, description="Days for categories not listed (15 if never set)."
    )
    categories: dict[str, float] = Field(
        default_factory=dict, description="Unified category code -> days."
    )
    override_source_due: bool | None = Field(
        default=None, description="Ignore the source's own due dates (false if never set)."
    )

    def over(self, base: SlaSettings) -> SlaSettings:
        """These settings with ``base`` filling what they leave unset."""
        return SlaSettings(
            default_days=self.default_days if self.default_days is not None else base.default_days,
            categories={**base.categories, **self.categories},
            override_source_due=self.override_source_due
            if self.override_source_due is not None
            else base.override_source_due,
        )

    @property
    def uses_source_due(self) -> bool:
        return not self.override_source_due

    @property
    def fallback_days(self) -> float:
        """Days for a category not listed, or unmapped."""
        return self.default_days if self.default_days is not None else DEFAULT_SLA_DAYS

    def days_for(self, category: str | Unmapped) -> float:
        if isinstance(category, str) and category in self.categories:
            return self.categories[category]
        return self.fallback_days

    def due_at(
        self, received_at: datetime, category: str | Unmapped, source_due: datetime | None
    ) -> datetime:
        """The due date the graph reports (``dueAt``) and counts overdue cases by."""
        if source_due is not None and self.uses_source_due:
            return source_due
        return received_at + _period(self.days_for(category))

    def due_rule(self) -> Callable[[datetime, str | Unmapped, datetime | None], datetime]:
        """:meth:`due_at` as a function for mapping many rows: the settings read once and each
        configured category's period made up front (any other category, unmapped ones included,
        has the default), so a row costs a dict lookup and an addition (the method, through its
        property, ``days_for`` and the period cache, cost 5,600 instructions a row). The tests
        compare it with :meth:`due_at`."""
        uses_source_due = self.uses_source_due
        default = _period(self.fallback_days)
        periods: dict[str | Unmapped, timedelta] = {
            code: _period(days) for code, days in self.categories.items()
        }

        def due_at(
            received_at: datetime, category: str | Unmapped, source_due: datetime | None
        ) -> datetime:
            if source_due is not None and uses_source_due:
                return source_due
            return received_at + periods.get(category, default)

        return due_at


@functools.lru_cache(maxsize=256)
def _period(days: float) -> timedelta:
    """``timedelta(days=days)``, made once per number of days (a mapped row asks for one)."""
    return timedelta(days=days)


class CoverageSettings(Strict):
    """What the source's cases can be (``covers:``): a promise the operator makes so that a
    query filtered to other provinces or categories does not ask this source at all."""

    provinces: list[str] | None = Field(
        default=None, min_length=1, description="Province codes (TIS 1099, two digits)."
    )
    categories: list[str] | None = Field(
        default=None, min_length=1, description="Unified category codes."
    )

    def coverage(self) -> Coverage:
        return Coverage(
            frozenset(self.provinces) if self.provinces is not None else None,
            frozenset(self.categories) if self.categories is not None else None,
        )


class Auth(Strict):
    """How an HTTP source authenticates to its agency: an API key header, a bearer token, or
    HTTP basic (the ``auth:`` key of the rest and graphql kinds)."""

    type: Literal["api_key", "bearer", "basic"]
    header: str = "X-API-Key"
    value: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _has_its_secret(self) -> Auth:
        needed = {"api_key": ("value",), "bearer": ("token",), "basic": ("username", "password")}
        missing = [name for name in needed[self.type] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self


class PushedConditions(Strict):
    """Where an HTTP API takes each condition the gateway can push down (a query parameter, a
    dotted path in a variable: the kind says which); a condition without one is applied in the
    gateway, on what comes back."""

    status: str | None = None
    category: str | None = None
    province_code: str | None = None
    district_code: str | None = None
    received_from: str | None = Field(default=None, description="Inclusive lower bound.")
    received_before: str | None = Field(default=None, description="Exclusive upper bound.")
    text: str | None = None
    updated_from: str | None = Field(
        default=None,
        description="Inclusive lower bound on the update time; lets the gateway watch for changes.",
    )


class SourceSettings(Strict):
    id: str
    kind: str
    agency: AgencySettings
    vocabulary: Vocabulary
    timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        description="One attempt at most; never past the request's deadline. Three attempts "
        "(two retries) and their backoff fit in the default 30 s request.",
    )
    resilience: Resilience = Field(default_factory=Resilience)
    poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the gateway looks for changed cases (events)."
    )
    webhook: WebhookSettings | None = None
    sla: SlaSettings = Field(
        default_factory=SlaSettings, description="Due dates; overrides the top-level sla."
    )
    stats_scan_limit: int = Field(
        default=10_000,
        ge=1,
        description="Cases a statistics scan reads at most, for sources that cannot aggregate.",
    )
    covers: CoverageSettings | None = Field(
        default=None, description="Provinces and categories the source holds; unset: any."
    )
    count_cache_seconds: float = Field(
        default=0.0,
        ge=0,
        description="How long a count (totalCount) per filter and caller is reused; 0: never.",
    )
    count_estimate_seconds: float = Field(
        default=300.0,
        ge=0,
        description=(
            "How old a count per filter and caller `totalCount(estimate: true)` may reuse; "
            "0: estimates count afresh, as exact counts do."
        ),
    )

    @property
    def coverage(self) -> Coverage:
        return self.covers.coverage() if self.covers is not None else ANYTHING

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not _SOURCE_ID.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (it is part of ids)")
        return value


def known_zone(value: str) -> str:
    """A ``timezone`` key's validator: an IANA zone name this machine's zone data knows."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Asia/Bangkok"
        ) from None
    return value
