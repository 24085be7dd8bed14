"""The documentation's examples, found in the Markdown and answered by the demo.

README.md and docs/*.md show queries with their answers. Each example is marked by an HTML
comment on the line (or lines) before its fenced block, which Markdown renders as nothing::

    <!-- doc-example key=demo-analyst variables={"id": "Q2FzZTpkYW1yb25nZGhhbWE6MTU="} -->
    ```graphql
    query Trail($id: ID!) { case(id: $id) { referenceNumber } }
    ```

    ```json
    {"data": {"case": {"referenceNumber": "ดธ.1567/2568/000015"}}}
    ```

Attributes, all optional; ``variables`` comes last and takes the rest of the comment as JSON:

- ``key``: the demo key sent as ``Authorization: Bearer …`` (default ``demo-inspector``;
  ``none`` sends no credentials). A ``sh`` example sends the headers its curl command names.
- ``check``: ``answer`` (default) runs the example and compares its answer with the fenced
  ``json`` block that follows it (as JSON values, so the shown block may be laid out by hand);
  ``runs`` only requires an answer without errors (outputs that vary: live events, metrics,
  the audit log, long lists); ``valid`` only parses and validates the document against the
  schema (subscriptions).
- ``variables``: the operation's variables, as JSON.

An example block is ```` ```graphql ```` (POSTed to ``/graphql``) or ```` ```sh ```` holding one
``curl`` command (sent as curl would send it: its method, path, headers and body; a pipe after
it is the reader's, not sent). Errors' ``extensions.requestId`` differs per request and is left
out of answers before they are compared. Every ```` ```graphql ```` block and every ``sh`` block
with a ``curl`` in these files must be an example: ``tests/test_docs.py`` says which is not.

Answers are those of the demo (:func:`demo_gateway`) built as ``complaint-graph demo`` builds it,
at its default size, without the trickle of updates, with the clock fixed at :data:`DOCS_CLOCK`.
``python -m tests.docs --update`` writes the real answers into the shown blocks.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from gateway.config import ClockSettings, GatewayConfig
from gateway.demo import (
    DEMO_PMOC_KEY,
    DEMO_SIZE,
    DEMO_TRAFFY_KEY,
    build_demo_data,
    demo_config,
    seed_demo_keys,
    with_demo_key_store,
)
from samples import pmoc_1111, traffy
from samples.serving import ThreadedServer
from tests.conftest import RunningGateway, serving
from tests.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/*.md")
DOCS_CLOCK = datetime(2026, 10, 1, tzinfo=timezone(timedelta(hours=7)))
"""The docs' "now": the day after the demo data's last day, Bangkok time (README says so)."""
DEFAULT_KEY = "demo-inspector"

Check = Literal["answer", "runs", "valid"]
_CHECKS: tuple[Check, ...] = ("answer", "runs", "valid")
_MARKER = re.compile(r"<!--\s*doc-example\b(?P<attributes>.*?)-->", re.DOTALL)
_FENCE = re.compile(r"^```(?P<language>[\w+-]*)\s*$")


class DocProblem(Exception):
    """A marker or block the test cannot use; the message names the file and line."""


@dataclass(frozen=True)
class Block:
    """A fenced block: its language and text, and the 0-based lines of its fences."""

    language: str
    text: str
    opening: int
    closing: int


@dataclass(frozen=True)
class DocExample:
    path: Path
    block: Block
    key: str | None
    check: Check
    variables: dict[str, Any] | None
    shown: Block | None
    """The fenced block right after the example, when it is its output (``json``)."""

    @property
    def name(self) -> str:
        """``docs/frontend.md:42``: where the example's block opens, 1-based, as editors count."""
        return f"{shown_path(self.path)}:{self.block.opening + 1}"


def shown_path(path: Path) -> str:
    """The file as the docs' readers and editors name it: relative to the repository."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def documents(root: Path = ROOT) -> list[Path]:
    return sorted(path for pattern in DOCUMENTS for path in root.glob(pattern))


def blocks(lines: list[str]) -> list[Block]:
    found: list[Block] = []
    opening: int | None = None
    language = ""
    for number, line in enumerate(lines):
        if not line.startswith("```"):
            continue
        if opening is None:
            match = _FENCE.match(line)
            language = match.group("language") if match else line[3:].strip()
            opening = number
        elif line.strip() == "```":
            found.append(Block(language, "\n".join(lines[opening + 1 : number]), opening, number))
            opening = None
    return found


def _next_block(found: list[Block], lines: list[str], after: int) -> Block | None:
    """The block opening after line ``after`` with only blank lines between, if any."""
    for block in found:
        if block.opening > after:
            between = lines[after + 1 : block.opening]
            return block if all(not line.strip() for line in between) else None
    return None


def _attributes(text: str, where: str) -> tuple[str | None, Check, dict[str, Any] | None]:
    words, _, raw_variables = text.partition("variables=")
    variables: dict[str, Any] | None = None
    if raw_variables.strip():
        try:
            variables = json.loads(raw_variables)
        except json.JSONDecodeError as exc:
            raise DocProblem(f"{where}: variables are not JSON ({exc})") from None
        if not isinstance(variables, dict):
            raise DocProblem(f"{where}: variables must be a JSON object")
    attributes: dict[str, str] = {}
    for word in words.split():
        name, equals, value = word.partition("=")
        if not equals or name not in ("key", "check"):
            raise DocProblem(f"{where}: unknown attribute {word!r} (key=, check=, variables=)")
        attributes[name] = value
    key = attributes.get("key", DEFAULT_KEY)
    check = attributes.get("check", "answer")
    if check not in _CHECKS:
        raise DocProblem(f"{where}: check={check}; expected one of {', '.join(_CHECKS)}")
    return (None if key == "none" else key), check, variables


def examples_in(path: Path) -> tuple[list[DocExample], list[str]]:
    """The file's examples, and one line per problem: a marker without a usable block, or a
    query or curl command shown without a marker (so nothing checks it)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found = blocks(lines)
    relative = shown_path(path)
    examples: list[DocExample] = []
    problems: list[str] = []
    marked: set[int] = set()
    text = "\n".join(lines)
    for match in _MARKER.finditer(text):
        end = text.count("\n", 0, match.end())
        where = f"{relative}:{end + 1}"
        if any(block.opening < end < block.closing for block in found):
            continue  # a marker shown inside a block (how to write one) marks nothing
        block = _next_block(found, lines, end)
        if block is not None:
            marked.add(block.opening)  # a faulty marker is reported once, as itself
        try:
            key, check, variables = _attributes(match.group("attributes"), where)
            if block is None or block.language not in ("graphql", "sh"):
                raise DocProblem(f"{where}: a doc-example marker must precede a graphql/sh block")
            if block.language == "sh" and not block.text.lstrip().startswith("curl "):
                raise DocProblem(f"{where}: an sh example must be one curl command")
            shown = _next_block(found, lines, block.closing)
            if shown is not None and shown.language not in ("json",):
                shown = None
            if check == "answer" and shown is None:
                raise DocProblem(f"{where}: check=answer needs a ```json block right after it")
        except DocProblem as problem:
            problems.append(str(problem))
            continue
        examples.append(DocExample(path, block, key, check, variables, shown))
    for block in found:
        unmarked = block.opening not in marked
        if unmarked and (block.language == "graphql" or "curl " in block.text):
            problems.append(
                f"{relative}:{block.opening + 1}: a {block.language} block without a "
                "<!-- doc-example --> marker: the tests cannot check it"
            )
    return examples, problems


def all_examples(root: Path = ROOT) -> tuple[list[DocExample], list[str]]:
    examples: list[DocExample] = []
    problems: list[str] = []
    for path in documents(root):
        found, wrong = examples_in(path)
        examples += found
        problems += wrong
    return examples, problems


# -- asking the demo -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None


def graphql_request(example: DocExample) -> Request:
    headers = {"content-type": "application/json"}
    if example.key is not None:
        headers["authorization"] = f"Bearer {example.key}"
    body = {"query": example.block.text, "variables": example.variables}
    return Request("POST", "/graphql", headers, json.dumps(body).encode())


def curl_request(command: str) -> Request:
    """What ``curl`` sends for the options the docs use: -H, -d/--data/--data-raw,
    --data-urlencode, -X; -s, -o and the like change only what the reader sees."""
    words = shlex.split(command.replace("\\\n", " "))
    if "|" in words:
        words = words[: words.index("|")]
    headers: dict[str, str] = {}
    data: list[str] = []
    method: str | None = None
    url: str | None = None
    position = 1
    while position < len(words):
        word = words[position]
        value = words[position + 1] if position + 1 < len(words) else ""
        if word in ("-H", "--header"):
            name, _, header = value.partition(":")
            headers[name.strip().lower()] = header.strip()
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            data.append(value)
        elif word == "--data-urlencode":
            data.append(_urlencode(value))
        elif word in ("-X", "--request"):
            method = value
        elif word in ("-o", "--output"):
            pass
        elif word.startswith("-"):
            position += 1
            continue
        else:
            url = word
            position += 1
            continue
        position += 2
    if url is None:
        raise DocProblem(f"no URL in curl command: {command}")
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    body = "&".join(data).encode() if data else None
    if body is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    return Request(method or ("POST" if body is not None else "GET"), path, headers, body)


def _urlencode(value: str) -> str:
    """curl's ``--data-urlencode name=content``: the content percent-encoded, the name kept."""
    name, equals, content = value.partition("=")
    encoded = str(httpx.QueryParams({"x": content}))[2:]
    return f"{name}={encoded}" if equals else encoded


def without_request_ids(answer: Any) -> Any:
    """Errors' ``extensions.requestId`` is new for every request: never part of what is shown."""
    if isinstance(answer, dict):
        return {
            name: without_request_ids(value)
            for name, value in answer.items()
            if name != "requestId"
        }
    if isinstance(answer, list):
        return [without_request_ids(item) for item in answer]
    return answer


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    """The JSON answer (request ids left out), or the text when the answer is not JSON."""

    @property
    def has_errors(self) -> bool:
        return self.status >= 400 or (isinstance(self.body, dict) and "errors" in self.body)


async def ask(gateway: RunningGateway, example: DocExample) -> Answer:
    request = (
        graphql_request(example)
        if example.block.language == "graphql"
        else curl_request(example.block.text)
    )
    response = await gateway.client.request(
        request.method, request.path, headers=request.headers, content=request.body
    )
    if response.headers.get("content-type", "").split(";")[0].endswith("json"):
        return Answer(response.status_code, without_request_ids(response.json()))
    return Answer(response.status_code, response.text)


def shows(example: DocExample, answer: Any) -> bool:
    """Whether the example's shown block says ``answer`` (as JSON values, whatever the layout)."""
    return example.shown is not None and _parses_to(example.shown.text, answer)


WIDTH = 100
"""Lines of the docs' Markdown (STYLE: ruff's line length); the shown answers keep to it."""


def render(answer: Any, indent: int = 0, prefix: int = 0) -> str:
    """JSON as the docs show it: indented by two, but an object or list that fits on its line
    (``prefix`` characters are already on it) written on one, so figures read across."""
    flat = json.dumps(answer, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(answer, dict | list) or not answer or prefix + len(flat) <= WIDTH:
        return flat
    inner = " " * (indent + 2)
    items = []
    if isinstance(answer, dict):
        for name, value in answer.items():
            key = f"{inner}{json.dumps(name, ensure_ascii=False)}: "
            items.append(key + render(value, indent + 2, len(key) + 1))
        opening, closing = "{", "}"
    else:
        items = [inner + render(value, indent + 2, len(inner) + 1) for value in answer]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(items) + "\n" + " " * indent + closing


# -- the demo, as `complaint-graph demo` builds it ---------------------------------------------


@dataclass(frozen=True)
class DocsDemo:
    """The demo agencies as the docs' examples see them; :func:`start_docs_demo` builds it."""

    config: GatewayConfig
    dsn: str
    servers: tuple[ThreadedServer, ...]


async def start_docs_demo(admin_dsn: str, directory: Path) -> DocsDemo:
    """The demo agencies at their default size in a database of their own, the two API agencies
    on free loopback ports, the demo keys, the clock at :data:`DOCS_CLOCK`; no trickle (and the
    gateways :func:`tests.conftest.serving` starts do not poll), so nothing moves."""
    dsn = await create_database(admin_dsn)
    pmoc = ThreadedServer(pmoc_1111.create_app(count=DEMO_SIZE, api_key=DEMO_PMOC_KEY))
    city = ThreadedServer(traffy.create_app(count=DEMO_SIZE, api_key=DEMO_TRAFFY_KEY))
    try:
        provincial_path = directory / "provincial-khon-kaen.sqlite"
        await build_demo_data(dsn, provincial_path, DEMO_SIZE)
        pmoc.start()
        city.start()
        config = with_demo_key_store(
            demo_config(dsn, provincial_path, pmoc.url, city.url), directory
        )
        config = replace(config, clock=ClockSettings(fixed=DOCS_CLOCK))
        await seed_demo_keys(config)
    except BaseException:
        await _release(admin_dsn, dsn, (pmoc, city))
        raise
    return DocsDemo(config, dsn, (pmoc, city))


async def stop_docs_demo(admin_dsn: str, demo: DocsDemo) -> None:
    await _release(admin_dsn, demo.dsn, demo.servers)


async def _release(admin_dsn: str, dsn: str, servers: tuple[ThreadedServer, ...]) -> None:
    for server in servers:
        server.stop()
    await drop_database(admin_dsn, dsn)


@contextlib.asynccontextmanager
async def demo_gateway(admin_dsn: str, directory: Path) -> AsyncIterator[RunningGateway]:
    """:func:`start_docs_demo` and a gateway over it, for one program run."""
    demo = await start_docs_demo(admin_dsn, directory)
    try:
        async with serving(demo.config) as gateway:
            yield gateway
    finally:
        await stop_docs_demo(admin_dsn, demo)


def rewrite_outputs(answers: Iterable[tuple[DocExample, Any]]) -> list[str]:
    """Write each answer into its example's shown block, unless the block already says it (so
    hand-made layouts stay). Returns the names of the examples rewritten."""
    by_path: dict[Path, list[tuple[DocExample, Any]]] = {}
    for example, answer in answers:
        by_path.setdefault(example.path, []).append((example, answer))
    rewritten: list[str] = []
    for path, pairs in by_path.items():
        lines = path.read_text(encoding="utf-8").split("\n")
        for example, answer in sorted(pairs, key=lambda pair: -pair[0].block.opening):
            shown = example.shown
            if shown is None or shows(example, answer):
                continue
            lines[shown.opening + 1 : shown.closing] = render(answer).split("\n")
            rewritten.append(example.name)
        path.write_text("\n".join(lines), encoding="utf-8")
    return sorted(rewritten)


def _parses_to(text: str, answer: Any) -> bool:
    try:
        return bool(json.loads(text) == answer)
    except json.JSONDecodeError:
        return False
