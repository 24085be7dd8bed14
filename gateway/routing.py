"""``writes.routing``: which agency a new complaint goes to, by its category and province.

Rules are read in order and the first that matches wins; a rule without ``categories`` (or
without ``provinces``) matches any. When none matches, ``default`` takes the complaint; with
no default the filing is refused (NO_ROUTE) and the caller must name an agency. The agencies
named are checked against the sources at start-up (gateway/config.py).
"""

from __future__ import annotations

from pydantic import Field

from resolvers.writes import Route
from sources._settings import Strict


class RouteRule(Strict):
    """One rule: complaints of these categories in these provinces go to ``agency``."""

    categories: list[str] = Field(
        default_factory=list, description="Unified category codes; empty: any category."
    )
    provinces: list[str] = Field(
        default_factory=list, description="Province codes (2 digits); empty: any province."
    )
    agency: str = Field(description="The receiving agency's code.")

    def matches(self, category: str, province: str | None) -> bool:
        if self.categories and category not in self.categories:
            return False
        return not self.provinces or province in self.provinces


class RoutingSettings(Strict):
    """``writes.routing``: rules in order, then a default."""

    rules: list[RouteRule] = Field(default_factory=list)
    default: str | None = Field(
        default=None, description="The agency taking what no rule matches; absent: NO_ROUTE."
    )

    def route(self, category: str, province: str | None) -> Route | None:
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(category, province):
                return Route(rule.agency, f"rule {number}")
        return Route(self.default, "default") if self.default is not None else None

    def agencies(self) -> list[tuple[str, str]]:
        """(where in the configuration, agency code) of every agency named, for checking."""
        named = [(f"writes.routing.rules[{i}].agency", r.agency) for i, r in enumerate(self.rules)]
        if self.default is not None:
            named.append(("writes.routing.default", self.default))
        return named
