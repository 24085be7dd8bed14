"""A steady trickle of realistic updates to the demo agencies, so subscriptions have something
to show: an open case moves one step along its path and its status log gains a row.

A step that fails (the SQLite file locked by a long export, PostgreSQL restarting) is logged
and tried again at the next tick: the thread lives as long as the demo does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from samples.provincial import local_text

log = logging.getLogger("complaint_graph.demo.trickle")

# One step forward for each open status, as the agencies' own codes.
NEXT_CODE = {"NEW": "ACK", "ACK": "WIP", "FWD": "WIP", "WIP": "DONE", "HOLD": "WIP", "DONE": "CLS"}
NEXT_LABEL = {
    "รับเรื่อง": "ตรวจสอบแล้ว",
    "ตรวจสอบแล้ว": "อยู่ระหว่างดำเนินการ",
    "ส่งต่อ": "อยู่ระหว่างดำเนินการ",
    "อยู่ระหว่างดำเนินการ": "เสร็จสิ้น",
    "รอข้อมูลเพิ่มเติม": "อยู่ระหว่างดำเนินการ",
    "เสร็จสิ้น": "ยุติเรื่อง",
}
NOTE = "ความคืบหน้าจากระบบตัวอย่าง"


async def step_damrongdhama(dsn: str, rng: random.Random) -> int | None:
    """Advance one open case of the PostgreSQL agency; returns its id (None if none is open)."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            open_ids = await connection.fetch(
                "SELECT id, status_code FROM complaints WHERE status_code = ANY($1::text[]) "
                "ORDER BY id LIMIT 200",
                list(NEXT_CODE),
            )
            if not open_ids:
                return None
            row = rng.choice(open_ids)
            code = NEXT_CODE[row["status_code"]]
            now = datetime.now(UTC)
            await connection.execute(
                "UPDATE complaints SET status_code = $2::text, updated_at = $3::timestamptz, "
                "closed_at = CASE WHEN $2::text IN ('DONE', 'CLS') THEN $3::timestamptz END "
                "WHERE id = $1",
                row["id"],
                code,
                now,
            )
            await connection.execute(
                "INSERT INTO complaint_status_log SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4 "
                "FROM complaint_status_log",
                row["id"],
                code,
                now,
                NOTE,
            )
            return int(row["id"])
    finally:
        await connection.close()


def step_provincial(path: Path, rng: random.Random, lock_wait: float = 5.0) -> str | None:
    """Advance one open petition of the SQLite agency (stdlib sqlite3; run it off the loop),
    waiting up to ``lock_wait`` seconds for a lock another connection holds."""
    with sqlite3.connect(path, timeout=lock_wait) as db:
        rows = db.execute(
            f"SELECT petition_no, state FROM petition WHERE state IN "
            f"({','.join('?' * len(NEXT_LABEL))}) ORDER BY petition_no LIMIT 200",
            list(NEXT_LABEL),
        ).fetchall()
        if not rows:
            return None
        petition, state = rng.choice(rows)
        label = NEXT_LABEL[state]
        now = local_text(datetime.now(UTC))
        db.execute(
            "UPDATE petition SET state = ?, last_change = ? WHERE petition_no = ?",
            (label, now, petition),
        )
        db.execute(
            "INSERT INTO petition_history (petition_no, state, at, note) VALUES (?, ?, ?, ?)",
            (petition, label, now, NOTE),
        )
    return str(petition)


class Trickle:
    """Runs the steps every ``seconds`` in a thread of its own until stopped."""

    def __init__(
        self,
        dsn: str,
        sqlite_path: Path,
        seconds: float = 3.0,
        seed: int = 7,
        lock_wait: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.sqlite_path = sqlite_path
        self.seconds = seconds
        self.lock_wait = lock_wait
        self.rng = random.Random(seed)
        self.failed_steps = 0
        """Steps that failed and were left for the next tick (logged each time)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await step_damrongdhama(self.dsn, self.rng)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                self._failed("the Damrongdhama Center database", exc)
            try:
                await asyncio.to_thread(step_provincial, self.sqlite_path, self.rng, self.lock_wait)
            except sqlite3.Error as exc:
                self._failed("the provincial office database", exc)
            await asyncio.to_thread(self._stop.wait, self.seconds)

    def _failed(self, database: str, exc: Exception) -> None:
        self.failed_steps += 1
        log.warning("demo update to %s failed, trying again next tick: %s", database, exc)
