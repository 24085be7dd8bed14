"""What every answer to hostile input must show: no server error, no leak, a live server."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.conftest import DemoData, RunningGateway

_LEAKS = [
    re.compile(pattern)
    for pattern in (
        r"\bSELECT\b",
        r"\bINSERT INTO\b",
        r"\bWHERE\b",
        r"\bFROM [a-z_]+\b",
        r"\bLIMIT \d",
        r"Traceback",
        r'File "',
        r"\.py\b",
        r"/(?:work|tmp|home|usr|srv|var)/",
        r"asyncpg|sqlalchemy|aiosqlite|psycopg|httpx|httpcore|uvicorn",
        r"postgresql(?:\+asyncpg)?://",
        r"sqlite(?:\+aiosqlite)?://",
        r"127\.0\.0\.1:\d+",
        r"localhost:\d+",
        r"intranet\.",
    )
]


def leaks(text: str, demo: DemoData | None = None, echoed: tuple[str, ...] = ()) -> list[str]:
    """Whatever in ``text`` looks like SQL, a trace, a path, or an agency's address; the
    client's own ``echoed`` input, quoted back in an error, does not count."""
    for value in echoed:
        for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
            if form:
                text = text.replace(form, "")
    found = [pattern.pattern for pattern in _LEAKS if pattern.search(text)]
    if demo is not None:
        for secret in (demo.postgres_dsn, str(demo.sqlite_path), demo.pmoc_url, demo.traffy_url):
            if secret in text:
                found.append(secret)
    return found


def assert_clean(
    response: httpx.Response, demo: DemoData | None = None, echoed: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Not a server error, JSON with errors or data, and nothing internal in it."""
    assert response.status_code < 500, response.text[:2000]
    found = leaks(response.text, demo, echoed)
    assert not found, (found, response.text[:2000])
    body: dict[str, Any] = response.json()
    assert "errors" in body or "data" in body, body
    for error in body.get("errors") or ():
        assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR", error
    return body


async def assert_responsive(gateway: RunningGateway) -> None:
    """The gateway still answers, from its sources too."""
    body = await gateway.query("{ __typename cases(first: 1) { totalCount } }")
    assert body["data"]["__typename"] == "Query"
    assert body["data"]["cases"]["totalCount"] > 0
