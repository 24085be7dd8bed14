"""The benchmark data: the demo agencies at scale, built once into their own database and reused.

The Damrongdhama Center (PostgreSQL) gets ``DAMRONGDHAMA_CASES`` cases from the demo generator
(same seed, so its first 10,000 cases are the demo's and the referral chains still meet the
other agencies); the provincial office (SQLite) gets the demo size. Cases are generated and
written by COPY in chunks, so memory stays at one chunk, and indexes are built after the load.
A version row in the database says what it holds: a second build with the same arguments only
checks that row. ``python -m bench.data`` builds it alone; ``ensure_bench_data`` is the function
other benchmarks call.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg

from samples import DATA_VERSION, damrongdhama, provincial
from samples.damrongdhama import DEFAULT_SEED, SCHEMA_SQL
from samples.generator import generate_cases

log = logging.getLogger("bench.data")

DSN_VARIABLE = "COMPLAINT_GRAPH_BENCH_DSN"
"""An admin DSN of the PostgreSQL server to use; else the local server on 127.0.0.1:5432."""
LOCAL_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "complaint_graph_bench"
DAMRONGDHAMA_CASES = 1_000_000
OTHER_AGENCY_CASES = 10_000
DATA_DIR = Path(__file__).with_name(".data")
CHUNK = 50_000


@dataclass(frozen=True)
class BenchData:
    """Where the built data is: a libpq DSN for the Damrongdhama database, the SQLite file."""

    damrongdhama_dsn: str
    provincial_path: Path
    damrongdhama_cases: int
    other_cases: int


def _with_database(dsn: str, database: str) -> str:
    base, _, query = dsn.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


def _split_schema() -> tuple[str, str]:
    """The demo schema's tables, and its indexes (built after the load: several times faster)."""
    statements = [s.strip() for s in SCHEMA_SQL.split(";") if s.strip()]
    tables = ";\n".join(s for s in statements if not s.startswith("CREATE INDEX"))
    indexes = ";\n".join(s for s in statements if s.startswith("CREATE INDEX"))
    return tables, indexes


async def load_damrongdhama(dsn: str, count: int, seed: int = DEFAULT_SEED) -> None:
    """Replace the demo tables at ``dsn`` with ``count`` generated cases, loaded by COPY.

    Rows come from the sample's own row builders, chunk by chunk, so they always match the
    sample's schema; only the status log ids, numbered per chunk there, are renumbered.
    """
    tables, indexes = _split_schema()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "DROP TABLE IF EXISTS bench_data_version, complaint_referrals, "
            "complaint_status_log, complaints"
        )
        await connection.execute(tables)
        cases = generate_cases(seed=seed, count=count)
        logged = 0
        started = time.monotonic()
        while chunk := list(itertools.islice(cases, CHUNK)):
            complaints, history = damrongdhama._rows(chunk, seed)
            history = [(logged + cast(int, row[0]), *row[1:]) for row in history]
            logged += len(history)
            await connection.copy_records_to_table("complaints", records=complaints)
            await connection.copy_records_to_table("complaint_status_log", records=history)
            await connection.copy_records_to_table(
                "complaint_referrals", records=damrongdhama._referrals(chunk)
            )
            elapsed = time.monotonic() - started
            log.info("%d of %d cases loaded (%.0f s)", chunk[-1].number, count, elapsed)
        await connection.execute(indexes)
        for table in ("complaints", "complaint_status_log", "complaint_referrals"):
            await connection.execute(f"VACUUM ANALYZE {table}")
    finally:
        await connection.close()


def _stamp(count: int, seed: int) -> str:
    return f"{DATA_VERSION}:{seed}:{count}"


async def _held_stamp(dsn: str) -> str | None:
    connection = await asyncpg.connect(dsn)
    try:
        if not await connection.fetchval("SELECT to_regclass('bench_data_version') IS NOT NULL"):
            return None
        value = await connection.fetchval("SELECT stamp FROM bench_data_version")
        return str(value) if value is not None else None
    finally:
        await connection.close()


async def _write_stamp(dsn: str, stamp: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE TABLE bench_data_version (stamp text NOT NULL)")
        await connection.execute("INSERT INTO bench_data_version VALUES ($1)", stamp)
    finally:
        await connection.close()


async def _ensure_database(admin_dsn: str, database: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


async def ensure_bench_data(
    *,
    damrongdhama_cases: int = DAMRONGDHAMA_CASES,
    other_cases: int = OTHER_AGENCY_CASES,
    data_dir: Path = DATA_DIR,
    admin_dsn: str | None = None,
    database: str = DATABASE,
) -> BenchData:
    """Build the benchmark agencies unless they already hold exactly this data; say where."""
    admin = admin_dsn or os.environ.get(DSN_VARIABLE) or LOCAL_ADMIN_DSN
    await _ensure_database(admin, database)
    dsn = _with_database(admin, database)
    wanted = _stamp(damrongdhama_cases, DEFAULT_SEED)
    if await _held_stamp(dsn) != wanted:
        log.info("building %d Damrongdhama cases in database %s", damrongdhama_cases, database)
        await load_damrongdhama(dsn, damrongdhama_cases)
        await _write_stamp(dsn, wanted)
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    sqlite_path = data_dir / "provincial-khon-kaen.sqlite"
    sqlite_stamp = data_dir / "provincial-version"
    wanted_sqlite = f"{DATA_VERSION}:{other_cases}"
    held = sqlite_stamp.read_text() if sqlite_stamp.exists() else None
    if held != wanted_sqlite or provincial.case_count(sqlite_path) != other_cases:
        log.info("building the provincial office database with %d cases", other_cases)
        await asyncio.to_thread(
            provincial.create_and_load, sqlite_path, count=other_cases, overwrite=True
        )
        sqlite_stamp.write_text(wanted_sqlite)
    return BenchData(dsn, sqlite_path, damrongdhama_cases, other_cases)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__)
    parser.add_argument("--cases", type=int, default=DAMRONGDHAMA_CASES)
    parser.add_argument("--other-cases", type=int, default=OTHER_AGENCY_CASES)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data = asyncio.run(
        ensure_bench_data(damrongdhama_cases=args.cases, other_cases=args.other_cases)
    )
    print(f"damrongdhama: {data.damrongdhama_dsn}\nprovincial: {data.provincial_path}")


if __name__ == "__main__":
    main()
