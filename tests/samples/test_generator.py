"""The synthetic data is deterministic, geographically real and internally consistent."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import geothai

from samples import provincial
from samples._vocabulary import CATEGORIES
from samples.generator import CANONICAL_STATUSES, CHANNELS, FINISHED, generate_cases


def test_same_seed_same_cases_and_shorter_runs_are_prefixes() -> None:
    long = list(generate_cases(seed=7, count=300))
    assert list(generate_cases(seed=7, count=300)) == long
    assert list(generate_cases(seed=7, count=120)) == long[:120]
    assert list(generate_cases(seed=8, count=120)) != long[:120]


def test_locations_are_real_nested_dopa_areas() -> None:
    for case in generate_cases(seed=1, count=2_000):
        sub = geothai.subdistrict(case.subdistrict_code)
        assert sub is not None
        assert sub.district_code == case.district_code
        assert sub.province_code == case.province_code
        assert 5 < case.latitude < 21 and 97 < case.longitude < 106


def test_histories_are_ordered_and_end_in_the_case_status() -> None:
    statuses = set(CANONICAL_STATUSES)
    categories = {code for code, _, _ in CATEGORIES}
    channels = {code for code, _ in CHANNELS}
    cases = list(generate_cases(seed=2, count=10_000))
    for case in cases:
        assert case.history[0].status == "RECEIVED"
        assert case.history[0].at == case.received_at
        assert case.history[-1].status == case.status
        assert case.updated_at == case.history[-1].at
        assert all(a.at < b.at for a, b in pairwise(case.history))
        assert {e.status for e in case.history} <= statuses
        assert (case.closed_at is not None) == (case.status in FINISHED)
        assert case.category in categories and case.channel in channels
        assert case.due_at > case.received_at
        assert any("\u0e00" <= ch <= "\u0e7f" for ch in case.title)
    open_share = sum(case.status not in FINISHED for case in cases) / len(cases)
    assert 0.25 < open_share < 0.55


def test_only_the_asked_provinces_appear() -> None:
    provinces = {c.province_code for c in generate_cases(seed=3, count=500, province_codes=["40"])}
    assert provinces == {"40"}


def test_provincial_file_uses_its_native_vocabulary_and_local_time(tmp_path: Path) -> None:
    path = tmp_path / "office.sqlite"
    assert provincial.create_and_load(path, seed=5, count=300) == 300
    with sqlite3.connect(path) as db:
        states = {state for (state,) in db.execute("SELECT DISTINCT state FROM petition")}
        vias = {via for (via,) in db.execute("SELECT DISTINCT via FROM petition")}
        (filed,) = db.execute("SELECT min(filed_on) FROM petition").fetchone()
        (without_history,) = db.execute(
            "SELECT count(*) FROM petition p WHERE NOT EXISTS "
            "(SELECT 1 FROM petition_history h WHERE h.petition_no = p.petition_no)"
        ).fetchone()
        rows = db.execute("SELECT * FROM petition ORDER BY petition_no").fetchall()
    assert states <= set(provincial.STATE_LABELS)
    assert vias <= set(provincial.VIA_LABELS)
    datetime.strptime(filed, "%Y-%m-%d %H:%M:%S.%f")
    assert without_history == 0
    again = tmp_path / "again.sqlite"
    provincial.create_and_load(again, seed=5, count=300)
    with sqlite3.connect(again) as db:
        assert db.execute("SELECT * FROM petition ORDER BY petition_no").fetchall() == rows
    assert provincial.case_count(again) == 300
    assert provincial.case_count(tmp_path / "missing.sqlite") is None
