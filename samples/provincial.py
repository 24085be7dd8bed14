"""A Khon Kaen provincial complaint office on SQLite: other table names, Thai status labels.

Times are stored as naive Bangkok local time, the way many provincial systems keep them; the
source's ``timezone: Asia/Bangkok`` tells the gateway so. Built with the stdlib sqlite3 module
once at set-up, never on the gateway's event loop.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from samples._vocabulary import CATEGORIES
from samples.generator import SyntheticCase, citizen_key, complainant_of, generate_cases

DEFAULT_SEED = 4000
PROVINCE = "40"

STATE_LABELS = {
    "รับเรื่อง": "RECEIVED",
    "ตรวจสอบแล้ว": "ACCEPTED",
    "ไม่รับเรื่อง": "REJECTED",
    "ส่งต่อ": "FORWARDED",
    "อยู่ระหว่างดำเนินการ": "IN_PROGRESS",
    "รอข้อมูลเพิ่มเติม": "ON_HOLD",
    "เสร็จสิ้น": "RESOLVED",
    "ยุติเรื่อง": "CLOSED",
    "เปิดเรื่องใหม่": "REOPENED",
    "เรื่องซ้ำ": "DUPLICATE",
    "ยกเลิก": "CANCELLED",
}
VIA_LABELS = {
    "สายด่วน 1567": "HOTLINE_1567",
    "สายด่วน 1111": "HOTLINE_1111",
    "โทรศัพท์": "PHONE",
    "ร้องด้วยตนเอง": "WALK_IN",
    "เว็บไซต์": "WEB",
    "ไลน์": "LINE",
    "หนังสือ": "LETTER",
    "อีเมล": "EMAIL",
    "แอปพลิเคชัน": "MOBILE_APP",
    "รับโอนเรื่อง": "REFERRAL",
    "อื่น ๆ": "OTHER",
}
TYPE_CODES = {f"KK-{index:02d}": code for index, (code, _, _) in enumerate(CATEGORIES, start=1)}

SCHEMA_SQL = """
CREATE TABLE petition_type (type_id INTEGER PRIMARY KEY, type_code TEXT NOT NULL UNIQUE,
  type_name TEXT NOT NULL);
CREATE TABLE petition (
  petition_no TEXT PRIMARY KEY, book_no TEXT NOT NULL, heading TEXT NOT NULL, body TEXT NOT NULL,
  via TEXT NOT NULL, type_id INTEGER NOT NULL REFERENCES petition_type(type_id),
  state TEXT NOT NULL, filed_on DATETIME NOT NULL, last_change DATETIME NOT NULL,
  deadline DATETIME, finished_on DATETIME);
CREATE TABLE petition_place (petition_no TEXT PRIMARY KEY REFERENCES petition(petition_no),
  changwat TEXT, amphoe TEXT, tambon TEXT, place_text TEXT, lat REAL, lon REAL);
CREATE TABLE petition_history (seq INTEGER PRIMARY KEY,
  petition_no TEXT NOT NULL REFERENCES petition(petition_no), state TEXT NOT NULL,
  at DATETIME NOT NULL, note TEXT);
CREATE TABLE ผู้ร้อง (petition_no TEXT PRIMARY KEY REFERENCES petition(petition_no),
  ชื่อ TEXT, เลขประจำตัวประชาชน TEXT, โทรศัพท์ TEXT, ที่อยู่ TEXT,
  ไม่ประสงค์ออกนาม INTEGER NOT NULL, ขอปกปิด INTEGER NOT NULL, รหัสจับคู่ TEXT);
CREATE INDEX ผู้ร้อง_รหัสจับคู่ ON ผู้ร้อง (รหัสจับคู่);
CREATE INDEX petition_filed ON petition (filed_on, petition_no);
CREATE INDEX petition_changed ON petition (last_change, petition_no);
CREATE INDEX petition_state ON petition (state);
ALTER TABLE petition ADD COLUMN write_key TEXT;
CREATE UNIQUE INDEX petition_write_key ON petition (write_key);
CREATE INDEX history_petition ON petition_history (petition_no, at);
"""

_BANGKOK = ZoneInfo("Asia/Bangkok")
_STATE = {canonical: label for label, canonical in STATE_LABELS.items()}
_VIA = {channel: label for label, channel in VIA_LABELS.items()}
_TYPE_ID = {code: index for index, (code, _, _) in enumerate(CATEGORIES, start=1)}


def local_text(value: datetime | None) -> str | None:
    """Bangkok wall-clock time in SQLAlchemy's SQLite format, so text order is time order."""
    if value is None:
        return None
    return value.astimezone(_BANGKOK).strftime("%Y-%m-%d %H:%M:%S.%f")


def petition_no(case: SyntheticCase) -> str:
    year_be = (case.received_at + timedelta(hours=7)).year + 543
    return f"ขก-{year_be}-{case.number:05d}"


def _petitioner(seed: int, case: SyntheticCase) -> tuple[object, ...]:
    """The office's petitioner row: 1/0 flags, as SQLite keeps booleans."""
    who = complainant_of(seed, case.number)
    flags = (int(who.is_anonymous), int(who.is_confidential))
    person = who.person
    if person is None:
        return (None, None, None, None, *flags, None)
    key = citizen_key(person.citizen_id)
    return (person.name, person.citizen_id, person.phone, person.address, *flags, key)


def create_and_load(
    path: str | Path, *, seed: int = DEFAULT_SEED, count: int = 10_000, overwrite: bool = False
) -> int:
    """Write the office's database to ``path`` (atomically: a half-built file never exists)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(target)
    partial = target.with_suffix(target.suffix + ".partial")
    partial.unlink(missing_ok=True)
    cases = list(generate_cases(seed=seed, count=count, province_codes=[PROVINCE]))
    with sqlite3.connect(partial) as db:
        db.executescript(SCHEMA_SQL)
        db.executemany(
            "INSERT INTO petition_type VALUES (?, ?, ?)",
            [
                (index, native, th)
                for (native, _), (index, (_, th, _)) in zip(
                    TYPE_CODES.items(), enumerate(CATEGORIES, start=1), strict=True
                )
            ],
        )
        db.executemany(
            "INSERT INTO petition VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                (
                    petition_no(case),
                    f"ขก 0017.3/{case.number}",
                    case.title,
                    case.description,
                    _VIA[case.channel],
                    _TYPE_ID[case.category],
                    _STATE[case.status],
                    local_text(case.received_at),
                    local_text(case.updated_at),
                    local_text(case.due_at),
                    local_text(case.closed_at),
                )
                for case in cases
            ],
        )
        db.executemany(
            "INSERT INTO petition_place VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    petition_no(case),
                    case.province_code,
                    case.district_code,
                    case.subdistrict_code,
                    case.address,
                    case.latitude,
                    case.longitude,
                )
                for case in cases
            ],
        )
        db.executemany(
            "INSERT INTO ผู้ร้อง VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(petition_no(case), *_petitioner(seed, case)) for case in cases],
        )
        db.executemany(
            "INSERT INTO petition_history (petition_no, state, at, note) VALUES (?, ?, ?, ?)",
            [
                (petition_no(case), _STATE[event.status], local_text(event.at), event.note or None)
                for case in cases
                for event in case.history
            ],
        )
    db.close()
    os.replace(partial, target)
    return len(cases)


def case_count(path: str | Path) -> int | None:
    """Cases in the file, or None when it is missing or not a demo database."""
    if not Path(path).exists():
        return None
    try:
        with sqlite3.connect(path) as db:
            (count,) = db.execute("SELECT count(*) FROM petition").fetchone()
    except sqlite3.DatabaseError:
        return None
    return int(count)
