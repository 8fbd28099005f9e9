"""The words both sides of the wire must agree on, defined once for client and server.

See docs/api.md, "Error texts" and "Notifications websocket". Ledger's clients decide what to
do by looking for substrings of a 4xx answer's ``message`` (ledger-live ``auth.ts``,
``sdk.ts``; the newest in ts-libs ``auth.extra.test.ts`` @ffee6656), so a server must say
these texts verbatim and a client must look for exactly these.
"""

from __future__ import annotations

from datetime import UTC, datetime

# --- error texts (substrings of a 4xx ``message``) --------------------------------------------

#: Any expired token; with :data:`REFRESH_HINT` the client refreshes, without it logs in again.
JWT_EXPIRED = "JWT is expired"
REFRESH_HINT = "/refresh"
#: The access token expired inside its refresh window: ``GET /v1/refresh``, then once more.
JWT_EXPIRED_REFRESH = f"{JWT_EXPIRED}, please call /refresh to refresh it"
#: The token cannot be refreshed (window over, or its subject left): log in again.
JWT_EXPIRED_REAUTHENTICATE = f"{JWT_EXPIRED}, please call /challenge to get a new one"
#: The token names nothing of this trustchain → ``TrustchainNotAllowed``.
JWT_NO_PERMISSION = "JWT contains no permission"
#: The token does not own this path (a rotation happened), or blocks extend an outdated
#: stream → ``TrustchainOutdated``.
PATH_DOES_NOT_MATCH = "path does not match"
#: ``/v1/authenticate`` for a member that no longer is one → ``TrustchainEjected``. The second
#: wording is one Ledger's SDK also accepts.
NOT_A_MEMBER = "Not a member of trustchain"
NOT_A_MEMBER_TEXTS = (NOT_A_MEMBER, "You are not member")
#: 404 of a trustchain that does not exist or was deleted (Ledger Live's apps look for it).
NO_SUCH_TRUSTCHAIN = "No such trustchain"

# --- the Cloud Sync notifications websocket ---------------------------------------------------

#: Server → client, answered with :data:`NOTIFY_PONG`.
NOTIFY_PING = "ping"
NOTIFY_PONG = "pong"
#: Server → client when the token expired; the client sends a fresh token.
NOTIFY_JWT_EXPIRED = "JWT expired"

#: Close codes (RFC 6455) with the meaning both sides give them.
CLOSE_NORMAL = 1000
#: A binary frame on the notifications socket.
CLOSE_UNSUPPORTED = 1003
#: Refused: an invalid token, one granting nothing, no token in time. Clients stop there.
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009

# --- times ------------------------------------------------------------------------------------

#: Challenge ``expiry`` and token ``refreshExpiration``: ISO 8601, UTC, whole seconds, ``Z``.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(unix_seconds: float) -> str:
    """``2026-12-01T10:00:00Z`` for a Unix time (the fraction of a second is dropped)."""
    return datetime.fromtimestamp(int(unix_seconds), UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> int:
    """A Unix time from an ISO 8601 text (UTC when it names no zone); ``ValueError`` or
    ``TypeError`` when it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
