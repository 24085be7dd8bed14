"""PostgreSQL LISTEN/NOTIFY: change signals from an agency database that allows triggers.

The triggers only say "something changed"; what changed is still read past the watermark, so a
lost notification costs latency, never an event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def libpq_dsn(url: str) -> str:
    """The asyncpg DSN for a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def checked(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain SQL identifier")
    return name


def trigger_sql(table: str, channel: str) -> str:
    """Statements that make every insert or update of ``table`` NOTIFY ``channel``."""
    table, channel = checked(table, "table"), checked(channel, "channel")
    function = f"complaint_graph_notify_{table}"
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{channel}', TG_TABLE_NAME);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS {function} ON {table};
CREATE TRIGGER {function} AFTER INSERT OR UPDATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION {function}();
"""


async def install_triggers(url: str, tables: list[str], channel: str) -> None:
    connection = await asyncpg.connect(libpq_dsn(url))
    try:
        async with connection.transaction():
            for table in dict.fromkeys(tables):
                await connection.execute(trigger_sql(table, channel))
    finally:
        await connection.close()


async def listen(url: str, channel: str, wake: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """LISTEN on ``channel`` over a dedicated connection; returns how to stop."""
    connection = await asyncpg.connect(libpq_dsn(url))

    def on_notify(*_: Any) -> None:
        wake()

    await connection.add_listener(checked(channel, "channel"), on_notify)

    async def stop() -> None:
        await connection.close()

    return stop
