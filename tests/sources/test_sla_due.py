"""``SlaSettings.due_rule()``, the row mappers' form of ``due_at``, gives the same due dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sources import Unmapped
from sources._settings import SlaSettings

RECEIVED = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
SOURCE_DUE = RECEIVED + timedelta(days=3)


@pytest.mark.parametrize(
    "settings",
    [
        SlaSettings(),
        SlaSettings(default_days=7),
        SlaSettings(categories={"land": 30, "road": 2.5}, default_days=10),
        SlaSettings(categories={"land": 30}, override_source_due=True),
        SlaSettings(override_source_due=False),
    ],
)
def test_due_rule_agrees_with_due_at(settings: SlaSettings) -> None:
    rule = settings.due_rule()
    categories: list[str | Unmapped] = ["land", "road", "other", Unmapped("x", "categories", "?")]
    for _ in range(2):  # the second time from the rule's kept periods
        for category in categories:
            for source_due in (None, SOURCE_DUE):
                expected = settings.due_at(RECEIVED, category, source_due)
                assert rule(RECEIVED, category, source_due) == expected
