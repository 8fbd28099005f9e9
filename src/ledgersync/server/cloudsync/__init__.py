"""The Cloud Sync API (docs/api.md, "Cloud Sync API"): versioned opaque documents per
(slug, trustchain id, application path), and a notifications websocket.

* :mod:`.documents`: query parsing and the version rules, as plain async functions;
* :mod:`.access`: authorization from the token's permission snapshot;
* :mod:`.notifications`: the subscriber hub and the websocket protocol;
* :mod:`.handlers`: the thin HTTP and websocket handlers;
* :mod:`.context`: :class:`~.context.CloudSync`, the dependencies bundled at start.
"""
