"""``kind: csv``: an agency that publishes its complaints as a CSV file, one row per case."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import sources as cg


class CsvSettings(cg.SourceSettings):
    path: Path  # columns: id, title, description, category, status, received_at, province


class CsvSource(cg.Source):
    settings_model = CsvSettings
    kind = "csv"

    def __init__(self, settings: cg.SourceSettings) -> None:
        assert isinstance(settings, CsvSettings)
        self.settings, self.id, self.agency = settings, settings.id, settings.agency.info()

    @property
    def capabilities(self) -> cg.Capabilities:  # nothing pushed down: all is applied here
        return cg.Capabilities(pushed_down_filters=frozenset(), watches_changes=False)

    async def open(self) -> None:
        await self._cases()

    async def close(self) -> None: ...

    async def _cases(self) -> dict[str, cg.CaseRecord]:
        """The file as it is now: each call reads it, so the agency may rewrite it any time."""
        try:
            text = await asyncio.to_thread(self.settings.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise cg.SourceUnavailable(self.id, f"cannot read the file ({exc.strerror})") from exc
        try:
            return {row["id"]: self._record(row) for row in csv.DictReader(text.splitlines())}
        except (KeyError, ValueError) as exc:
            raise cg.SourceBadResponse(self.id, f"a row lacks or garbles {exc}") from exc

    def _record(self, row: dict[str, str]) -> cg.CaseRecord:
        words, received = self.settings.vocabulary, datetime.fromisoformat(row["received_at"])
        category = words.category(self.id, row["category"])
        return cg.CaseRecord(
            source=self.id,
            local_id=row["id"],
            reference_number=row["id"],
            title=row["title"],
            description=row["description"],
            channel=cg.Channel.OTHER,
            category=category,
            source_category=row["category"],
            status=words.status(self.id, row["status"]),
            source_status=row["status"],
            received_at=received,
            updated_at=received,
            due_at=self.settings.sla.due_at(received, category, None),
            closed_at=None,
            location=cg.Location(province_code=row["province"] or None),
        )

    async def load_cases(self, local_ids: Sequence[str]) -> Mapping[str, cg.CaseRecord]:
        cases = await self._cases()
        return {i: cases[i] for i in local_ids if i in cases}

    async def search_cases(
        self,
        where: cg.CaseFilter,
        order: cg.CaseOrder,
        after: cg.Position | None,
        limit: int,
        fields: frozenset[str] | None = None,
    ) -> list[cg.CaseRecord]:
        found = [  # the filter, the caller's access and the keyset, all applied here
            case
            for case in (await self._cases()).values()
            if (where.access is None or where.access.allows(self.agency.code, case, ()))
            and where.matches(case)
            and order.is_after(case, after)
        ]
        return sorted(found, key=order.key, reverse=order.descending)[:limit]

    async def count_cases(self, where: cg.CaseFilter) -> int:
        return len(await self.search_cases(where, cg.CaseOrder(), None, 1_000_000))

    async def load_timelines(self, ids: Sequence[str]) -> Mapping[str, Sequence[cg.TimelineEntry]]:
        return {}  # the file keeps no history

    async def check(self) -> list[cg.Problem]:
        try:
            await self._cases()
        except cg.SourceError as exc:
            return [cg.Problem(self.id, "path", exc.detail, "check the file's path and columns")]
        return []
