"""A missing environment variable is reported where it is used, naming the source by its id."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, parse_config

CONFIG = """
categories: [{code: ROADS, name_th: ถนน, name_en: Roads}]
sources:
  - id: first
    kind: rest
    agency: {code: FIRST, name_th: หนึ่ง, name_en: First}
    base_url: http://127.0.0.1:1
    list: {path: /cases}
    fetch: {path: "/cases/{id}"}
    fields: {id: id, reference_number: id, title: t, description: d, category: c, status: s,
             received_at: r}
    vocabulary: {statuses: {}, categories: {}}
  - id: pmoc-1111
    kind: rest
    agency: {code: OPM-1111, name_th: ๑๑๑๑, name_en: "1111"}
    base_url: http://127.0.0.1:2
    auth: {type: api_key, header: X-PMOC-Key, value: "${PMOC_KEY}"}
    list: {path: /cases}
    fetch: {path: "/cases/{id}"}
    fields: {id: id, reference_number: id, title: t, description: d, category: c, status: s,
             received_at: r}
    vocabulary: {statuses: {}, categories: {}}
"""


def test_a_missing_environment_variable_names_the_source_id_and_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG, {})
    (problem,) = raised.value.problems
    assert problem.startswith("sources[1] (pmoc-1111).auth.value: environment variable PMOC_KEY")
    assert "${PMOC_KEY:-default}" in problem
    assert parse_config(CONFIG, {"PMOC_KEY": "k"}).sources[1].id == "pmoc-1111"
