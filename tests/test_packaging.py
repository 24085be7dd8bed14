"""Our packaging as pip builds it: no deprecation warnings from setuptools (the licence is an
SPDX expression with its file, PEP 639), and the demo's embedded PostgreSQL (pgserver) only in
the ``demo`` extra, which ``test`` includes, never in a production install or the image."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

from gateway.graphiql_assets import DIRECTORY, assets

ROOT = Path(__file__).parents[1]
PACKAGES = ("gateway", "resolvers", "sources", "samples")


def build_wheel(tmp_path: Path) -> tuple[list[str], str, str]:
    """The files and METADATA of the wheel setuptools builds of a copy of the project (a build
    in the worktree would leave build/ and an egg-info behind), and everything it printed on
    the way, warnings included."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path / "metadata"
    out.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",  # every warning printed, as a build front end shows them
            "-c",
            "import sys; from setuptools import build_meta as backend; "
            "print(backend.build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    with zipfile.ZipFile(out / done.stdout.strip().splitlines()[-1]) as wheel:
        names = wheel.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return names, wheel.read(metadata).decode(), done.stdout + done.stderr


def test_setuptools_builds_our_wheel_without_a_deprecation_warning(tmp_path: Path) -> None:
    names, metadata, output = build_wheel(tmp_path)
    assert "SetuptoolsWarning" not in output and "eprecat" not in output, output
    fields = Parser().parsestr(metadata)
    assert fields["License-Expression"] == "Apache-2.0"
    assert fields.get_all("License-File") == ["LICENSE"]
    assert "demo" in (fields.get_all("Provides-Extra") or [])

    requires = fields.get_all("Requires-Dist") or []
    pgserver = [r for r in requires if r.startswith("pgserver")]
    assert pgserver and all('extra == "demo"' in r for r in pgserver), pgserver
    assert any(r.startswith("complaint-graph[demo]") and 'extra == "test"' in r for r in requires)
    # GraphiQL's vendored assets and their licences travel in the wheel (package data)
    for asset in assets(get_graphql_ide_html("graphiql")):
        licence = DIRECTORY / f"{asset.package}@{asset.version}" / "LICENSE"
        assert asset.local.relative_to(ROOT).as_posix() in names
        assert licence.relative_to(ROOT).as_posix() in names


def test_the_container_image_installs_no_extra() -> None:
    installs = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if "pip install" in line
    ]
    assert installs and all("[" not in line for line in installs), installs
    assert "LICENSE" in (ROOT / "Dockerfile").read_text()  # license-files needs it in the build
