"""API errors, their JSON bodies, and the message texts clients match on.

Ledger's SDK decides what to do after a 4xx by looking for substrings of the body's
``message`` (docs/api.md, "Error texts"), so those texts live here and nowhere else. Every
error body has the shape observed on Ledger's backend::

    {"time": "<ISO>", "cause": "<text>", "status": 401, "type": "UNAUTHORIZED",
     "message": "Unauthorized: <text>"}

plus ``"rule"`` when a block breaks a named protocol rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

# The texts the SDK branches on are part of the wire: defined once, in the protocol package.
from ..protocol.wire import JWT_EXPIRED_REAUTHENTICATE as JWT_EXPIRED_REAUTHENTICATE
from ..protocol.wire import JWT_EXPIRED_REFRESH as JWT_EXPIRED_REFRESH
from ..protocol.wire import JWT_NO_PERMISSION as JWT_NO_PERMISSION
from ..protocol.wire import NO_SUCH_TRUSTCHAIN as NO_SUCH_TRUSTCHAIN
from ..protocol.wire import NOT_A_MEMBER as NOT_A_MEMBER
from ..protocol.wire import PATH_DOES_NOT_MATCH as PATH_DOES_NOT_MATCH

#: Unknown routes (third-party observation of Ledger's backend).
NO_SUCH_ENDPOINT = "No such endpoint, please check API docs"


def no_permission(trustchain_id: str) -> str:
    return f"{JWT_NO_PERMISSION} for trustchain {trustchain_id}"


def not_a_member(trustchain_id: str) -> str:
    return f"{NOT_A_MEMBER} {trustchain_id}"


def no_such_trustchain(trustchain_id: str) -> str:
    return f"{NO_SUCH_TRUSTCHAIN} {trustchain_id}"


# --- the exception and its body ----------------------------------------------------------------


class ApiError(Exception):
    """An error answered to the client as JSON with ``status``; ``cause`` is shown verbatim."""

    def __init__(
        self,
        status: int,
        cause: str,
        *,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause
        self.rule = rule
        self.headers = headers or {}


class BadRequest(ApiError):
    def __init__(self, cause: str, *, rule: str | None = None) -> None:
        super().__init__(400, cause, rule=rule)


class Unauthorized(ApiError):
    def __init__(self, cause: str) -> None:
        super().__init__(401, cause)


class NotFound(ApiError):
    def __init__(self, cause: str) -> None:
        super().__init__(404, cause)


class TooLarge(ApiError):
    def __init__(self, cause: str) -> None:
        super().__init__(413, cause)


def error_body(status: int, cause: str, now: float, rule: str | None = None) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {
        "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        "cause": cause,
        "status": status,
        "type": phrase.upper().replace(" ", "_").replace("-", "_"),
        "message": f"{phrase}: {cause}",
    }
    if rule is not None:
        body["rule"] = rule
    return body
