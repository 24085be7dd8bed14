"""The checked-in schema.graphql is exactly the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from resolvers import schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_sdl(), (
        "schema.graphql is out of date: run `make schema` and commit the result"
    )
