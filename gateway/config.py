"""The gateway's configuration file: read, expanded and validated once, at start-up.

Every error names where it is (``sources[1] (provincial).cases.tabel``), what is wrong and, where
it can, the fix. After loading, code receives typed settings objects, never raw dicts.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from gateway.auth import AuthSettings
from gateway.limits import LimitSettings
from gateway.observability import ObservabilitySettings
from gateway.outbox import WriteSettings
from gateway.routing import RoutingSettings
from resolvers.context import system_clock
from sources import Named, SlaSettings, SourceSettings, Strict, UnknownKind, source_class

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class CategorySettings(Named):
    """A unified category that agencies' own category codes map onto."""


class EventSettings(Strict):
    """Subscriptions: whether the gateway polls its sources for changes, and queue bounds."""

    enabled: bool = True
    queue_size: int = Field(default=1000, ge=1, description="Events a subscriber may lag.")
    batch: int = Field(default=500, ge=1, description="Changes read per poll of a source.")
    redis_url: str | None = Field(
        default=None, description="Share events between gateway replicas through this Redis."
    )
    redis_prefix: str = Field(default="complaint-graph", description="Redis key prefix.")


class ClockSettings(Strict):
    """``clock:``: when a request happens, as far as the graph is concerned.

    ``fixed`` pins every request's "now" (overdue cases, ages of open cases, ``asOf``) to one
    moment, so that answers over unchanging data are reproducible: the documentation's examples
    are checked against the demo that way. A production gateway leaves it unset."""

    fixed: AwareDatetime | None = Field(
        default=None, description="Every request's 'now', with its UTC offset; unset: the time."
    )

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else system_clock()


class FederationSettings(Strict):
    """``federation:``: serve the graph as an Apollo Federation v2 subgraph as well
    (``_service``, ``_entities``, ``@key`` on the entities; resolvers/federation.py). Off by
    default: a gateway that is nobody's subgraph answers neither field."""

    enabled: bool = Field(default=False, description="Answer _service and _entities.")


class _Document(Strict):
    categories: list[CategorySettings] = Field(min_length=1)
    sources: list[dict[str, Any]] = Field(min_length=1)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    writes: WriteSettings = Field(default_factory=WriteSettings)


@dataclass(frozen=True)
class GatewayConfig:
    categories: tuple[CategorySettings, ...]
    sources: tuple[SourceSettings, ...]
    limits: LimitSettings
    events: EventSettings = field(default_factory=EventSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    clock: ClockSettings = field(default_factory=ClockSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    writes: WriteSettings = field(default_factory=WriteSettings)  # the outbox (gateway/outbox.py)


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> GatewayConfig:
    """Read a YAML configuration file; raises :class:`ConfigError` naming every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from None
    return parse_config(text, environ if environ is not None else dict(os.environ), str(path))


def parse_config(text: str, environ: dict[str, str], origin: str = "config") -> GatewayConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{origin}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{origin}: expected a mapping with 'categories' and 'sources'"])
    problems: list[str] = []
    expanded = _expand(raw, environ, "", problems)
    if problems:
        raise ConfigError(problems)
    try:
        document = _Document.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, _Document, "")) from None
    sources = [_source(i, raw_source, problems) for i, raw_source in enumerate(document.sources)]
    valid = [
        source.model_copy(update={"sla": source.sla.over(document.sla)})
        for source in sources
        if source is not None
    ]
    problems.extend(_cross_checks(document, valid))
    if problems:
        raise ConfigError(problems)
    return GatewayConfig(
        tuple(document.categories),
        tuple(valid),
        document.limits,
        document.events,
        observability=document.observability,
        auth=document.auth,
        clock=document.clock,
        federation=document.federation,
        writes=document.writes,
    )


def _source(index: int, raw: dict[str, Any], problems: list[str]) -> SourceSettings | None:
    where = f"sources[{index}]" + (f" ({raw['id']})" if isinstance(raw.get("id"), str) else "")
    kind = raw.get("kind")
    if not isinstance(kind, str):
        problems.append(f"{where}.kind: missing; say which kind of backend this is (e.g. sql)")
        return None
    try:
        model = source_class(kind).settings_model
    except UnknownKind as exc:
        problems.append(f"{where}.kind: {exc}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_describe(exc, model, where + "."))
        return None


def _cross_checks(document: _Document, sources: list[SourceSettings]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    declared = {category.code for category in document.categories}
    agencies: dict[str, SourceSettings] = {}
    for code in document.sla.categories:
        if code not in declared:
            problems.append(f"sla.categories.{code}: not declared under categories")
    for source in sources:
        if source.id in seen:
            problems.append(f"sources ({source.id}).id: used twice; source ids must be unique")
        seen.add(source.id)
        for code in source.sla.categories:
            if code not in declared and code not in document.sla.categories:
                problems.append(
                    f"sources ({source.id}).sla.categories.{code}: not declared under categories"
                )
        for native, code in source.vocabulary.categories.items():
            if code not in declared:
                problems.append(
                    f"sources ({source.id}).vocabulary.categories.{native}: maps to {code!r}, "
                    f"which is not declared under categories ({', '.join(sorted(declared))})"
                )
        other = agencies.setdefault(source.agency.code, source)
        if other.agency != source.agency:
            problems.append(
                f"sources ({source.id}).agency: code {source.agency.code!r} is also used by "
                f"source {other.id!r} with different names; give one agency one name"
            )
    problems.extend(_routing_checks(document.writes.routing, declared, agencies))
    return problems


def _routing_checks(
    routing: RoutingSettings, declared: set[str], agencies: dict[str, SourceSettings]
) -> list[str]:
    """Every agency a routing rule names is a source's that takes writes; every category
    is declared: a complaint routed nowhere is found at start-up, not by a citizen."""
    problems: list[str] = []
    for where, code in routing.agencies():
        source = agencies.get(code)
        if source is None:
            problems.append(
                f"{where}: no source has agency {code!r} ({', '.join(sorted(agencies))})"
            )
        elif getattr(source, "writes", None) is None:
            problems.append(
                f"{where}: agency {code}'s source {source.id!r} has no writes: section, so it "
                "cannot receive complaints"
            )
    for index, rule in enumerate(routing.rules):
        for code in rule.categories:
            if code not in declared:
                problems.append(
                    f"writes.routing.rules[{index}].categories: {code!r} is not declared "
                    "under categories"
                )
        for province in rule.provinces:
            if not (len(province) == 2 and province.isdigit()):
                problems.append(
                    f"writes.routing.rules[{index}].provinces: {province!r} is not a "
                    "2-digit province code"
                )
    return problems


def _expand(value: Any, environ: dict[str, str], where: str, problems: list[str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string, so secrets stay out of files."""
    if isinstance(value, dict):
        return {
            k: _expand(v, environ, f"{where}.{k}" if where else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _expand(v, environ, f"{where}[{i}]{_named(v)}", problems) for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(
            f"{where}: environment variable {name} is not set; set it or write ${{{name}:-default}}"
        )
        return ""

    return _ENV_REFERENCE.sub(substitute, value)


def _named(item: Any) -> str:
    """' (id)' for a list entry with an id (a source), as every other error names it."""
    ident = item.get("id") if isinstance(item, dict) else None
    return f" ({ident})" if isinstance(ident, str) else ""


def _describe(exc: ValidationError, model: type[BaseModel], prefix: str) -> list[str]:
    lines = []
    for error in exc.errors():
        location = _location(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key" + _suggestion(model, error["loc"])
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{prefix}{location}: {message}")
    return lines


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _suggestion(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """'did you mean …' from the keys the model at that depth accepts."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        current = _model_in(annotation)
    if current is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(current.model_fields), n=1)
    return (
        f"; did you mean {close[0]!r}?"
        if close
        else f"; known keys: {', '.join(current.model_fields)}"
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
