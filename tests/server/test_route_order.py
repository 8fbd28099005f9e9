"""The route table's order: the poll is tried first, and no path matches two patterns (so the
order decides nothing but speed)."""

from __future__ import annotations

import re

from starlette.routing import BaseRoute, Route, WebSocketRoute

from ledgersync.server import ServerConfig
from ledgersync.server.routes import routes

TABLE = routes(ServerConfig.from_env({"LEDGERSYNC_METRICS": "1"}))


def concrete(path: str) -> str:
    """A request path the pattern ``path`` matches (each parameter replaced by a value)."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def pattern_of(route: BaseRoute) -> tuple[str, re.Pattern[str]]:
    assert isinstance(route, (Route, WebSocketRoute))
    return route.path, route.path_regex


def test_the_document_route_is_tried_first_then_the_status_checks() -> None:
    first, *rest = TABLE
    assert isinstance(first, Route) and first.path == "/atomic/v1/{slug}"
    assert {"GET", "POST", "DELETE"} <= set(first.methods or ())
    assert [pattern_of(route)[0] for route in rest[:2]] == ["/_info", "/_health"]


def test_no_request_path_matches_two_different_patterns() -> None:
    patterns = {pattern_of(route) for route in TABLE}
    assert any(path == "/metrics" for path, _ in patterns)  # every route is in the table
    for path, _ in patterns:
        matching = {other for other, regex in patterns if regex.match(concrete(path))}
        assert matching == {path}, f"{concrete(path)} matches {sorted(matching)}"
