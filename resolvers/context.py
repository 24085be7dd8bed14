"""What every resolver of one request can reach: the sources, the loaders, the directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from graphql import GraphQLError
from strawberry.types import Info

from resolvers.directory import Directory
from resolvers.loaders import Loaders
from sources import Federation


@dataclass
class Limits:
    max_page_size: int = 500
    default_page_size: int = 20


@dataclass
class Context:
    """Made fresh per request, so loaders never share a cache across callers."""

    federation: Federation
    directory: Directory
    limits: Limits
    loaders: Loaders
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    partial_errors: list[GraphQLError] = field(default_factory=list)

    @classmethod
    def for_request(cls, federation: Federation, directory: Directory, limits: Limits) -> Context:
        return cls(federation, directory, limits, Loaders(federation))


GraphInfo = Info[Context, None]
"""What resolvers receive as ``info``: typed, so ``info.context`` is a :class:`Context`."""
