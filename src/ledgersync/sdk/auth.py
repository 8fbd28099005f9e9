"""Token cache and the refresh / re-authenticate policies (docs/api.md, "Error texts").

A :class:`TokenCache` holds one token for one identity (a member of a trustchain, or a device)
and runs jobs with it. Before the job, the policy decides where the token comes from:

* ``CACHE``: the cached token, or a fresh authentication when there is none;
* ``REFRESH``: ``GET /v1/refresh`` of the cached token first (authenticating when there is none);
* ``NO_CACHE``: always a fresh authentication.

When the job fails with a 4xx, the server's message decides, by substring as Ledger's SDK does:

=================================  =============================================
``JWT is expired`` + ``/refresh``   refresh the token, run the job once more
``JWT is expired``                  authenticate again, run the job once more
``JWT contains no permission``      :class:`TrustchainNotAllowed`
``path does not match``             :class:`TrustchainOutdated`
any other 4xx                       authenticate again, run the job once more
=================================  =============================================

A refresh that fails with an expired token falls back to a full authentication. 5xx and
network errors propagate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum, StrEnum
from typing import TypeVar

from ..protocol import wire
from .api import JWT
from .errors import LedgerAPI4xx, TrustchainNotAllowed, TrustchainOutdated

T = TypeVar("T")

# The texts are the protocol's (defined once for client and server in ledgersync.protocol.wire).
EXPIRED = wire.JWT_EXPIRED
REFRESHABLE = wire.REFRESH_HINT
NO_PERMISSION = wire.JWT_NO_PERMISSION
PATH_MISMATCH = wire.PATH_DOES_NOT_MATCH
NOT_A_MEMBER = wire.NOT_A_MEMBER_TEXTS


class AuthPolicy(StrEnum):
    CACHE = "cache"
    REFRESH = "refresh"
    NO_CACHE = "no-cache"


class Failure(Enum):
    """What a failed request says about the token."""

    EXPIRED_REFRESHABLE = "expired, refreshable"
    EXPIRED = "expired"
    NOT_PERMITTED = "not permitted"
    OUTDATED = "outdated"
    CLIENT_ERROR = "other client error"
    UNRELATED = "not a client error"


def classify(error: BaseException) -> Failure:
    if not isinstance(error, LedgerAPI4xx):
        return Failure.UNRELATED
    message = str(error)
    if EXPIRED in message:
        return Failure.EXPIRED_REFRESHABLE if REFRESHABLE in message else Failure.EXPIRED
    if NO_PERMISSION in message:
        return Failure.NOT_PERMITTED
    if PATH_MISMATCH in message:
        return Failure.OUTDATED
    return Failure.CLIENT_ERROR


def is_not_a_member(error: BaseException) -> bool:
    """The answer ``/v1/authenticate`` gives a member that was removed."""
    return isinstance(error, LedgerAPI4xx) and any(text in str(error) for text in NOT_A_MEMBER)


def _raise_for_permissions(error: BaseException, kind: Failure) -> None:
    if kind is Failure.NOT_PERMITTED:
        raise TrustchainNotAllowed(str(error)) from error
    if kind is Failure.OUTDATED:
        raise TrustchainOutdated(str(error)) from error


class TokenCache:
    """One identity's token and the policies to obtain, refresh and recover it."""

    def __init__(
        self,
        authenticate: Callable[[], Awaitable[JWT]],
        refresh: Callable[[JWT], Awaitable[JWT]],
    ) -> None:
        self._authenticate = authenticate
        self._refresh_call = refresh
        self.token: JWT | None = None

    def clear(self) -> None:
        self.token = None

    async def authenticate(self) -> JWT:
        self.token = await self._authenticate()
        return self.token

    async def refresh(self, token: JWT) -> JWT:
        try:
            self.token = await self._refresh_call(token)
        except LedgerAPI4xx as exc:
            kind = classify(exc)
            _raise_for_permissions(exc, kind)
            if kind in (Failure.EXPIRED, Failure.EXPIRED_REFRESHABLE):
                return await self.authenticate()
            raise
        return self.token

    async def get(self, policy: AuthPolicy = AuthPolicy.CACHE) -> JWT:
        """A token chosen by ``policy`` (see the module docstring)."""
        if policy is AuthPolicy.NO_CACHE or self.token is None:
            return await self.authenticate()
        if policy is AuthPolicy.REFRESH:
            return await self.refresh(self.token)
        return self.token

    async def run(
        self, job: Callable[[JWT], Awaitable[T]], policy: AuthPolicy = AuthPolicy.CACHE
    ) -> T:
        """Run ``job`` with a token, recovering once from an expired or refused token."""
        token = await self.get(policy)
        try:
            return await job(token)
        except LedgerAPI4xx as exc:
            kind = classify(exc)
            _raise_for_permissions(exc, kind)
            if kind is Failure.EXPIRED_REFRESHABLE:
                token = await self.refresh(token)
            elif kind in (Failure.EXPIRED, Failure.CLIENT_ERROR):
                token = await self.authenticate()
            else:  # pragma: no cover - classify() returns one of the above for a 4xx
                raise
        try:
            return await job(token)
        except LedgerAPI4xx as exc:
            _raise_for_permissions(exc, classify(exc))
            raise
