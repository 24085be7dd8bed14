"""``/dashboard``: a page that asks the gateway's own graph and draws it, with no CDN.

The page (``static/dashboard.html``, ``dashboard.js``) runs in the browser and POSTs the
``Dashboard`` example query (gateway/examples.py) to ``/graphql`` with the analyst's API key, so it
sees exactly what that key may see. Chart.js is bundled in ``static/`` and served from
``/static``: the page works on machines without the internet.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.examples import DASHBOARD, script_json

STATIC = Path(__file__).with_name("static")
_QUERY_PLACEHOLDER = "__DASHBOARD_QUERY__"


def dashboard_html() -> str:
    """The page with the dashboard's GraphQL document embedded as JSON."""
    template = (STATIC / "dashboard.html").read_text(encoding="utf-8")
    return template.replace(_QUERY_PLACEHOLDER, script_json(DASHBOARD.query))


def routes() -> list[BaseRoute]:
    """``/dashboard`` and the static files it loads; the page is read once, at start-up."""
    page = dashboard_html()

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(page)

    return [
        Route("/dashboard", dashboard),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
