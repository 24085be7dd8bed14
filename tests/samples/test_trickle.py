"""The demo's update thread outlives a locked database (issue 19, finding 5: it died on a lock
during a 10,000-row export and the demo produced no events after)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from samples import damrongdhama, provincial
from samples.trickle import Trickle
from tests.postgres import create_database, drop_database, run


def until(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Wait for ``condition`` (checked every 20 ms), failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def history_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM petition_history").fetchone()
    db.close()
    return int(count)


@pytest.fixture
def agencies(postgres_admin_dsn: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    dsn = run(create_database(postgres_admin_dsn))
    run(damrongdhama.create_and_load(dsn, count=40))
    path = tmp_path / "office.sqlite"
    provincial.create_and_load(path, count=40)
    yield dsn, path
    run(drop_database(postgres_admin_dsn, dsn))


def test_the_trickle_survives_a_locked_database_and_goes_on(agencies: tuple[str, Path]) -> None:
    dsn, path = agencies
    trickle = Trickle(dsn, path, seconds=0.01, lock_wait=0.05)
    export = sqlite3.connect(path, isolation_level=None)  # a long export's lock, held by us
    export.execute("BEGIN EXCLUSIVE")
    trickle.start()
    try:
        until(lambda: trickle.failed_steps >= 2, "the trickle to meet the lock twice")
        assert trickle.is_running
        export.execute("ROLLBACK")
        before = history_rows(path)
        until(lambda: history_rows(path) > before, "an update after the lock is gone")
        assert trickle.is_running
    finally:
        export.close()
        trickle.stop()
    assert not trickle.is_running
