"""Configuration errors name the source, the key and the fix; good configs become typed settings."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config, parse_config
from sources.sql import SqlSettings

VALID = """
categories:
  - {code: ROADS, name_th: ถนน, name_en: Roads}
sources:
  - id: town
    kind: sql
    agency: {code: TOWN, name_th: เทศบาล, name_en: Town}
    url: ${TOWN_DB}
    cases:
      table: cases
      id: id
      reference_number: ref
      title: title
      description: body
      channel: channel
      category: category
      status: status
      received_at: received
    vocabulary:
      statuses: {NEW: RECEIVED, DONE: RESOLVED}
      categories: {R: ROADS}
      channels: {WEB: WEB}
"""


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, environ if environ is not None else {"TOWN_DB": "sqlite+aiosqlite:///x"})
    return raised.value.problems


def test_valid_config_becomes_typed_settings_with_env_expanded() -> None:
    config = parse_config(VALID, {"TOWN_DB": "sqlite+aiosqlite:///town.db"})
    (source,) = config.sources
    assert isinstance(source, SqlSettings)
    assert source.url == "sqlite+aiosqlite:///town.db"
    assert source.vocabulary.statuses["DONE"].value == "RESOLVED"


def test_missing_environment_variable_names_key_and_variable() -> None:
    (problem,) = problems_of(VALID, environ={})
    assert "sources[0] (town).url" in problem
    assert "TOWN_DB" in problem


def test_env_default_is_used_when_variable_unset() -> None:
    text = VALID.replace("${TOWN_DB}", "${TOWN_DB:-sqlite+aiosqlite:///fallback.db}")
    (source,) = parse_config(text, {}).sources
    assert isinstance(source, SqlSettings)
    assert source.url.endswith("fallback.db")


def test_unknown_key_is_named_with_a_suggestion() -> None:
    (problem,) = problems_of(
        VALID.replace("      table: cases", "      tabel: cases\n      table: cases")
    )
    assert problem.startswith("sources[0] (town).cases.tabel: unknown key")
    assert "did you mean 'table'" in problem


def test_missing_required_mapping_key_is_named() -> None:
    (problem,) = problems_of(VALID.replace("      status: status\n", ""))
    assert problem == "sources[0] (town).cases.status: required key is missing"


def test_unknown_canonical_status_is_named() -> None:
    problems = problems_of(VALID.replace("DONE: RESOLVED", "DONE: FINISHED"))
    assert any("vocabulary.statuses.DONE" in p and "RESOLVED" in p for p in problems)


def test_category_mapped_to_undeclared_code_is_named() -> None:
    (problem,) = problems_of(VALID.replace("{R: ROADS}", "{R: ROADZ}"))
    assert "vocabulary.categories.R" in problem
    assert "ROADZ" in problem and "ROADS" in problem


def test_unknown_kind_lists_known_kinds() -> None:
    (problem,) = problems_of(VALID.replace("kind: sql", "kind: mongo"))
    assert "sources[0] (town).kind" in problem and "sql" in problem


def test_duplicate_source_ids_are_refused() -> None:
    head, sources = VALID.split("sources:\n")
    problems = problems_of(head + "sources:\n" + sources + sources)
    assert any("used twice" in p for p in problems)


def test_sync_driver_url_is_refused_with_the_async_alternative() -> None:
    problems = problems_of(VALID, {"TOWN_DB": "postgresql://db/x"})
    assert any("sources[0] (town).url" in p and "postgresql+asyncpg" in p for p in problems)


def test_unknown_time_zone_is_refused() -> None:
    problems = problems_of(
        VALID.replace("    url: ${TOWN_DB}", "    url: ${TOWN_DB}\n    timezone: Mars/Base")
    )
    assert any("timezone" in p and "Asia/Bangkok" in p for p in problems)


def test_invalid_yaml_and_unreadable_file_are_reported(tmp_path: object) -> None:
    assert "not valid YAML" in problems_of("sources: [")[0]
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/complaint-graph.yaml")
