"""Every route the server answers, in one table (docs/api.md, "Key Ring API" and "Cloud Sync API").

To add an endpoint, write a thin handler in the feature's ``handlers`` module and add one line
here. The Key Ring API and the Cloud Sync API share this table, hence one origin.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from . import homepage, openapi, status
from .cloudsync import handlers as cloudsync
from .config import ServerConfig
from .keyring import handlers as keyring


def routes(config: ServerConfig) -> list[BaseRoute]:
    # Starlette tries the routes in order, one pattern match each: the most requested come
    # first (no two paths overlap, so the order decides nothing else). The Cloud Sync
    # document, whose poll (every 10 s from every instance) is most of the traffic: at the end
    # of the table it cost 12% of each poll, after the two status checks 2%. Then those checks.
    table: list[BaseRoute] = [
        # Cloud Sync API
        Route("/atomic/v1/{slug}", cloudsync.document, methods=cloudsync.document.METHODS),
        Route("/_info", status.info, methods=["GET"]),
        Route("/_health", status.health, methods=["GET"]),
        WebSocketRoute("/atomic/v1/{slug}/notifications", cloudsync.notifications),
        # Pages for a person with a browser (no user data): what this server is, the API reference
        Route("/", homepage.home, methods=["GET"]),
        Route("/api", homepage.api_reference, methods=["GET"]),
        Route("/static/{asset}", homepage.asset, methods=["GET"]),
        Route("/openapi.json", openapi.openapi, methods=["GET"]),
        # Key Ring API (trustchain backend)
        Route("/v1/challenge", keyring.get_challenge, methods=["GET"]),
        Route("/v1/authenticate", keyring.post_authenticate, methods=["POST"]),
        Route("/v1/refresh", keyring.get_refresh, methods=["GET"]),
        Route("/v1/trustchains", keyring.get_trustchains, methods=["GET"]),
        Route("/v1/seed", keyring.post_seed, methods=["POST"]),
        Route("/v1/trustchain/{trustchain_id}", keyring.get_trustchain, methods=["GET"]),
        Route("/v1/trustchain/{trustchain_id}", keyring.delete_trustchain, methods=["DELETE"]),
        Route(
            "/v1/trustchain/{trustchain_id}/derivation",
            keyring.post_derivation,
            methods=["POST"],
        ),
        Route("/v1/trustchain/{trustchain_id}/commands", keyring.put_commands, methods=["PUT"]),
        WebSocketRoute("/v1/qr", keyring.qr_relay),
    ]
    if config.metrics and not config.metrics_address:  # else on its own listener (status.py)
        table.append(Route("/metrics", status.metrics, methods=["GET"]))
    return table
