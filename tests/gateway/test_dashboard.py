"""/dashboard in a real headless chromium against a real uvicorn gateway over the test agencies.

The page draws what ``caseStats`` answers: the tests read the charts' data back from the DOM
(each chart's table carries it in data-* attributes), compare it with the same caseStats asked
directly, and check the screenshot has each chart's colours where the page says the chart is.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from gateway.app import create_app
from gateway.config import EventSettings, GatewayConfig
from samples.serving import ThreadedServer
from tests.conftest import DemoData
from tests.gateway.browser import WINDOW, dump_dom, screenshot

PERIOD = "from=2026-07-01&to=2026-09-30"
FILTER = {
    "receivedFrom": "2026-07-01T00:00:00+07:00",
    "receivedBefore": "2026-10-01T00:00:00+07:00",
}
BLUE, RED, GREEN = (0x25, 0x63, 0xEB), (0xDC, 0x26, 0x26), (0x16, 0xA3, 0x4A)
STATS = """
query($filter: CaseFilterInput, $by: [StatsDimension!]!) {
  caseStats(filter: $filter, groupBy: $by) {
    total { count }
    buckets { key { code label } count overdue resolved }
  }
}
"""


class Page(HTMLParser):
    """What the tests need of the dumped DOM: body and canvas attributes, table rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.boxes: dict[str, tuple[int, int, int, int]] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.errors: list[str] = []
        self._table: str | None = None
        self._in_error = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "body":
            self.body = values
        elif tag == "canvas" and "data-box" in values:
            x, y, width, height = (int(n) for n in values["data-box"].split(","))
            self.boxes[values["id"].removesuffix("-chart")] = (x, y, width, height)
        elif tag == "table":
            self._table = values["id"].removesuffix("-table")
            self.rows[self._table] = []
        elif tag == "tr" and self._table is not None and "data-code" in values:
            self.rows[self._table].append(
                {k.removeprefix("data-"): v for k, v in values.items() if k.startswith("data-")}
            )
        elif tag == "ul" and values.get("id") == "errors":
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "ul":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.errors.append(data.strip())


def serve(config: GatewayConfig) -> ThreadedServer:
    server = ThreadedServer(
        create_app(replace(config, events=EventSettings(enabled=False))), lifespan=True
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def served(demo_data: DemoData) -> Iterator[ThreadedServer]:
    """The gateway over the test agencies, under real uvicorn on a loopback port."""
    server = serve(demo_data.config)
    yield server
    server.stop()


def case_stats(server: ThreadedServer, group_by: str, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": STATS, "variables": {"filter": FILTER, "by": [group_by]}},
        headers=headers,
        timeout=60,
    )
    body = response.json()
    assert "errors" not in body, body
    stats: dict[str, Any] = body["data"]["caseStats"]
    return stats


def by_code(stats: dict[str, Any], *fields: str) -> dict[str, tuple[int, ...]]:
    return {b["key"][0]["code"] or "": tuple(b[f] for f in fields) for b in stats["buckets"]}


def table(page: Page, name: str, *fields: str) -> dict[str, tuple[int, ...]]:
    return {row["code"]: tuple(int(row[f]) for f in fields) for row in page.rows[name]}


def test_dashboard_draws_what_case_stats_answers(served: ThreadedServer, tmp_path: Path) -> None:
    page = Page(dump_dom(f"{served.url}/dashboard?{PERIOD}", tmp_path / "profile"))
    assert page.body["data-state"] == "ready", page.errors
    assert page.body["data-errors"] == "0" and page.errors == []

    provinces = case_stats(served, "PROVINCE")
    assert int(page.body["data-total"]) == provinces["total"]["count"] > 0
    assert table(page, "provinces", "count", "overdue") == by_code(provinces, "count", "overdue")
    counts = [int(row["count"]) for row in page.rows["provinces"]]
    assert counts == sorted(counts, reverse=True)  # the sorted bar chart's order
    labels = {row["code"]: row["label"] for row in page.rows["provinces"]}
    assert labels["40"] == "ขอนแก่น" and labels["10"] == "กรุงเทพมหานคร"

    agencies = case_stats(served, "AGENCY")
    assert table(page, "overdue", "overdue", "count") == by_code(agencies, "overdue", "count")
    assert len(page.rows["overdue"]) == 4  # every demo agency has cases in the period

    weeks = case_stats(served, "RECEIVED_WEEK")
    assert table(page, "weekly", "count", "resolved") == by_code(weeks, "count", "resolved")
    assert len(page.rows["weekly"]) >= 13  # a quarter of ISO weeks
    assert set(page.boxes) == {"provinces", "overdue", "weekly"}


def test_category_and_period_come_from_the_address(served: ThreadedServer, tmp_path: Path) -> None:
    url = f"{served.url}/dashboard?from=2026-08-01&to=2026-08-31&category=LAND_DISPUTE"
    page = Page(dump_dom(url, tmp_path / "profile"))
    assert page.body["data-state"] == "ready", page.errors
    response = httpx.post(
        f"{served.url}/graphql",
        json={
            "query": STATS,
            "variables": {
                "filter": {
                    "category": ["LAND_DISPUTE"],
                    "receivedFrom": "2026-08-01T00:00:00+07:00",
                    "receivedBefore": "2026-09-01T00:00:00+07:00",
                },
                "by": ["PROVINCE"],
            },
        },
        timeout=60,
    )
    expected = response.json()["data"]["caseStats"]
    assert table(page, "provinces", "count", "overdue") == by_code(expected, "count", "overdue")
    assert int(page.body["data-total"]) == expected["total"]["count"]
    assert expected["total"]["count"] < case_stats(served, "PROVINCE")["total"]["count"]


def colour_share(
    image: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, ...]
) -> float:
    """The share of pixels in ``box`` within a small distance of ``colour``."""
    x, y, width, height = box
    region = image.crop((x, y, x + width, y + height)).convert("RGB")
    counted = region.getcolors(maxcolors=width * height) or []
    near = sum(
        n for n, p in counted if sum(abs(a - b) for a, b in zip(p, colour, strict=True)) < 40
    )
    return near / (width * height)


def test_screenshot_shows_each_chart_in_its_colours(served: ThreadedServer, tmp_path: Path) -> None:
    url = f"{served.url}/dashboard?{PERIOD}"
    page = Page(dump_dom(url, tmp_path / "profile"))
    assert page.body["data-state"] == "ready", page.errors
    shot = screenshot(url, tmp_path / "dashboard.png", tmp_path / "profile")
    image = Image.open(io.BytesIO(shot.read_bytes()))
    assert image.size == WINDOW
    assert len(image.convert("L").getcolors(maxcolors=1 << 16) or ()) > 50  # not blank
    provinces, overdue, weekly = (
        page.boxes["provinces"],
        page.boxes["overdue"],
        page.boxes["weekly"],
    )
    assert colour_share(image, provinces, BLUE) > 0.02
    assert colour_share(image, provinces, RED) > 0.002
    assert colour_share(image, overdue, RED) > 0.02
    assert colour_share(image, overdue, BLUE) == 0
    assert colour_share(image, weekly, BLUE) > 0.002
    assert colour_share(image, weekly, GREEN) > 0.002
    # The layout: provinces across the top, the two others side by side below it.
    assert provinces[1] + provinces[3] <= overdue[1] and overdue[1] == weekly[1]
    assert overdue[0] + overdue[2] <= weekly[0]


async def test_page_and_its_chart_library_come_from_the_gateway(served: ThreadedServer) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "https://" not in page.text and "http://" not in page.text  # no CDN: works offline
        assert "query Dashboard" in page.text
        for asset in ("chart.umd.min.js", "dashboard.js", "dashboard.css", "chart.js-LICENSE.md"):
            response = await client.get(f"/static/{asset}")
            assert response.status_code == 200, asset
        library = await client.get("/static/chart.umd.min.js")
        assert "javascript" in library.headers["content-type"]
        assert "Chart.js v4" in library.text[:200]
