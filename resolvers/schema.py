"""The complaint graph's schema, built from the types in this package."""

from __future__ import annotations

import strawberry

from resolvers.errors import ErrorTranslation
from resolvers.query import Query


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, extensions=[ErrorTranslation])


def schema_sdl() -> str:
    """The schema as SDL, exactly as checked in at ``schema.graphql``."""
    return build_schema().as_str() + "\n"
