"""``caseStats``: counts, overdue, resolution times and open ages, grouped, across all sources.

Each source computes its buckets where its data is (one GROUP BY per SQL source, a bounded scan
for APIs without a stats endpoint); the federation merges them; this module only labels them.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from resolvers.context import GraphInfo
from resolvers.directory import Directory
from resolvers.errors import UserInputError, source_error
from resolvers.geography import area
from sources import (
    RELATIVE_ERROR,
    TIME_DIMENSIONS,
    Bucket,
    CanonicalStatus,
    CaseFilter,
    Channel,
    Dimension,
    Durations,
    Federation,
)

strawberry.enum(
    Dimension,
    name="StatsDimension",
    description=(
        "What caseStats groups by. RECEIVED_DAY, RECEIVED_WEEK (ISO weeks, from Monday) and "
        "RECEIVED_MONTH follow the Asia/Bangkok calendar. REFERRED_TO is the agency a case was "
        "referred to: a case referred to two agencies counts in both buckets, and one never "
        "referred counts under a null code."
    ),
)
StatsDimension = Dimension

THAI_MONTHS = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
BUDDHIST_ERA_OFFSET = 543

_STATUS_NAMES: dict[str, tuple[str, str]] = {
    CanonicalStatus.RECEIVED: ("รับเรื่อง", "Received"),
    CanonicalStatus.ACCEPTED: ("รับเรื่องไว้พิจารณา", "Accepted"),
    CanonicalStatus.REJECTED: ("ไม่รับเรื่อง", "Rejected"),
    CanonicalStatus.FORWARDED: ("ส่งต่อหน่วยงาน", "Forwarded"),
    CanonicalStatus.IN_PROGRESS: ("อยู่ระหว่างดำเนินการ", "In progress"),
    CanonicalStatus.ON_HOLD: ("รอข้อมูลเพิ่มเติม", "On hold"),
    CanonicalStatus.RESOLVED: ("ดำเนินการแล้วเสร็จ", "Resolved"),
    CanonicalStatus.CLOSED: ("ยุติเรื่อง", "Closed"),
    CanonicalStatus.REOPENED: ("เปิดเรื่องใหม่", "Reopened"),
    CanonicalStatus.DUPLICATE: ("เรื่องซ้ำ", "Duplicate"),
    CanonicalStatus.CANCELLED: ("ยกเลิก", "Cancelled"),
}
_CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    Channel.HOTLINE_1567: ("สายด่วน 1567", "Hotline 1567"),
    Channel.HOTLINE_1111: ("สายด่วน 1111", "Hotline 1111"),
    Channel.PHONE: ("โทรศัพท์", "Phone"),
    Channel.WALK_IN: ("ร้องเรียนด้วยตนเอง", "Walk-in"),
    Channel.WEB: ("เว็บไซต์", "Web"),
    Channel.LINE: ("ไลน์", "LINE"),
    Channel.LETTER: ("หนังสือ", "Letter"),
    Channel.EMAIL: ("อีเมล", "Email"),
    Channel.MOBILE_APP: ("แอปพลิเคชัน", "Mobile app"),
    Channel.REFERRAL: ("รับโอนจากหน่วยงานอื่น", "Referral"),
    Channel.OTHER: ("อื่น ๆ", "Other"),
}

_PERCENT = f"{RELATIVE_ERROR * 100:.1f}"
DURATION_DESCRIPTION = (
    "Durations in hours. count and mean are exact. median and p90 are nearest-rank "
    "percentiles read from fixed log-spaced histograms (four bins per doubling, from 1 h to "
    "65,536 h) that every source reports and the gateway adds up; each is the geometric middle "
    f"of the bin holding the exact value, so it is within {_PERCENT}% of the exact percentile "
    "(within 0.5 h when that is under one hour; past 65,536 h it is 65,536)."
)


@strawberry.type(description=DURATION_DESCRIPTION)
class DurationStats:
    count: int = strawberry.field(description="Cases measured.")
    mean: float
    median: float
    p90: float

    @classmethod
    def of(cls, durations: Durations) -> DurationStats | None:
        mean, median, p90 = durations.mean, durations.percentile(0.5), durations.percentile(0.9)
        if mean is None or median is None or p90 is None:
            return None
        return cls(count=durations.count, mean=round(mean, 3), median=median, p90=p90)


@strawberry.type(
    description=(
        "One dimension's value in a bucket key: a code and its labels. For time buckets the code "
        "and date are the first day of the period (ISO date, Asia/Bangkok calendar), with the "
        "Buddhist Era year and the Thai month name."
    )
)
class StatsKeyValue:
    dimension: Dimension
    code: str | None = strawberry.field(
        description="Province/district DOPA code, agency or category code, source id, status, "
        "channel, or ISO date; null when cases have no value (no location, never referred)."
    )
    label: str | None = strawberry.field(
        description="A human label in Thai: the name, or e.g. 'มีนาคม 2569' for a month."
    )
    name_th: str | None
    name_en: str | None
    date: date | None = strawberry.field(description="Time buckets: the first day of the period.")
    year_be: int | None = strawberry.field(
        name="yearBE", description="Time buckets: the Buddhist Era year (Gregorian + 543)."
    )
    month_th: str | None = strawberry.field(
        description="Time buckets: the Thai month name of the first day (มกราคม … ธันวาคม)."
    )


@strawberry.type(description="Cases sharing one key, with what analysts ask of them.")
class StatsBucket:
    key: list[StatsKeyValue] = strawberry.field(
        description="One value per groupBy dimension, in groupBy order; empty for the total."
    )
    count: int = strawberry.field(description="Matching cases.")
    open: int = strawberry.field(
        description="Not finished (status other than REJECTED, "
        "RESOLVED, CLOSED, DUPLICATE, CANCELLED)."
    )
    overdue: int = strawberry.field(
        description="Open and past dueAt at the time of the request (the same rule as isOverdue)."
    )
    resolved: int = strawberry.field(description="Status RESOLVED or CLOSED.")
    resolution_hours: DurationStats | None = strawberry.field(
        description="From receivedAt to closedAt of resolved cases with a closing time; null "
        "when there are none."
    )
    open_age_hours: DurationStats | None = strawberry.field(
        description="Age of open cases at the time of the request; null when there are none."
    )


@strawberry.type(description="Statistics over every matching case of every source.")
class CaseStats:
    group_by: list[Dimension]
    as_of: datetime = strawberry.field(
        description="The moment overdue and open ages are measured at."
    )
    total: StatsBucket = strawberry.field(
        description="All matching cases, each once (also with REFERRED_TO)."
    )
    buckets: list[StatsBucket] = strawberry.field(
        description="Non-empty buckets, ordered by key codes (nulls last)."
    )


MAX_DIMENSIONS = 4


async def case_stats(info: GraphInfo, where: CaseFilter, group_by: list[Dimension]) -> CaseStats:
    """Ask every matching source at once, merge, and label; failures become partial errors."""
    if len(set(group_by)) != len(group_by):
        raise UserInputError("groupBy names a dimension twice")
    if len(group_by) > MAX_DIMENSIONS:
        raise UserInputError(f"groupBy has {len(group_by)} dimensions; at most {MAX_DIMENSIONS}")
    context = info.context
    federation: Federation = context.federation
    merged, failures = await federation.stats(where, group_by, context.now)
    path = info.path.as_list()
    context.partial_errors.extend(source_error(error, path) for error in failures)
    context.warnings.extend(
        {"source": warning.source, "message": warning.message} for warning in merged.warnings
    )
    directory = context.directory
    buckets = sorted(merged.buckets.values(), key=lambda b: [(c is None, c or "") for c in b.key])
    return CaseStats(
        group_by=list(group_by),
        as_of=context.now,
        total=_bucket(merged.total, (), directory, federation),
        buckets=[_bucket(b, tuple(group_by), directory, federation) for b in buckets],
    )


def _bucket(
    bucket: Bucket, dimensions: tuple[Dimension, ...], directory: Directory, federation: Federation
) -> StatsBucket:
    return StatsBucket(
        key=[
            _key_value(dimension, code, directory, federation)
            for dimension, code in zip(dimensions, bucket.key, strict=True)
        ],
        count=bucket.count,
        open=bucket.open,
        overdue=bucket.overdue,
        resolved=bucket.resolved,
        resolution_hours=DurationStats.of(bucket.resolution),
        open_age_hours=DurationStats.of(bucket.open_age),
    )


def _key_value(
    dimension: Dimension, code: str | None, directory: Directory, federation: Federation
) -> StatsKeyValue:
    if code is not None and dimension in TIME_DIMENSIONS:
        return _period(dimension, date.fromisoformat(code))
    names = _names(dimension, code, directory, federation) if code is not None else None
    name_th, name_en = names if names is not None else (None, None)
    return StatsKeyValue(
        dimension=dimension,
        code=code,
        label=name_th or code,
        name_th=name_th,
        name_en=name_en,
        date=None,
        year_be=None,
        month_th=None,
    )


def _names(
    dimension: Dimension, code: str, directory: Directory, federation: Federation
) -> tuple[str | None, str | None] | None:
    if dimension in (Dimension.PROVINCE, Dimension.DISTRICT):
        found = area(code)
        return (found.name_th, found.name_en) if found is not None else None
    if dimension in (Dimension.AGENCY, Dimension.REFERRED_TO):
        agency = directory.agencies.get(code)
        return (agency.name_th, agency.name_en) if agency is not None else None
    if dimension is Dimension.SOURCE:
        source = federation.get(code)
        return (source.agency.name_th, source.agency.name_en) if source is not None else None
    if dimension is Dimension.CATEGORY:
        category = directory.categories.get(code)
        return (category.name_th, category.name_en) if category is not None else None
    if dimension is Dimension.STATUS:
        return _STATUS_NAMES.get(code)
    return _CHANNEL_NAMES.get(code)


def _period(dimension: Dimension, first_day: date) -> StatsKeyValue:
    month = THAI_MONTHS[first_day.month - 1]
    year_be = first_day.year + BUDDHIST_ERA_OFFSET
    if dimension is Dimension.RECEIVED_MONTH:
        label = f"{month} {year_be}"
    elif dimension is Dimension.RECEIVED_WEEK:
        label = f"สัปดาห์เริ่ม {first_day.day} {month} {year_be}"
    else:
        label = f"{first_day.day} {month} {year_be}"
    return StatsKeyValue(
        dimension=dimension,
        code=first_day.isoformat(),
        label=label,
        name_th=label,
        name_en=None,
        date=first_day,
        year_be=year_be,
        month_th=month,
    )
