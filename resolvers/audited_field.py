"""Which field an audit entry is written for, so that a shared resolution can answer a reveal
that could not be audited as the field itself would have.

A subscription group (resolvers/subscription_groups.py) resolves an event once and writes its
audit entries afterwards, once per member. A member whose entries cannot be written must get
what a subscriber resolving alone gets: the field that revealed (or denied) null with its
``AUDIT_UNAVAILABLE`` error, the rest of the event as it is. The resolvers that audit say here,
around their audit calls, which field that is; the group's recorder reads it with each entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from graphql.pyutils import Path


@dataclass(frozen=True, slots=True)
class AuditedField:
    """The field whose resolution wrote the entry (its error goes there) and the field that is
    null when it fails: itself, or its nullable parent for a non-null field."""

    error_at: Path
    null_at: Path


AUDITED_FIELD: ContextVar[AuditedField | None] = ContextVar("audited_field", default=None)


@contextmanager
def audited_for(path: Path, null_at: Path | None = None) -> Iterator[None]:
    """Audit entries written inside are for the field at ``path``; ``null_at``: where a failed
    entry's null lands (default: that field)."""
    token = AUDITED_FIELD.set(AuditedField(path, path if null_at is None else null_at))
    try:
        yield
    finally:
        AUDITED_FIELD.reset(token)
