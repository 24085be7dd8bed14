"""``clock: {fixed: …}``: every request measures overdue cases and ages at one moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import ClockSettings, ConfigError, parse_config
from tests.conftest import DemoData, serving
from tests.gateway.test_config import VALID

AGES = "{ caseStats(groupBy: []) { total { count overdue openAgeHours { count mean } } } }"


def test_a_fixed_clock_is_read_from_the_configuration_and_needs_an_offset() -> None:
    environ = {"TOWN_DB": "sqlite+aiosqlite:///town.db"}
    config = parse_config(VALID + "clock: {fixed: '2026-10-01T00:00:00+07:00'}\n", environ)
    assert config.clock.now() == datetime(2026, 9, 30, 17, tzinfo=UTC)
    assert parse_config(VALID, environ).clock.fixed is None
    with pytest.raises(ConfigError) as raised:
        parse_config(VALID + "clock: {fixed: '2026-10-01T00:00:00'}\n", environ)
    assert any(problem.startswith("clock.fixed") for problem in raised.value.problems)


async def test_requests_measure_ages_and_overdue_at_the_fixed_moment(demo_data: DemoData) -> None:
    moment = datetime(2026, 10, 1, tzinfo=UTC)
    answers = []
    for fixed in (moment, moment + timedelta(days=1), moment):
        config = replace(demo_data.config, clock=ClockSettings(fixed=fixed))
        async with serving(config) as gateway:
            answers.append((await gateway.query(AGES))["data"]["caseStats"]["total"])
    first, a_day_later, again = answers
    assert first == again  # the same moment, the same figures: what the docs' examples rely on
    opened = first["openAgeHours"]["count"]
    assert opened > 0 and a_day_later["openAgeHours"]["count"] == opened
    assert a_day_later["openAgeHours"]["mean"] == pytest.approx(first["openAgeHours"]["mean"] + 24)
    assert a_day_later["overdue"] >= first["overdue"]
