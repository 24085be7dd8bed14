"""``complaint-graph check`` and ``schema``: what an operator sees before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from resolvers import schema_sdl
from tests.conftest import DemoData


def write_demo_config(
    demo_data: DemoData, path: Path, replace: tuple[str, str] | None = None
) -> Path:
    from importlib.resources import files

    from gateway.demo import DEMO_PMOC_KEY, asyncpg_url

    text = files("samples").joinpath("config.yaml").read_text(encoding="utf-8")
    text = text.replace("${DEMO_DAMRONGDHAMA_URL}", asyncpg_url(demo_data.postgres_dsn))
    text = text.replace("${DEMO_PROVINCIAL_URL}", f"sqlite+aiosqlite:///{demo_data.sqlite_path}")
    text = text.replace("${DEMO_PMOC_URL}", demo_data.pmoc_url)
    text = text.replace("${DEMO_PMOC_KEY}", DEMO_PMOC_KEY)
    text = text.replace("${DEMO_TRAFFY_URL}", f"{demo_data.traffy_url}/open311/v2")
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    path.write_text(text, encoding="utf-8")
    return path


def test_check_passes_on_the_demo_agencies(
    demo_data: DemoData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_demo_config(demo_data, tmp_path / "demo.yaml")
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "damrongdhama: ok" in out and "khonkaen-office: ok" in out and "pmoc-1111: ok" in out
    assert "traffy-city: ok" in out


def test_check_prints_a_table_of_what_is_wrong(
    demo_data: DemoData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_demo_config(
        demo_data, tmp_path / "broken.yaml", ("title: subject", "title: subjekt")
    )
    assert main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    header, *rows = out.strip().splitlines()
    assert header.split() == ["source", "key", "problem", "fix"]
    assert any("cases.title" in row and "subjekt" in row and "subject" in row for row in rows)


def test_check_reports_an_unreachable_database_without_a_traceback(
    demo_data: DemoData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "down.yaml"
    write_demo_config(demo_data, config)
    text = config.read_text(encoding="utf-8")
    start = text.index("postgresql+asyncpg://")
    end = text.index("\n", start)
    config.write_text(text[:start] + "postgresql+asyncpg://postgres@127.0.0.1:1/x" + text[end:])
    assert main(["check", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert "damrongdhama" in captured.out and "unreachable" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_bad_config_exits_2_with_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("categories: []\nsources: []\n")
    assert main(["check", "--config", str(config)]) == 2
    assert "categories" in capsys.readouterr().err


def test_schema_command_prints_the_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema_sdl()
