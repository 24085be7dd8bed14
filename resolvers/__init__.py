"""The unified complaint graph: GraphQL types and resolvers. Knows sources only by interface."""

from resolvers.context import Context, Limits
from resolvers.directory import CategoryInfo, Directory
from resolvers.schema import build_schema, schema_sdl

__all__ = ["CategoryInfo", "Context", "Directory", "Limits", "build_schema", "schema_sdl"]
