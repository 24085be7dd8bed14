"""GraphiQL without the internet: the page's scripts and styles served by the gateway itself.

strawberry's GraphiQL page loads React, ReactDOM, js-cookie, GraphiQL and its explorer plugin
from unpkg.com, each pinned by version and by a Subresource Integrity hash. On a network with no
internet that page stays at "Loading...". The same files are kept in ``static/graphiql/``
(``<package>@<version>/<path>``, with each package's licence beside them) and the page points
there; the integrity hashes stay, so the browser still checks every file against the pin.

``make graphiql-assets`` (``python -m gateway.graphiql_assets``) fetches them again with npm
from the registry, for the versions the installed strawberry's page names, and checks each
against its hash: run it after upgrading strawberry. Until then an asset the page names but
``static/graphiql/`` lacks is still loaded from unpkg.com, and a warning says so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("complaint_graph.graphiql")

DIRECTORY = Path(__file__).with_name("static") / "graphiql"
URL_PREFIX = "/static/graphiql"  # gateway/dashboard.py mounts static/ at /static
CDN = "https://unpkg.com/"
_ASSET = re.compile(r'(?:src|href)="https://unpkg\.com/([^"]+)"\s+integrity="([^"]+)"')
_SPEC = re.compile(r"((?:@[^/]+/)?[^/@]+)@([^/]+)/(.+)")
LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license")
LICENCE_FROM = {"@graphiql/plugin-explorer": "graphiql"}
"""Packages that ship no licence file, and the package of the same project (graphql/graphiql,
the same MIT licence and copyright holders) whose licence text is kept for them."""


@dataclass(frozen=True)
class Asset:
    """One file the page loads from the CDN."""

    package: str
    version: str
    path: str
    integrity: str

    @property
    def cdn_url(self) -> str:
        return f"{CDN}{self.package}@{self.version}/{self.path}"

    @property
    def local(self) -> Path:
        return DIRECTORY / f"{self.package}@{self.version}" / self.path

    @property
    def local_url(self) -> str:
        return f"{URL_PREFIX}/{self.package}@{self.version}/{self.path}"


def assets(template: str) -> list[Asset]:
    """The CDN assets of a GraphiQL page, in the order it loads them."""
    found = []
    for url, integrity in _ASSET.findall(template):
        spec = _SPEC.fullmatch(url)
        if spec is None:
            raise ValueError(f"an unpkg URL without package@version: {url}")
        found.append(Asset(spec.group(1), spec.group(2), spec.group(3), integrity))
    return found


def offline(template: str) -> str:
    """The page with every vendored asset loaded from the gateway instead of the CDN."""
    for asset in assets(template):
        if asset.local.is_file():
            template = template.replace(asset.cdn_url, asset.local_url)
        else:
            log.warning(
                "GraphiQL asset %s is not vendored (make graphiql-assets): loaded from %s",
                asset.local_url,
                CDN,
            )
    return template


def sri(content: bytes, algorithm: str) -> str:
    digest = hashlib.new(algorithm, content).digest()
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


def vendor(template: str, directory: Path = DIRECTORY) -> list[Path]:
    """Fetch every asset of ``template`` with ``npm pack``, check it against the page's hash,
    and keep it with its package's licence under ``directory``. Returns the files written."""
    written: list[Path] = []
    wanted = assets(template)
    packages = {(a.package, a.version) for a in wanted}
    with tempfile.TemporaryDirectory() as scratch:
        tarballs = {(p, v): _pack(p, v, Path(scratch)) for p, v in sorted(packages)}
        for asset in wanted:
            content = _member(tarballs[(asset.package, asset.version)], asset.path)
            algorithm = asset.integrity.split("-", 1)[0]
            if sri(content, algorithm) != asset.integrity:
                raise ValueError(f"{asset.cdn_url}: the registry's file does not match the page")
            written.append(
                _write(directory / f"{asset.package}@{asset.version}" / asset.path, content)
            )
        for package, version in sorted(packages):
            licence = _licence(tarballs, package, version, packages)
            target = directory / f"{package}@{version}" / "LICENSE"
            written.append(_write(target, licence))
    return written


def _version_of(package: str, packages: set[tuple[str, str]]) -> str:
    """The version of ``package`` the page loads too (the source of another's licence)."""
    versions = sorted(v for p, v in packages if p == package)
    if not versions:
        raise ValueError(f"the page no longer loads {package}, whose licence text is kept")
    return versions[-1]


def _pack(package: str, version: str, scratch: Path) -> bytes:
    """The package's tarball from the npm registry (``npm pack``, the ordinary client)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch the GraphiQL assets")
    done = subprocess.run(
        [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", str(scratch)],
        capture_output=True,
        text=True,
        check=True,
    )
    filename = str(json.loads(done.stdout)[0]["filename"])  # e.g. graphiql-3.8.3.tgz
    return (scratch / filename).read_bytes()


def _member(tarball: bytes, path: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        member = archive.extractfile(f"package/{path}")
        if member is None:
            raise ValueError(f"package/{path} is not a file")
        return member.read()


def _licence(
    tarballs: dict[tuple[str, str], bytes],
    package: str,
    version: str,
    packages: set[tuple[str, str]],
) -> bytes:
    for name in LICENCE_NAMES:
        try:
            return _member(tarballs[(package, version)], name)
        except KeyError:
            continue
    if package in LICENCE_FROM:
        source = LICENCE_FROM[package]
        text = _licence(tarballs, source, _version_of(source, packages), packages)
        note = (
            f"{package} {version} is MIT licensed (its package.json) and ships no licence "
            f"file; this is the licence text of {source}, the same project (graphql/graphiql)."
            "\n\n"
        )
        return note.encode() + text
    raise ValueError(f"{package}@{version} ships no licence file")


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def main() -> int:
    """Vendor the assets of the installed strawberry's GraphiQL page into static/graphiql/."""
    from strawberry.http.ides import get_graphql_ide_html

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in vendor(get_graphql_ide_html("graphiql")):
        print(path.relative_to(DIRECTORY.parent.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
