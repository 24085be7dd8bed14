"""Fixtures for the gateway tests that change an agency's data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from samples import damrongdhama
from tests.postgres import create_database, drop_database, run


@pytest.fixture
def agency_dsn(postgres_admin_dsn: str) -> Iterator[str]:
    """A Damrongdhama database of its own: these tests change its rows."""
    dsn = run(create_database(postgres_admin_dsn))
    run(damrongdhama.create_and_load(dsn, count=60))
    yield dsn
    run(drop_database(postgres_admin_dsn, dsn))
