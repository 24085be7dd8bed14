"""Case statistics as plain data: buckets per source, merged exactly across sources.

Counts and sums merge exactly. Percentiles cannot be merged from per-source percentiles, so every
source reports durations as a histogram over the same fixed, log-spaced hour boundaries
(:data:`HOUR_BOUNDS`); the gateway adds the histograms and reads median and p90 off the sum. The
estimate is the geometric middle of the bin that holds the nearest-rank percentile, so it is
within :data:`RELATIVE_ERROR` of the exact value (within half an hour below one hour).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sources._model import CanonicalStatus, CaseRecord, ReferralRecord

BANGKOK = ZoneInfo("Asia/Bangkok")

BINS_PER_DOUBLING = 4
MAX_DOUBLINGS = 16  # 2**16 h is about 7.5 years
HOUR_BOUNDS: tuple[float, ...] = tuple(
    2.0 ** (i / BINS_PER_DOUBLING) for i in range(MAX_DOUBLINGS * BINS_PER_DOUBLING + 1)
)
"""Lower bounds of bins 1..N in hours (1 h, 1.19 h, 1.41 h, … 65,536 h); bin 0 is under 1 h."""
BIN_COUNT = len(HOUR_BOUNDS) + 1
RELATIVE_ERROR = 2.0 ** (1 / (2 * BINS_PER_DOUBLING)) - 1
"""Worst relative error of a merged percentile: the geometric middle of a bin of ratio r is
within sqrt(r) - 1 (about 9.05 %) of any value in it."""

RESOLVED_STATUSES = frozenset({CanonicalStatus.RESOLVED, CanonicalStatus.CLOSED})


class Dimension(StrEnum):
    """What buckets can be grouped by; time dimensions follow the Asia/Bangkok calendar."""

    PROVINCE = "PROVINCE"
    DISTRICT = "DISTRICT"
    AGENCY = "AGENCY"
    SOURCE = "SOURCE"
    CATEGORY = "CATEGORY"
    STATUS = "STATUS"
    CHANNEL = "CHANNEL"
    RECEIVED_DAY = "RECEIVED_DAY"
    RECEIVED_WEEK = "RECEIVED_WEEK"
    RECEIVED_MONTH = "RECEIVED_MONTH"
    REFERRED_TO = "REFERRED_TO"


TIME_DIMENSIONS = frozenset(
    {Dimension.RECEIVED_DAY, Dimension.RECEIVED_WEEK, Dimension.RECEIVED_MONTH}
)


def hour_bin(hours: float) -> int:
    """The histogram bin of a duration: 0 below one hour, then one bin per quarter doubling."""
    return bisect_right(HOUR_BOUNDS, hours)


def bin_estimate(index: int) -> float:
    """The value a percentile falling in bin ``index`` is reported as."""
    if index <= 0:
        return 0.5
    if index >= len(HOUR_BOUNDS):
        return HOUR_BOUNDS[-1]
    return math.sqrt(HOUR_BOUNDS[index - 1] * HOUR_BOUNDS[index])


@dataclass(slots=True)
class Durations:
    """Durations in hours: exact count and sum, and a fixed-boundary histogram."""

    count: int = 0
    total_hours: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * BIN_COUNT)

    def add(self, hours: float, cases: int = 1) -> None:
        self.add_bin(hour_bin(hours), cases, hours * cases)

    def add_bin(self, index: int, cases: int, total_hours: float) -> None:
        self.count += cases
        self.total_hours += total_hours
        self.histogram[min(max(index, 0), BIN_COUNT - 1)] += cases

    def merge(self, other: Durations) -> None:
        self.count += other.count
        self.total_hours += other.total_hours
        for index, cases in enumerate(other.histogram):
            self.histogram[index] += cases

    @property
    def mean(self) -> float | None:
        return self.total_hours / self.count if self.count else None

    def percentile(self, fraction: float) -> float | None:
        """The nearest-rank percentile, estimated from the histogram (see RELATIVE_ERROR)."""
        if not self.count:
            return None
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index, cases in enumerate(self.histogram):
            seen += cases
            if seen >= rank:
                return bin_estimate(index)
        return bin_estimate(BIN_COUNT - 1)


Key = tuple[str | None, ...]


@dataclass(slots=True)
class Bucket:
    """The cases sharing one key. ``open`` are not finished; ``overdue`` are open and past their
    due date; ``resolved`` are RESOLVED or CLOSED (rejected, duplicate and cancelled cases are
    finished but neither open nor resolved)."""

    key: Key
    count: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    resolution: Durations = field(default_factory=Durations)
    open_age: Durations = field(default_factory=Durations)

    def merge(self, other: Bucket) -> None:
        self.count += other.count
        self.open += other.open
        self.overdue += other.overdue
        self.resolved += other.resolved
        self.resolution.merge(other.resolution)
        self.open_age.merge(other.open_age)


@dataclass(frozen=True, slots=True)
class StatsWarning:
    """A source whose statistics are incomplete or estimated, and why."""

    source: str
    message: str


@dataclass(slots=True)
class CaseStats:
    """Buckets keyed by one value per dimension (in ``dimensions`` order), and the total.

    With REFERRED_TO a case counts once in each agency it was referred to, so the buckets may add
    up to more than the total, which counts each case once.
    """

    dimensions: tuple[Dimension, ...]
    buckets: dict[Key, Bucket] = field(default_factory=dict)
    total: Bucket = field(default_factory=lambda: Bucket(()))
    warnings: list[StatsWarning] = field(default_factory=list)

    def bucket(self, key: Key) -> Bucket:
        found = self.buckets.get(key)
        if found is None:
            found = self.buckets[key] = Bucket(key)
        return found

    def merge(self, other: CaseStats) -> None:
        for key, bucket in other.buckets.items():
            self.bucket(key).merge(bucket)
        self.total.merge(other.total)
        self.warnings.extend(other.warnings)


def merge_stats(dimensions: Sequence[Dimension], parts: Iterable[CaseStats]) -> CaseStats:
    merged = CaseStats(tuple(dimensions))
    for part in parts:
        merged.merge(part)
    return merged


def period_start(moment: datetime, dimension: Dimension) -> date:
    """The first day (Asia/Bangkok) of the day, ISO week (Monday) or month holding ``moment``."""
    day = moment.astimezone(BANGKOK).date()
    if dimension is Dimension.RECEIVED_WEEK:
        return day - timedelta(days=day.weekday())
    if dimension is Dimension.RECEIVED_MONTH:
        return day.replace(day=1)
    return day


def record_keys(
    record: CaseRecord,
    dimensions: Sequence[Dimension],
    agency: str,
    referred_to: Sequence[str],
) -> list[Key]:
    """The keys one case counts under: one, or one per agency it was referred to."""
    values: list[list[str | None]] = []
    for dimension in dimensions:
        if dimension is Dimension.REFERRED_TO:
            values.append(list(dict.fromkeys(referred_to)) or [None])
        else:
            values.append([_value(record, dimension, agency)])
    keys: list[Key] = [()]
    for options in values:
        keys = [(*key, option) for key in keys for option in options]
    return keys


def _value(record: CaseRecord, dimension: Dimension, agency: str) -> str | None:
    place = record.location
    if dimension in TIME_DIMENSIONS:
        return period_start(record.received_at, dimension).isoformat()
    simple: dict[Dimension, object] = {
        Dimension.PROVINCE: place.province_code,
        Dimension.DISTRICT: place.district_code,
        Dimension.AGENCY: agency,
        Dimension.SOURCE: record.source,
        Dimension.CATEGORY: record.category,
        Dimension.STATUS: record.status,
        Dimension.CHANNEL: record.channel,
    }
    value = simple[dimension]
    if value is None:
        return None
    return value if isinstance(value, str) else getattr(value, "value", None)


def stats_of_records(
    records: Iterable[CaseRecord],
    referrals: dict[str, Sequence[ReferralRecord]],
    dimensions: Sequence[Dimension],
    agency: str,
    now: datetime,
) -> CaseStats:
    """Statistics computed here from cases already read (a source without a stats endpoint)."""
    stats = CaseStats(tuple(dimensions))
    for record in records:
        targets = [
            r.to_agency for r in referrals.get(record.local_id, ()) if isinstance(r.to_agency, str)
        ]
        one = _bucket_of(record, now)
        stats.total.merge(one)
        for key in record_keys(record, dimensions, agency, targets):
            stats.bucket(key).merge(one)
    return stats


def _bucket_of(record: CaseRecord, now: datetime) -> Bucket:
    bucket = Bucket((), count=1)
    status = record.status
    if not isinstance(status, CanonicalStatus):
        return bucket  # unmapped: counted, but neither open nor resolved
    if not status.is_finished:
        bucket.open = 1
        bucket.open_age.add(_hours(now - record.received_at))
        if record.due_at is not None and record.due_at < now:
            bucket.overdue = 1
    elif status in RESOLVED_STATUSES:
        bucket.resolved = 1
        if record.closed_at is not None:
            bucket.resolution.add(_hours(record.closed_at - record.received_at))
    return bucket


def _hours(span: timedelta) -> float:
    return span.total_seconds() / 3600
