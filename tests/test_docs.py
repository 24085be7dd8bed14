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
    curl_request,
    documents,
    examples_in,
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


def test_markers_are_read_and_mistakes_named(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '<!-- doc-example key=demo-analyst check=runs variables={"id": "x y"} -->\n'
        "```graphql\n{ a }\n```\n\n"
        "```markdown\n<!-- doc-example -->\n```\n\n"  # shown, not meant
        "```graphql\n{ unmarked }\n```\n\n"
        "<!-- doc-example colour=red -->\n```graphql\n{ b }\n```\n\n"
        "<!-- doc-example -->\n```graphql\n{ c }\n```\n\nno answer shown\n",
        encoding="utf-8",
    )
    (example,), problems = examples_in(page)
    assert (example.key, example.check, example.variables) == (
        "demo-analyst",
        "runs",
        {"id": "x y"},
    )
    assert example.block.text == "{ a }" and example.name == "page.md:2"
    unmarked = "block without a <!-- doc-example --> marker: the tests cannot check it"
    assert problems == [
        "page.md:14: unknown attribute 'colour=red' (key=, check=, variables=)",
        "page.md:19: check=answer needs a ```json block right after it",
        f"page.md:10: a graphql {unmarked}",
    ]


def test_curl_commands_are_sent_as_curl_sends_them() -> None:
    request = curl_request(
        "curl -s http://127.0.0.1:8000/export.csv -o out.csv \\\n"
        "  -H 'Authorization: Bearer k' --data-urlencode 'query={ a(b: \"c d\") }' | head"
    )
    assert (request.method, request.path) == ("POST", "/export.csv")
    assert request.headers == {
        "authorization": "Bearer k",
        "content-type": "application/x-www-form-urlencoded",
    }
    assert request.body == b"query=%7B+a%28b%3A+%22c+d%22%29+%7D"
    plain = curl_request("curl http://127.0.0.1:8000/readyz")
    assert (plain.method, plain.path, plain.body) == ("GET", "/readyz", None)


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
