"""What a source can hold, as its operator declares it: which sources a filter need not ask.

A Damrongdhama Center's database holds one province's complaints; asking it about another
province costs a round trip, a connection and gateway CPU for an answer known in advance to
be empty. A declared coverage is a promise about the data ("every case here with a province
has one of these"), not a filter: the gateway never applies it to rows, it only leaves out
sources whose promise rules a filter out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sources._query import CaseFilter


@dataclass(frozen=True, slots=True)
class Coverage:
    """Province codes and unified category codes a source's cases can have; None: any."""

    provinces: frozenset[str] | None = None
    categories: frozenset[str] | None = None

    def can_match(self, where: CaseFilter) -> bool:
        """False only when ``where`` asks for provinces or categories this source never holds.

        A case without a province or with an unmapped category matches no province or
        category condition, so leaving the source out never drops such a case either."""
        return not (
            (
                self.provinces is not None
                and where.province_codes is not None
                and where.province_codes.isdisjoint(self.provinces)
            )
            or (
                self.categories is not None
                and where.categories is not None
                and where.categories.isdisjoint(self.categories)
            )
        )


ANYTHING = Coverage()
"""A source that declares nothing may hold any case."""
