"""requirements.lock and requirements-runtime.lock agree with pyproject.toml: every declared
dependency (and extra) is pinned, inside its declared range, with the same pin in both locks.
A range changed without ``make lock`` fails here, not on a fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$", re.M)


def pins(lock: str) -> dict[str, str]:
    """The lock's pins that apply here (uv's universal locks carry a marker per platform)."""
    found: dict[str, str] = {}
    environment = default_environment()
    for name, version, marker in PIN.findall((ROOT / lock).read_text("utf-8")):
        if marker and not Requirement(f"x; {marker}").marker.evaluate(environment):
            continue
        found[canonicalize_name(name)] = version
    return found


def declared() -> tuple[list[Requirement], list[Requirement]]:
    """The runtime requirements and the extras' (an extra naming another of the project's own
    extras, as ``test`` names ``mysql``, stands for that extra's, listed with it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    runtime = [Requirement(text) for text in project["dependencies"]]
    extras = [
        Requirement(text) for group in project["optional-dependencies"].values() for text in group
    ]
    own = canonicalize_name(project["name"])
    return runtime, [r for r in extras if canonicalize_name(r.name) != own]


def test_every_declared_dependency_is_pinned_inside_its_range() -> None:
    runtime, extras = declared()
    locked = pins("requirements.lock")
    for requirement in [*runtime, *extras]:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{name}=={locked[name]} is outside {requirement.specifier}: run make lock"
        )
        assert requirement.specifier, f"{name} has no range in pyproject.toml"
        assert any(s.operator == "<" for s in requirement.specifier), f"{name}: no upper bound"


def test_the_runtime_lock_is_the_same_pins_without_the_test_tools() -> None:
    runtime, _ = declared()
    locked, runtime_locked = pins("requirements.lock"), pins("requirements-runtime.lock")
    for requirement in runtime:
        name = canonicalize_name(requirement.name)
        assert runtime_locked.get(name) == locked[name], f"{name}: run make lock"
    assert set(runtime_locked) <= set(locked)
    assert runtime_locked.items() <= locked.items()
    assert "pytest" not in runtime_locked and "mypy" not in runtime_locked
