"""Kinds are plugins: a third-party distribution installed with pip adds a ``kind:`` that a
configuration then uses, with no change to complaint-graph.

``tests/plugin_kind`` is that distribution (a CSV file agency); docs/contributors.md shows the
same code, which the first test holds it to.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from sources import Backend, Source, UnknownKind, source_class
from sources._registry import BUILT_IN, GROUP, kinds
from tests.conftest import serving

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugin_kind"
MODULE = "complaint_graph_csv"

CONFIG = """
categories:
  - {code: ROADS, name_th: ถนน, name_en: Roads}
  - {code: LIGHT, name_th: ไฟฟ้า, name_en: Light}
auth: {key_store: "sqlite+aiosqlite:///KEYS", anonymous: {role: inspector}}
sources:
  - id: town-csv
    kind: csv
    agency: {code: TOWN, name_th: เทศบาลตำบล, name_en: Town}
    path: PATH
    vocabulary:
      statuses: {ใหม่: RECEIVED, เสร็จ: RESOLVED}
      categories: {ถนน: ROADS, ไฟ: LIGHT}
      channels: {โทร: PHONE, เว็บ: WEB}
"""

ROWS = [  # id, title, description, channel, category, status, province, district, received
    ("T1", "ถนนเป็นหลุม", "หน้าวัด", "โทร", "ถนน", "ใหม่", "40", "4001", "2026-03-01T09:00"),
    ("T2", "ไฟดับ", "ซอย 3", "เว็บ", "ไฟ", "เสร็จ", "40", "4001", "2026-03-02T09:00"),
    ("T3", "ถนนทรุด", "ทางเข้าตลาด", "โทร", "ถนน", "ใหม่", "41", "4101", "2026-03-03T09:00"),
    ("T4", "ไฟกระพริบ", "สี่แยก", "เว็บ", "ไฟ", "ใหม่", "40", "4002", "2026-03-04T09:00"),
    ("T5", "ถนนลื่น", "สะพาน", "โทร", "ถนน", "เสร็จ", "40", "4002", "2026-03-05T09:00"),
]

HEADER = (
    "id,title,description,channel,category,status,province,district,"
    "received_at,updated_at,due_at,closed_at"
)

PAGE = """
query Page($after: String, $filter: CaseFilterInput) {
  cases(first: 2, after: $after, filter: $filter) {
    edges { node { referenceNumber title status category { code } source { id } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}
"""


def _code_block(text: str, language: str) -> list[str]:
    blocks, _, rest = [], "", text
    fence = f"```{language}\n"
    while fence in rest:
        _, _, rest = rest.partition(fence)
        block, _, rest = rest.partition("```\n")
        blocks.append(block)
    return blocks


def test_the_documented_kind_is_the_tested_one() -> None:
    doc = (ROOT / "docs" / "contributors.md").read_text(encoding="utf-8")
    code = (PLUGIN / f"{MODULE}.py").read_text(encoding="utf-8")
    assert code in _code_block(doc, "python")
    assert len(code.splitlines()) < 100
    project = (PLUGIN / "pyproject.toml").read_text(encoding="utf-8")
    entry_points = project[project.index('[project.entry-points."complaint_graph.sources"]') :]
    assert any(entry_points in block for block in _code_block(doc, "toml"))


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed into a directory of its own as pip installs a wheel into
    site-packages: its module, and a ``.dist-info`` whose ``entry_points.txt`` is what its
    ``pyproject.toml`` declares (read from there, not restated). Written directly rather than
    built by pip, which would need setuptools and wheel in the test environment."""
    site = tmp_path_factory.mktemp("plugin-site")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    shutil.copy(PLUGIN / f"{MODULE}.py", site)
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
    groups = project["entry-points"]
    (dist_info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
            for group, points in groups.items()
        ),
        encoding="utf-8",
    )
    return site


@pytest.fixture
def installed(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin's directory on ``sys.path`` for one test, its module forgotten afterwards."""
    monkeypatch.syspath_prepend(str(plugin_site))
    yield plugin_site
    sys.modules.pop(MODULE, None)


def _config(tmp_path: Path, rows: list[tuple[str, ...]] = ROWS) -> str:
    """The file with these rows, each updated when received and with no due or closing time."""
    lines = [HEADER]
    lines += [",".join((*row[:-1], f"{row[-1]}+07:00", f"{row[-1]}+07:00", "", "")) for row in rows]
    path = tmp_path / "town.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return CONFIG.replace("PATH", str(path)).replace("KEYS", str(tmp_path / "keys.sqlite"))


def test_a_kind_not_installed_is_named_with_the_known_ones(tmp_path: Path) -> None:
    assert MODULE not in sys.modules
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(tmp_path), {})
    (problem,) = raised.value.problems
    assert problem.startswith("sources[0] (town-csv).kind: unknown kind 'csv'; known kinds: ")
    assert all(kind in problem for kind in BUILT_IN)
    assert GROUP in problem


async def test_an_installed_kind_serves_cases_by_configuration_alone(
    installed: Path, tmp_path: Path
) -> None:
    assert "csv" in kinds() and MODULE not in sys.modules  # listed, not imported
    config = parse_config(_config(tmp_path), {})
    assert MODULE in sys.modules  # imported once a configuration names it
    kind = sys.modules[MODULE].CsvSource
    assert issubclass(kind, Backend) and not issubclass(kind, Source)  # the core does the rest
    seen: list[str] = []
    cursor = None
    async with serving(config) as gateway:
        for _ in range(3):
            variables = {"after": cursor, "filter": {"status": ["RECEIVED"]}}
            body = await gateway.query(PAGE, variables)
            assert "errors" not in body, body
            cases = body["data"]["cases"]
            assert cases["totalCount"] == 3
            seen += [edge["node"]["referenceNumber"] for edge in cases["edges"]]
            cursor = cases["pageInfo"]["endCursor"]
            if not cases["pageInfo"]["hasNextPage"]:
                break
        node = (await gateway.query(PAGE, {"filter": {"category": ["LIGHT"]}}))["data"]
    assert seen == ["T4", "T3", "T1"]  # newest first, across two pages
    first = node["cases"]["edges"][0]["node"]
    assert first == {
        "referenceNumber": "T4",
        "title": "ไฟกระพริบ",
        "status": "RECEIVED",
        "category": {"code": "LIGHT"},
        "source": {"id": "town-csv"},
    }


async def test_a_broken_plugin_file_is_an_error_naming_the_source(
    installed: Path, tmp_path: Path
) -> None:
    config = parse_config(
        _config(tmp_path, [("T9", "ไม่มีเวลา", "", "โทร", "ถนน", "ใหม่", "40", "4001", "เมื่อวาน")]),
        {},
    )
    async with serving(config) as gateway:
        body = await gateway.query(PAGE, {})
    (error,) = body["errors"]
    assert "town-csv" in error["message"] and "garbles" in error["message"]


def test_two_distributions_declaring_one_kind_is_an_error(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rival = tmp_path / "rival-1.0.dist-info"
    rival.mkdir()
    (rival / "METADATA").write_text("Metadata-Version: 2.1\nName: rival\nVersion: 1.0\n")
    (rival / "entry_points.txt").write_text(f"[{GROUP}]\ncsv = rival:CsvSource\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UnknownKind, match=r"kind 'csv' is declared twice: .* and .*; uninstall"):
        source_class("csv")


def test_stale_metadata_is_named_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """An install whose metadata predates the entry points (pip install -e . not rerun after
    pulling them) lists no built-in kind: the error says so rather than only 'unknown'."""
    monkeypatch.setattr("sources._registry.entry_points", lambda group: [])
    with pytest.raises(UnknownKind, match=r"known kinds: none; .* reinstall it \(pip install -e"):
        source_class("sql")
