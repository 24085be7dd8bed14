"""Print pyproject.toml's dependencies (and every extra's) without their version ranges.

``make test-latest`` installs these names, so pip picks the newest release of each: a release
that breaks the project shows up there before anyone widens a range in pyproject.toml.
Standard library only: it runs in a fresh venv before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)")


def unbounded(pyproject: Path) -> list[str]:
    """Each requirement's name and extras, e.g. ``uvicorn[standard]``, in declaration order."""
    project = tomllib.loads(pyproject.read_text())["project"]
    own = project["name"]  # an extra naming another of the project's own extras
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    names: list[str] = []
    for requirement in requirements:
        match = _NAME.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        if match.group(1).split("[")[0] == own:
            continue  # that extra's requirements are listed with it
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


if __name__ == "__main__":
    print("\n".join(unbounded(Path(sys.argv[1]))))
