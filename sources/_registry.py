"""Which class implements which ``kind:`` of source: Python entry points, imported on first use.

Every kind, the built-in ones included, is an entry point of the group ``complaint_graph.sources``
(``pyproject.toml``: ``[project.entry-points."complaint_graph.sources"]``), so an agency's IT team
can ``pip install`` a kind of its own without forking, and core code never branches on a kind.
Listing the kinds reads only installed metadata: a kind's module is imported when a configuration
names it, so an unused kind's dependencies need not even be installed.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, cast

from sources._interface import Backend, Source
from sources._pushdown import complete
from sources._settings import SourceSettings

GROUP = "complaint_graph.sources"
"""The entry point group a distribution declares its kinds in (name = the ``kind:`` value)."""

BUILT_IN = frozenset({"sql", "rest", "open311", "graphql"})
"""The kinds complaint-graph itself declares; when none is installed the metadata is stale."""


class SourceClass(Protocol):
    settings_model: type[SourceSettings]

    def __call__(self, settings: SourceSettings) -> Source: ...


class BackendClass(Protocol):
    settings_model: type[SourceSettings]

    def __call__(self, settings: SourceSettings) -> Backend: ...


class _Completed:
    """A kind that implements only :class:`Backend`: each instance made is wrapped so that the
    core applies what it does not push down (:class:`sources._pushdown.Pushdown`)."""

    def __init__(self, backend: BackendClass) -> None:
        self.backend = backend
        self.settings_model = backend.settings_model

    def __call__(self, settings: SourceSettings) -> Source:
        return complete(self.backend(settings))


class UnknownKind(LookupError):
    """A configuration names a kind that no installed distribution declares, or one that fails
    to load."""


def kinds() -> dict[str, EntryPoint]:
    """The installed kinds by name, nothing imported; a name two distributions declare is an
    error rather than a silent pick by ``sys.path`` order."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        other = found.setdefault(point.name, point)
        if other.value != point.value:
            raise UnknownKind(
                f"kind {point.name!r} is declared twice: {_origin(other)} and {_origin(point)}; "
                "uninstall one of them"
            )
    return found


def source_class(kind: str) -> SourceClass:
    """The adapter class for ``kind``; raises :class:`UnknownKind` listing the known kinds."""
    installed = kinds()
    point = installed.get(kind)
    if point is None:
        known = ", ".join(sorted(installed)) or "none"
        advice = ""
        if not installed.keys() >= BUILT_IN:
            advice = (
                "; complaint-graph's own kinds are missing, so its installed metadata is out of "
                "date: reinstall it (pip install -e . in a checkout)"
            )
        raise UnknownKind(
            f"unknown kind {kind!r}; known kinds: {known}{advice}. A kind of another "
            f"distribution is found once that distribution is installed (entry point group "
            f"{GROUP!r})"
        )
    try:
        loaded = point.load()
    except Exception as exc:  # a plugin's own import failure, reported as configuration
        raise UnknownKind(
            f"kind {kind!r} ({_origin(point)}) could not be imported: {type(exc).__name__}: {exc}"
        ) from exc
    settings_model = getattr(loaded, "settings_model", None)
    if not (
        isinstance(loaded, type)
        and issubclass(loaded, Backend)
        and isinstance(settings_model, type)
        and issubclass(settings_model, SourceSettings)
    ):
        raise UnknownKind(
            f"kind {kind!r} ({_origin(point)}) is not a Backend (or Source) subclass with a "
            "settings_model derived from SourceSettings"
        )
    if issubclass(loaded, Source):
        return cast(SourceClass, loaded)  # settings_model checked just above
    return _Completed(cast(BackendClass, loaded))


def _origin(point: EntryPoint) -> str:
    dist = point.dist
    return f"{point.value} of {dist.name if dist is not None else 'an unnamed distribution'}"
