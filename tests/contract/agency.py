"""The one fixture agency every kind is loaded with, and the reference answers computed from it.

Thirty-odd cases of a district office: Thai titles and status names, times on both sides of
Bangkok's midnight (where UTC is still the day before), three cases received at the same moment
and two updated at the same moment (ties broken by id), timelines with entries sharing a time,
referrals to two other agencies, complainants (one anonymous, one confidential). The expected
answer to every question the contract suite asks is computed here, in plain Python over these
lists, never read back through a source.

Ids are four digits, so their order as text (the global keyset's) and as numbers (an SQL
table's) agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sources import (
    AgencyAccess,
    CanonicalStatus,
    CaseFilter,
    CaseOrder,
    Channel,
    Position,
    ReferralKind,
    SortField,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
AGENCY = "CTA"
SOURCE = "contract"

STATUSES = {
    "รับเรื่อง": CanonicalStatus.RECEIVED,
    "กำลังดำเนินการ": CanonicalStatus.IN_PROGRESS,
    "แก้ไขแล้ว": CanonicalStatus.RESOLVED,
    "ยุติเรื่อง": CanonicalStatus.CLOSED,
}
CATEGORIES = {"R": "ROADS", "W": "WATER", "E": "ELECTRICITY"}
CHANNELS = {"โทรศัพท์": Channel.PHONE, "เว็บไซต์": Channel.WEB, "ไลน์": Channel.LINE}
AGENCIES = {"กทม": "BMA", "กปภ": "PWA"}
REFERRAL_KINDS = {"ส่งต่อ": ReferralKind.FORWARD, "ยกระดับ": ReferralKind.ESCALATE}
PROVINCES = {"10": ("1001", "1002"), "40": ("4001", "4002")}

TITLES = ("ถนนชำรุด", "น้ำประปาไม่ไหล", "ไฟฟ้าดับทั้งซอย", "ท่อระบายน้ำอุดตัน", "ไฟทางไม่ติด")


@dataclass(frozen=True)
class Entry:
    at: datetime  # naive, Bangkok
    status: str | None  # native
    note: str | None


@dataclass(frozen=True)
class Referral:
    to: str  # native agency
    at: datetime  # naive, Bangkok
    kind: str  # native
    status: str
    their_reference: str


@dataclass(frozen=True)
class Person:
    name: str
    citizen_id: str
    phone: str
    address: str
    anonymous: bool
    confidential: bool

    @property
    def citizen_key(self) -> str:
        return hashlib.sha256(self.citizen_id.encode()).hexdigest()


@dataclass(frozen=True)
class Case:
    id: int
    title: str
    description: str
    channel: str  # native
    category: str  # native
    status: str  # native
    province: str
    district: str
    received: datetime  # naive, Bangkok
    updated: datetime  # naive, Bangkok
    due: datetime | None
    closed: datetime | None
    timeline: tuple[Entry, ...]
    referrals: tuple[Referral, ...]
    person: Person

    @property
    def local_id(self) -> str:
        return str(self.id)

    @property
    def reference(self) -> str:
        return f"ร.{self.id}"

    @property
    def received_at(self) -> datetime:
        return utc(self.received)

    @property
    def updated_at(self) -> datetime:
        return utc(self.updated)

    @property
    def due_at(self) -> datetime:
        """The agency's own due date, else the default SLA's 15 days from receipt."""
        return self.received_at + timedelta(days=15) if self.due is None else utc(self.due)

    @property
    def canonical_status(self) -> CanonicalStatus:
        return STATUSES[self.status]

    def is_overdue(self, now: datetime) -> bool:
        due = self.due_at
        return not self.canonical_status.is_finished and due < now


def utc(local: datetime) -> datetime:
    return local.replace(tzinfo=BANGKOK).astimezone(UTC)


RECEIVED = [
    datetime(2026, 1, 31, 23, 59, 59),  # 31 January in Bangkok, 16:59 UTC
    datetime(2026, 2, 1, 0, 0, 0),  # 1 February in Bangkok, still 31 January in UTC
    datetime(2026, 2, 1, 6, 59, 59),  # the same
    datetime(2026, 2, 1, 7, 0, 0),  # 1 February in both
    datetime(2026, 2, 10, 3, 0),  # three cases at one moment: ties broken by id
    datetime(2026, 2, 10, 3, 0),
    datetime(2026, 2, 10, 3, 0),
    datetime(2026, 3, 1, 0, 30),  # March in Bangkok, February in UTC
]
COUNT = 32
NOW = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
"""The moment overdue is judged at (statistics, the overdue filter)."""


def _make() -> list[Case]:
    statuses, categories, channels = list(STATUSES), list(CATEGORIES), list(CHANNELS)
    provinces = list(PROVINCES)
    cases: list[Case] = []
    for n in range(COUNT):
        number = 1001 + n
        if n < len(RECEIVED):
            received = RECEIVED[n]
        else:
            received = datetime(2026, 1, 5, 8, 0) + timedelta(hours=37 * n + n * n % 11)
        updated = received + timedelta(hours=5 + (n * 7) % 90)
        if n in (20, 21):  # two cases updated at one moment
            updated = datetime(2026, 3, 15, 0, 0)
        status = statuses[n % 4]
        finished = STATUSES[status].is_finished
        province = provinces[n % 2]
        entries = [Entry(received, statuses[0], "รับแจ้งเรื่อง")]
        if n % 3 != 0:
            entries.append(Entry(received + timedelta(hours=2), None, "ส่งเจ้าหน้าที่ลงพื้นที่"))
            # a note at the same moment as the status change that follows it
            entries.append(Entry(received + timedelta(hours=2), status, None))
        referrals: list[Referral] = []
        if n % 5 == 1:
            referrals.append(
                Referral("กทม", received + timedelta(days=1), "ส่งต่อ", "รับแล้ว", f"BMA-{n}")
            )
        if n % 7 == 3:
            referrals.append(
                Referral("กปภ", received + timedelta(days=2), "ยกระดับ", "รอ", f"PWA-{n}")
            )
        title = TITLES[n % len(TITLES)]
        cases.append(
            Case(
                id=number,
                title=f"{title} หมู่ {n % 9 + 1}",
                description=f"ผู้ร้องแจ้งว่า{title} ตั้งแต่เมื่อวาน เรื่องที่ {number}",
                channel=channels[n % 3],
                category=categories[n % 3],
                status=status,
                province=province,
                district=PROVINCES[province][(n // 2) % 2],
                received=received,
                updated=updated,
                due=None if n % 6 == 5 else received + timedelta(days=10),
                closed=updated if finished else None,
                timeline=tuple(entries),
                referrals=tuple(referrals),
                person=Person(
                    name=f"นายทดสอบ ลำดับ{n}",
                    # case 1014 is filed by the citizen who filed case 1010
                    citizen_id=f"{1100700000000 + (9 if n == 13 else n) * 7919:013d}",
                    phone=f"08{n:08d}",
                    address=f"{n} ถนนมิตรภาพ",
                    anonymous=n % 8 == 2,
                    confidential=n % 8 == 4,
                ),
            )
        )
    return cases


CASES = _make()
BY_ID = {case.local_id: case for case in CASES}


# -- the reference implementation ------------------------------------------------------------


def matches(case: Case, where: CaseFilter, *, referrals: bool = True) -> bool:
    """Whether ``case`` passes ``where``, the access rule included; written from the
    documented meaning of each field, independently of ``CaseFilter.matches``. Without
    ``referrals`` the source maps none, so none widens what an agency sees."""
    if where.statuses is not None and case.canonical_status not in where.statuses:
        return False
    if where.categories is not None and CATEGORIES[case.category] not in where.categories:
        return False
    if where.province_codes is not None and case.province not in where.province_codes:
        return False
    if where.district_codes is not None and case.district not in where.district_codes:
        return False
    if where.received_from is not None and case.received_at < where.received_from:
        return False
    if where.received_before is not None and case.received_at >= where.received_before:
        return False
    if where.text:
        needle = where.text.casefold()
        if needle not in case.title.casefold() and needle not in case.description.casefold():
            return False
    if where.overdue is not None and case.is_overdue(where.as_of or NOW) != where.overdue:
        return False
    return where.access is None or visible(case, where.access, referrals=referrals)


def visible(case: Case, access: AgencyAccess, *, referrals: bool = True) -> bool:
    referred_to = {AGENCIES[r.to] for r in case.referrals} if referrals else set()
    return (
        access.agency == AGENCY
        or access.agency in referred_to
        or (SOURCE, case.local_id) in access.referred_by_agency
    )


def ordered(where: CaseFilter, order: CaseOrder, *, referrals: bool = True) -> list[str]:
    """Local ids of the matching cases in ``order``: by the sort time, then by id."""

    def key(case: Case) -> tuple[datetime, str]:
        moment = case.updated_at if order.field is SortField.UPDATED_AT else case.received_at
        return moment, case.local_id

    found = sorted(
        (c for c in CASES if matches(c, where, referrals=referrals)),
        key=key,
        reverse=order.descending,
    )
    return [c.local_id for c in found]


def position(local_id: str, order: CaseOrder) -> Position:
    case = BY_ID[local_id]
    moment = case.updated_at if order.field is SortField.UPDATED_AT else case.received_at
    return Position(moment, SOURCE, local_id)
