"""The documentation cannot drift: every example in README.md and docs/ is asked of the demo and
its shown answer compared, and every relative link leads somewhere (tests/docs explains the
markers; ``python -m tests.docs --update`` rewrites the shown answers from real ones)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from resolvers import schema_sdl
from tests.conftest import serving
from tests.docs import (
    ROOT,
    DocExample,
    DocsDemo,
    all_examples,
    ask,
    documents,
    render,
    shows,
    start_docs_demo,
    stop_docs_demo,
)
from tests.postgres import run

EXAMPLES, PROBLEMS = all_examples()
ASKED = [example for example in EXAMPLES if example.check != "valid"]


@pytest.fixture(scope="session")
def docs_demo(
    postgres_admin_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DocsDemo]:
    demo = run(start_docs_demo(postgres_admin_dsn, tmp_path_factory.mktemp("docs-demo")))
    yield demo
    run(stop_docs_demo(postgres_admin_dsn, demo))


def test_every_query_shown_is_a_checked_example() -> None:
    assert PROBLEMS == []
    assert any(example.path.name == "README.md" for example in EXAMPLES)  # the first query


@pytest.mark.parametrize("example", ASKED, ids=lambda example: example.name)
async def test_example_answers_as_shown(docs_demo: DocsDemo, example: DocExample) -> None:
    async with serving(docs_demo.config) as gateway:
        answer = await ask(gateway, example)
    if example.check == "runs":
        assert not answer.has_errors, f"{example.name}: {answer.status} {answer.body}"
        return
    if not shows(example, answer.body):
        pytest.fail(
            f"{example.name}: the demo now answers\n{render(answer.body)}\n"
            "Update the doc (python -m tests.docs --update) if the change is meant."
        )


@pytest.mark.parametrize(
    "example",
    [example for example in EXAMPLES if example.block.language == "graphql"],
    ids=lambda example: example.name,
)
def test_example_is_valid_against_the_schema(example: DocExample) -> None:
    errors = validate(build_schema(schema_sdl()), parse(example.block.text))
    assert errors == [], f"{example.name}: {errors}"


# -- links -----------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _outside_code(text: str) -> str:
    """The Markdown without fenced blocks and inline code, where brackets are not links."""
    kept = []
    fenced = False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats
    numbered."""
    found: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2)).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        candidate, number = slug, 0
        while candidate in found:
            number += 1
            candidate = f"{slug}-{number}"
        found.add(candidate)
    return found


def relative_links(path: Path) -> Iterator[str]:
    for target in _LINK.findall(_outside_code(path.read_text(encoding="utf-8"))):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not ours
            yield target


@pytest.mark.parametrize("path", documents(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_to_a_file_and_heading(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert broken == [], json.dumps(broken, indent=2, ensure_ascii=False)


def test_the_link_check_sees_links_and_anchors() -> None:
    """The check above would pass on a parser that found nothing: it finds these."""
    readme = ROOT / "README.md"
    assert "docs/frontend.md" in set(relative_links(readme))
    assert "due-dates-sla" in anchors(ROOT / "docs" / "operators.md")
    assert "http-websocket-and-server-sent-events" in anchors(ROOT / "docs" / "frontend.md")
