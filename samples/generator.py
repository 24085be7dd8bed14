"""Deterministic synthetic complaints in the unified shape, the seed of every demo agency.

The same seed and arguments always give the same cases, and a shorter run is a prefix of a
longer one: each case is drawn from one ``random.Random`` stream in turn. Tests and benchmarks
use this generator too, so its output is the ground truth they compare the graph against.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import geothai
from stdnum.th import pin

from samples._vocabulary import CATEGORIES, NOTES, PLACES, TEXT

CANONICAL_STATUSES = (
    "RECEIVED",
    "ACCEPTED",
    "REJECTED",
    "FORWARDED",
    "IN_PROGRESS",
    "ON_HOLD",
    "RESOLVED",
    "CLOSED",
    "REOPENED",
    "DUPLICATE",
    "CANCELLED",
)
FINISHED = frozenset({"REJECTED", "RESOLVED", "CLOSED", "DUPLICATE", "CANCELLED"})

CHANNELS: tuple[tuple[str, int], ...] = (
    ("HOTLINE_1567", 25),
    ("WALK_IN", 20),
    ("LINE", 15),
    ("WEB", 10),
    ("LETTER", 8),
    ("PHONE", 6),
    ("MOBILE_APP", 6),
    ("HOTLINE_1111", 4),
    ("REFERRAL", 3),
    ("EMAIL", 2),
    ("OTHER", 1),
)

# Plausible ways a case moves, with how often each happens.
PATHS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("RECEIVED",), 8),
    (("RECEIVED", "ACCEPTED"), 7),
    (("RECEIVED", "ACCEPTED", "IN_PROGRESS"), 10),
    (("RECEIVED", "FORWARDED"), 6),
    (("RECEIVED", "FORWARDED", "IN_PROGRESS"), 6),
    (("RECEIVED", "ACCEPTED", "ON_HOLD"), 3),
    (("RECEIVED", "ACCEPTED", "IN_PROGRESS", "RESOLVED"), 16),
    (("RECEIVED", "ACCEPTED", "IN_PROGRESS", "RESOLVED", "CLOSED"), 18),
    (("RECEIVED", "FORWARDED", "IN_PROGRESS", "RESOLVED", "CLOSED"), 10),
    (("RECEIVED", "REJECTED"), 4),
    (("RECEIVED", "DUPLICATE"), 3),
    (("RECEIVED", "CANCELLED"), 2),
    (("RECEIVED", "ACCEPTED", "IN_PROGRESS", "RESOLVED", "REOPENED", "IN_PROGRESS"), 3),
    (("RECEIVED", "ACCEPTED", "IN_PROGRESS", "RESOLVED", "REOPENED"), 2),
)

SLA_DAYS = {"LAND_DISPUTE": 30, "CORRUPTION": 30, "NUISANCE": 7}
DEFAULT_SLA_DAYS = 15

# Rough centres: exact for a few large provinces, by region for the rest.
_CENTRES = {
    "10": (13.75, 100.52),
    "20": (13.36, 100.98),
    "30": (14.97, 102.10),
    "40": (16.43, 102.83),
    "50": (18.79, 98.98),
    "83": (7.88, 98.39),
    "90": (7.19, 100.59),
}
_REGIONS = {
    "1": (14.20, 100.50),
    "2": (13.10, 101.80),
    "3": (15.00, 103.50),
    "4": (16.80, 103.20),
    "5": (18.60, 99.80),
    "6": (16.20, 100.20),
    "7": (13.80, 99.40),
    "8": (8.80, 99.00),
    "9": (6.80, 101.00),
}
_POPULOUS = {"10": 10, "30": 3, "40": 3, "50": 3, "20": 3, "41": 3, "34": 3, "90": 3, "12": 3}


@dataclass(frozen=True, slots=True)
class SyntheticEvent:
    status: str
    at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class SyntheticCase:
    number: int
    title: str
    description: str
    category: str
    channel: str
    status: str
    received_at: datetime
    updated_at: datetime
    due_at: datetime
    closed_at: datetime | None
    province_code: str
    district_code: str
    subdistrict_code: str
    address: str
    latitude: float
    longitude: float
    history: tuple[SyntheticEvent, ...]


@cache
def _subdistricts(province_code: str) -> tuple[geothai.types.Subdistrict, ...]:
    return tuple(
        sub
        for district in geothai.districts(province_code)
        for sub in geothai.subdistricts(district.code)
    )


@cache
def _all_province_codes() -> tuple[str, ...]:
    return tuple(province.code for province in geothai.provinces())


def _address(rng: random.Random, sub: geothai.types.Subdistrict) -> str:
    district = geothai.district(sub.district_code)
    province = geothai.province(sub.province_code)
    assert district is not None and province is not None
    if sub.province_code == "10":
        return f"ซอย {rng.randint(1, 80)} แขวง{sub.name_th} {district.name_th} {province.name_th}"
    return f"หมู่ {rng.randint(1, 15)} ต.{sub.name_th} อ.{district.name_th} จ.{province.name_th}"


def _history(rng: random.Random, received: datetime, end: datetime) -> tuple[SyntheticEvent, ...]:
    path = rng.choices([p for p, _ in PATHS], weights=[w for _, w in PATHS])[0]
    events: list[SyntheticEvent] = []
    at = received
    for index, status in enumerate(path):
        if index:
            at = at + timedelta(hours=rng.randint(2, 24 * 12), minutes=rng.randint(0, 59))
            if at > end:
                break
        events.append(SyntheticEvent(status, at, rng.choice(NOTES[status])))
    return tuple(events)


def generate_cases(
    *,
    seed: int,
    count: int,
    province_codes: Sequence[str] | None = None,
    start: datetime = datetime(2025, 10, 1, tzinfo=UTC),
    end: datetime = datetime(2026, 9, 30, tzinfo=UTC),
) -> Iterator[SyntheticCase]:
    """``count`` cases received between ``start`` and ``end``, in the given provinces (or all)."""
    rng = random.Random(seed)
    provinces = tuple(province_codes) if province_codes else _all_province_codes()
    province_weights = [_POPULOUS.get(code, 1) for code in provinces]
    categories = [code for code, _, _ in CATEGORIES]
    category_weights = [TEXT[code][0] for code in categories]
    span = int((end - start).total_seconds()) - 86_400
    for number in range(1, count + 1):
        category = rng.choices(categories, weights=category_weights)[0]
        _, titles, descriptions = TEXT[category]
        place = rng.choice(PLACES)
        province = rng.choices(provinces, weights=province_weights)[0]
        sub = rng.choice(_subdistricts(province))
        lat, lon = _CENTRES.get(province) or _REGIONS[province[0]]
        received = start + timedelta(seconds=rng.randrange(span))
        history = _history(rng, received, end)
        final = history[-1]
        yield SyntheticCase(
            number=number,
            title=rng.choice(titles).format(place=place),
            description=rng.choice(descriptions),
            category=category,
            channel=rng.choices([c for c, _ in CHANNELS], weights=[w for _, w in CHANNELS])[0],
            status=final.status,
            received_at=received,
            updated_at=final.at,
            due_at=received + timedelta(days=SLA_DAYS.get(category, DEFAULT_SLA_DAYS)),
            closed_at=final.at if final.status in FINISHED else None,
            province_code=province,
            district_code=sub.district_code,
            subdistrict_code=sub.code,
            address=_address(rng, sub),
            latitude=round(lat + rng.uniform(-0.25, 0.25), 5),
            longitude=round(lon + rng.uniform(-0.25, 0.25), 5),
            history=history,
        )


# -- complainants: synthetic people, some of whom complain to several agencies ---------------

DEMO_MATCH_KEY = "demo-complainant-match-key"
"""The demo's published HMAC key for matching complainants across agencies (demo data only)."""

_GIVEN = (
    "สมชาย", "สมหญิง", "ประเสริฐ", "วิไลวรรณ", "อนุชา", "กาญจนา", "ธนพล", "พรทิพย์",
    "สุรชัย", "นภาพร", "วีระ", "ศิริพร", "ชัยวัฒน์", "อรุณี", "ปิยะ", "มาลี",
)  # fmt: skip
_FAMILY = (
    "ใจดี", "สุขสวัสดิ์", "ทองคำ", "ศรีสุข", "บุญมา", "แก้วมณี", "พงษ์ไพร", "รุ่งเรือง",
    "มั่นคง", "เจริญผล", "สายทอง", "วงศ์ใหญ่", "ชัยมงคล", "ทองดี", "ประทุม", "อินทร์แก้ว",
)  # fmt: skip
PEOPLE = 400
FREQUENT = 12
"""The first ``FREQUENT`` people complain often, to every agency: cross-agency matches."""


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    name: str
    citizen_id: str
    """13 digits with a valid check digit (``stdnum.th.pin``), drawn at random: synthetic."""
    phone: str
    address: str


@dataclass(frozen=True, slots=True)
class SyntheticComplainant:
    """Who filed a case. Anonymous complaints name nobody; confidential ones (whistle-blowing)
    name a person whom the agency must not disclose."""

    person: SyntheticPerson | None
    is_anonymous: bool
    is_confidential: bool


@cache
def people() -> tuple[SyntheticPerson, ...]:
    """The synthetic population every agency's complainants are drawn from."""
    rng = random.Random("complainants")
    found: list[SyntheticPerson] = []
    for _ in range(PEOPLE):
        first12 = str(rng.randint(1, 8)) + "".join(str(rng.randint(0, 9)) for _ in range(11))
        found.append(
            SyntheticPerson(
                name=f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}",
                citizen_id=first12 + pin.calc_check_digit(first12),
                phone=f"0{rng.choice('689')}{rng.randint(0, 99_999_999):08d}",
                address=f"{rng.randint(1, 999)}/{rng.randint(1, 99)} หมู่ {rng.randint(1, 15)} "
                f"ต.{rng.choice(_FAMILY)} อ.เมือง",
            )
        )
    return tuple(found)


def complainant_of(seed: int, number: int) -> SyntheticComplainant:
    """The complainant of case ``number`` of the agency seeded ``seed``: its own stream, so the
    cases themselves are what they were before complainants existed."""
    rng = random.Random(f"complainant:{seed}:{number}")
    draw = rng.random()
    if draw < 0.12:
        return SyntheticComplainant(None, is_anonymous=True, is_confidential=False)
    pool = people()
    index = rng.randrange(FREQUENT) if rng.random() < 0.3 else rng.randrange(PEOPLE)
    return SyntheticComplainant(pool[index], is_anonymous=False, is_confidential=draw > 0.92)


def citizen_key(citizen_id: str, key: str = DEMO_MATCH_KEY) -> str:
    """HMAC-SHA256 of the 13 digits, hex: what an agency stores so complainants can be matched
    across agencies without the citizen ID leaving it (the gateway computes the same)."""
    return hmac.new(key.encode(), citizen_id.encode(), hashlib.sha256).hexdigest()
