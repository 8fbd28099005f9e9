"""Who may read and write a document: the token's permission snapshot decides, not live state.

Ledger Live's key rotation deletes the old document with a token obtained *before* the
rotation (docs/api.md, "Remove a member (key rotation)"); judged against the live
trustchain, that token would no longer own the old path. So the ``permissions`` claim
(``{trustchainId: {path: [...]}}``, taken at login or refresh) is the whole rule: the (id,
path) of a request must be in it.

Failures answer 401 with the texts the SDK branches on (docs/api.md, "Error texts"): an id
absent from the token → ``JWT contains no permission`` (``TrustchainNotAllowed``); an id
present but not that path → ``path does not match`` (``TrustchainOutdated``, the client then
refreshes its trustchain).

Ledger's newer clients omit ``id`` and send only ``path``: the trustchain is then the one
whose permissions contain that path, if exactly one does.
"""

from __future__ import annotations

from ..errors import JWT_NO_PERMISSION, PATH_DOES_NOT_MATCH, BadRequest, Unauthorized, no_permission
from ..tokens import TokenClaims


def authorize(claims: TokenClaims, trustchain_id: str | None, path: str) -> str:
    """The trustchain id the request may use for ``path`` (else 401, or 400 if ambiguous)."""
    permissions = claims.permissions
    if trustchain_id is None:
        owners = [tid for tid, paths in permissions.items() if path in paths]
        if len(owners) == 1:
            return owners[0]
        if len(owners) > 1:
            raise BadRequest("id is required: the token grants this path in several trustchains")
        if len(permissions) == 1:
            raise Unauthorized(f"{PATH_DOES_NOT_MATCH}: the token grants no access to {path}")
        raise Unauthorized(f"{JWT_NO_PERMISSION} for path {path}")
    paths = permissions.get(trustchain_id)
    if paths is None:
        raise Unauthorized(no_permission(trustchain_id))
    if path not in paths:
        raise Unauthorized(
            f"{PATH_DOES_NOT_MATCH}: the token grants {', '.join(sorted(paths)) or 'no path'}"
            f" in trustchain {trustchain_id}, not {path}"
        )
    return trustchain_id


def subscriptions(claims: TokenClaims) -> list[tuple[str, str]]:
    """Every (trustchain id, path) the token grants: what a notifications socket listens to."""
    return sorted(
        (trustchain_id, path)
        for trustchain_id, paths in claims.permissions.items()
        for path in paths
    )
