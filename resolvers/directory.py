"""Agencies, categories and source systems: reference data known from configuration."""

from __future__ import annotations

from typing import NamedTuple

from sources import AgencyInfo, Federation


class CategoryInfo(NamedTuple):
    """A unified category as configured; a tuple for the reason ``AgencyInfo`` is one."""

    code: str
    name_th: str
    name_en: str


class Directory:
    """Lookups that never cost a round trip: everything here comes from the config."""

    def __init__(self, federation: Federation, categories: list[CategoryInfo]) -> None:
        self.categories = {category.code: category for category in categories}
        self.agencies: dict[str, AgencyInfo] = {}
        self.sources_by_agency: dict[str, list[str]] = {}
        self.agency_of_source = {s.id: s.agency for s in federation.sources.values()}
        for source in federation.sources.values():
            self.agencies.setdefault(source.agency.code, source.agency)
            self.sources_by_agency.setdefault(source.agency.code, []).append(source.id)

    def source_for_agency(self, code: str) -> str | None:
        """The one source of an agency; None when it has none, or several (ambiguous)."""
        found = self.sources_by_agency.get(code, [])
        return found[0] if len(found) == 1 else None
