"""Which module implements which ``kind:`` of source, imported only when a config uses it.

Core code never branches on a kind; a new kind of backend is one new module and one line here.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from sources._interface import Source
from sources._settings import SourceSettings

KINDS: dict[str, str] = {
    "sql": "sources.sql:SqlSource",
    "rest": "sources.rest:RestSource",
    "open311": "sources.open311:Open311Source",
}


class SourceClass(Protocol):
    settings_model: type[SourceSettings]

    def __call__(self, settings: SourceSettings) -> Source: ...


class UnknownKind(LookupError):
    pass


def source_class(kind: str) -> SourceClass:
    """The adapter class for ``kind``; raises :class:`UnknownKind` listing the known kinds."""
    try:
        target = KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise UnknownKind(f"unknown kind {kind!r}; known kinds: {known}") from None
    module_name, _, attribute = target.partition(":")
    cls: SourceClass = getattr(importlib.import_module(module_name), attribute)
    return cls
