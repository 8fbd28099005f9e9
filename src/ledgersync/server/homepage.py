"""The pages a person opens in a browser: ``GET /`` and ``GET /api``, with their assets.

* ``/``: what this server is, its version, whether it is healthy (the check of ``/_health``),
  its endpoints (from the OpenAPI document, hence from the route table), and the settings
  that point Ledger Live and the Python SDK at it (``public_url``).
* ``/api``: an interactive reference: ``static/api.js`` reads ``/openapi.json`` and renders
  every operation, with a "try it" form that sends the request and shows the answer.
* ``/static/{asset}``: the stylesheet and the script, package data (no network needed).

No user data and no login. Every value put into a page is HTML-escaped; the pages carry a
``Content-Security-Policy`` (``default-src 'self'``) that allows only these files, so no
inline script or style, nothing from elsewhere. Links are relative, so the pages also work
behind a reverse proxy that serves the server under a prefix.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .config import ServerConfig
from .errors import NotFound
from .openapi import WEBSOCKET, cached_document
from .status import database_answers

#: The files ``/static/{asset}`` serves, with their media types (nothing else in the folder).
ASSETS = {
    "ledgersync.css": "text/css; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
}

#: On every page and asset: only this origin's files, no framing, no referrer sent out.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

HTML_MEDIA_TYPE = "text/html; charset=utf-8"


@cache
def _package_file(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


def _page(template: str, fragments: dict[str, str] | None = None, **values: str) -> Response:
    """``static/<template>`` with its ``$placeholders`` filled: ``values`` HTML-escaped here,
    ``fragments`` HTML already built from escaped values."""
    filled = {name: html.escape(value) for name, value in values.items()}
    body = Template(_package_file(template)).substitute(filled, **(fragments or {}))
    return Response(body, media_type=HTML_MEDIA_TYPE, headers=SECURITY_HEADERS)


async def home(request: Request) -> Response:
    config: ServerConfig = request.app.state.config
    healthy = await database_answers(request.app.state)
    if healthy:
        health = "healthy: the server and its database answer"
    else:
        health = "unhealthy: the database does not answer (GET /_health answers 503)"
    return _page(
        "home.html",
        {"endpoints": endpoint_table(cached_document(request.app))},
        version=config.version,
        health_class="healthy" if healthy else "unhealthy",
        health=health,
        base_url=config.public_url.rstrip("/"),
    )


def endpoint_table(document: dict[str, Any]) -> str:
    """The operations of the OpenAPI ``document`` as table rows, grouped by tag, escaped."""
    rows: list[str] = []
    for tag in document["tags"]:
        rows.append(f'<tr><th colspan="3">{html.escape(tag["name"])}</th></tr>')
        for path, item in document["paths"].items():
            for verb, operation in item.items():
                if operation["tags"][0] != tag["name"]:
                    continue
                method = WEBSOCKET if operation.get("x-websocket") else verb.upper()
                rows.append(
                    f"<tr><td><code>{html.escape(method)}</code></td>"
                    f"<td><code>{html.escape(path)}</code></td>"
                    f"<td>{html.escape(operation['summary'])}</td></tr>"
                )
    return "\n".join(rows)


async def api_reference(request: Request) -> Response:
    config: ServerConfig = request.app.state.config
    return _page("api.html", version=config.version)


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no such file: /static/{name}")
    return Response(_package_file(name), media_type=media_type, headers=SECURITY_HEADERS)
