"""A Damrongdhama Center complaint database on PostgreSQL: English names, its own status codes.

Loaded with asyncpg's COPY, so 10,000 cases and their status logs take about a second.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from samples import links
from samples.generator import SyntheticCase, citizen_key, complainant_of, generate_cases

DEFAULT_SEED = 1567

STATUS_CODES = {
    "NEW": "RECEIVED",
    "ACK": "ACCEPTED",
    "REJ": "REJECTED",
    "FWD": "FORWARDED",
    "WIP": "IN_PROGRESS",
    "HOLD": "ON_HOLD",
    "DONE": "RESOLVED",
    "CLS": "CLOSED",
    "REOPEN": "REOPENED",
    "DUP": "DUPLICATE",
    "CANC": "CANCELLED",
}
TYPE_CODES = {
    "T01": "LAND_DISPUTE",
    "T02": "ROADS",
    "T03": "WATER",
    "T04": "ELECTRICITY",
    "T05": "NUISANCE",
    "T06": "CORRUPTION",
    "T07": "CONSUMER",
    "T08": "DEBT",
    "T09": "ENVIRONMENT",
    "T10": "DRUGS",
    "T11": "WELFARE",
    "T12": "OTHER",
}
CHANNEL_CODES = {
    "1567": "HOTLINE_1567",
    "1111": "HOTLINE_1111",
    "TEL": "PHONE",
    "WALKIN": "WALK_IN",
    "WEB": "WEB",
    "LINE": "LINE",
    "MAIL": "LETTER",
    "EMAIL": "EMAIL",
    "APP": "MOBILE_APP",
    "REF": "REFERRAL",
    "ETC": "OTHER",
}

SCHEMA_SQL = """
CREATE TABLE complaints (
  id bigint PRIMARY KEY, ref_no text NOT NULL UNIQUE, subject text NOT NULL,
  detail text NOT NULL, channel_code text NOT NULL, type_code text NOT NULL,
  status_code text NOT NULL, received_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  due_at timestamptz, closed_at timestamptz, province_code text, district_code text,
  subdistrict_code text, address text, lat double precision, lng double precision,
  complainant_name text, complainant_cid text, complainant_phone text, complainant_address text,
  anonymous boolean NOT NULL DEFAULT false, confidential boolean NOT NULL DEFAULT false,
  complainant_key text);
CREATE TABLE complaint_status_log (
  id bigint PRIMARY KEY, complaint_id bigint NOT NULL REFERENCES complaints(id),
  status_code text NOT NULL, changed_at timestamptz NOT NULL, remark text);
CREATE TABLE complaint_referrals (
  id bigint PRIMARY KEY, complaint_id bigint NOT NULL REFERENCES complaints(id),
  to_org text NOT NULL, referred_at timestamptz NOT NULL, kind_code text NOT NULL,
  status_text text, their_ref text);
CREATE INDEX complaints_received ON complaints (received_at, id);
CREATE INDEX complaints_updated ON complaints (updated_at, id);
CREATE INDEX complaints_status ON complaints (status_code);
CREATE INDEX complaints_province ON complaints (province_code);
CREATE INDEX complaints_type ON complaints (type_code);
CREATE INDEX complaints_complainant ON complaints (complainant_key);
CREATE INDEX status_log_complaint ON complaint_status_log (complaint_id, changed_at);
CREATE INDEX referrals_complaint ON complaint_referrals (complaint_id, referred_at);
CREATE INDEX referrals_target ON complaint_referrals (to_org, their_ref);
"""

AGENCY_CODES = {"OPM1111": "OPM-1111", "BMA-TF": "BMA-TRAFFY", "DDC": "MOI-DDC"}
KIND_CODES = {"FWD": "FORWARD", "ESC": "ESCALATE", "RET": "RETURN"}

_NATIVE_STATUS = {canonical: native for native, canonical in STATUS_CODES.items()}
_NATIVE_TYPE = {unified: native for native, unified in TYPE_CODES.items()}
_NATIVE_CHANNEL = {unified: native for native, unified in CHANNEL_CODES.items()}
_BANGKOK = timedelta(hours=7)


def reference_number(case: SyntheticCase) -> str:
    """Like the centres' own numbers: hotline, Buddhist-era year, running number."""
    year_be = (case.received_at + _BANGKOK).year + 543
    return f"ดธ.1567/{year_be}/{case.number:06d}"


Rows = list[tuple[object, ...]]


def _referrals(cases: list[SyntheticCase]) -> Rows:
    """Chain cases go to the 1111 service a day after they were received (see samples.links)."""
    return [
        (
            len(cases) + case.number,
            case.number,
            "OPM1111",
            case.received_at + timedelta(days=1),
            "ESC" if links.escalated(case.number) else "FWD",
            "ส่งเรื่องแล้ว",
            links.pmoc_id(case.number),
        )
        for case in cases
        if links.in_chain(case.number)
    ]


def _complainant(seed: int, case: SyntheticCase) -> tuple[object, ...]:
    """Name, citizen id, phone, address, anonymous, confidential, matching key (HMAC)."""
    who = complainant_of(seed, case.number)
    person = who.person
    if person is None:
        return (None, None, None, None, who.is_anonymous, who.is_confidential, None)
    return (
        person.name,
        person.citizen_id,
        person.phone,
        person.address,
        who.is_anonymous,
        who.is_confidential,
        citizen_key(person.citizen_id),
    )


def _rows(cases: list[SyntheticCase], seed: int = DEFAULT_SEED) -> tuple[Rows, Rows]:
    complaints: Rows = []
    log: Rows = []
    for case in cases:
        complaints.append(
            (
                case.number,
                reference_number(case),
                case.title,
                case.description,
                _NATIVE_CHANNEL[case.channel],
                _NATIVE_TYPE[case.category],
                _NATIVE_STATUS[case.status],
                case.received_at,
                case.updated_at,
                case.due_at,
                case.closed_at,
                case.province_code,
                case.district_code,
                case.subdistrict_code,
                case.address,
                case.latitude,
                case.longitude,
                *_complainant(seed, case),
            )
        )
        for event in case.history:
            log.append(
                (
                    len(log) + 1,
                    case.number,
                    _NATIVE_STATUS[event.status],
                    event.at,
                    event.note or None,
                )
            )
    return complaints, log


async def create_and_load(
    dsn: str, *, seed: int = DEFAULT_SEED, count: int = 10_000, drop_existing: bool = False
) -> int:
    """Create the tables in the database at ``dsn`` and fill them; returns the case count."""
    cases = list(generate_cases(seed=seed, count=count))
    complaints, log = _rows(cases, seed)
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            if drop_existing:
                await connection.execute(
                    "DROP TABLE IF EXISTS complaint_referrals; "
                    "DROP TABLE IF EXISTS complaint_status_log; DROP TABLE IF EXISTS complaints"
                )
            await connection.execute(SCHEMA_SQL)
            await connection.copy_records_to_table("complaints", records=complaints)
            await connection.copy_records_to_table("complaint_status_log", records=log)
            await connection.copy_records_to_table("complaint_referrals", records=_referrals(cases))
            # Where the gateway's writes keep their idempotency key (samples/config.yaml
            # `writes.key_column`): UNIQUE, so one key makes one case even when sent twice at once.
            await connection.execute("ALTER TABLE complaints ADD COLUMN write_key text UNIQUE")
        await connection.execute("ANALYZE complaints; ANALYZE complaint_status_log")
    finally:
        await connection.close()
    return len(complaints)


async def case_count(dsn: str) -> int | None:
    """Cases in the database, or None when the demo tables are not there."""
    connection = await asyncpg.connect(dsn)
    try:
        exists = await connection.fetchval("SELECT to_regclass('complaints') IS NOT NULL")
        if not exists:
            return None
        return int(await connection.fetchval("SELECT count(*) FROM complaints"))
    finally:
        await connection.close()
