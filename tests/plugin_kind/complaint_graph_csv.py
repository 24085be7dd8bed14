"""``kind: csv``: an agency that publishes its complaints as a CSV file, one row per case.

Only a ``Backend``: the core filters, orders, pages and judges access over every case it answers."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import sources as cg


class CsvSettings(cg.SourceSettings):
    path: Path  # id, title, description, channel, category, status, province, district,
    # received_at, updated_at, due_at, closed_at (ISO 8601 with offset; the last two may be empty)


class CsvSource(cg.Backend):
    settings_model = CsvSettings
    kind = "csv"

    def __init__(self, settings: cg.SourceSettings) -> None:
        assert isinstance(settings, CsvSettings)
        self.settings, self.id, self.agency = settings, settings.id, settings.agency.info()

    @property
    def capabilities(self) -> cg.Capabilities:  # nothing done here: the core does it all
        return cg.Capabilities(
            frozenset(), watches_changes=False, applies_access=False, orders_pages=False
        )

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
        when = {c: datetime.fromisoformat(v) for c, v in row.items() if c.endswith("_at") and v}
        words, received = self.settings.vocabulary, when["received_at"]
        category = words.category(self.id, row["category"])
        return cg.CaseRecord(
            source=self.id,
            local_id=row["id"],
            reference_number=row["id"],
            title=row["title"],
            description=row["description"],
            channel=words.channel(self.id, row["channel"]),
            category=category,
            source_category=row["category"],
            status=words.status(self.id, row["status"]),
            source_status=row["status"],
            received_at=received,
            updated_at=when["updated_at"],
            due_at=self.settings.sla.due_at(received, category, when.get("due_at")),
            closed_at=when.get("closed_at"),
            location=cg.Location(province_code=row["province"], district_code=row["district"]),
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
        return list((await self._cases()).values())  # every case: the core keeps what passes

    async def count_cases(self, where: cg.CaseFilter) -> int:
        return len(await self._cases())  # asked only when nothing is to be filtered out

    async def load_timelines(self, ids: Sequence[str]) -> Mapping[str, Sequence[cg.TimelineEntry]]:
        return {}  # the file keeps no history

    async def check(self) -> list[cg.Problem]:
        try:
            await self._cases()
        except cg.SourceError as exc:
            return [cg.Problem(self.id, "path", exc.detail, "check the file's path and columns")]
        return []
