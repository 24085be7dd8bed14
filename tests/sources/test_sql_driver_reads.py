"""What the asyncpg path keeps compiled: statements built once and reused, not those built for
one request with their values bound (a filtered group's union over a hundred sources, kept
256 at a time, held hundreds of MB: ``bench scale``'s peak RSS)."""

from __future__ import annotations

from sqlalchemy import column, select, table
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from sources.sql._driver import DriverReads

CASES = table("cases", column("id"), column("status"))


def test_a_statement_with_bound_values_is_kept_only_when_asked() -> None:
    reads = DriverReads(PGDialect_asyncpg())
    bound = select(CASES.c.id).where(CASES.c.status == "OPEN")
    plain = select(CASES.c.id).where(CASES.c.status.is_(None))
    assert reads.render(bound, keep_bound=False) == (
        "SELECT cases.id \nFROM cases \nWHERE cases.status = $1::VARCHAR",
        ["OPEN"],
    )
    assert reads.render(plain, keep_bound=False) is not None
    assert [kept.statement for kept in reads._rendered.values()] == [plain]
    reads.render(bound)  # by default: kept, as the statements a source builds once
    assert [kept.statement for kept in reads._rendered.values()] == [plain, bound]
