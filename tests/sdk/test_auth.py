"""The token cache's policies, driven by the error texts of docs/api.md, "Error texts".

The identity provider here is a pair of plain coroutines that count calls: the policy is pure
logic; the same paths are exercised against the real server in the end-to-end tests.
"""

from __future__ import annotations

import pytest

from ledgersync.sdk.api import JWT
from ledgersync.sdk.auth import AuthPolicy, Failure, TokenCache, classify, is_not_a_member
from ledgersync.sdk.errors import (
    LedgerAPI4xx,
    LedgerAPI5xx,
    TrustchainNotAllowed,
    TrustchainOutdated,
)


class Identity:
    def __init__(self, refresh_error: Exception | None = None) -> None:
        self.logins = 0
        self.refreshes = 0
        self.refresh_error = refresh_error

    async def authenticate(self) -> JWT:
        self.logins += 1
        return JWT(f"login-{self.logins}", {})

    async def refresh(self, jwt: JWT) -> JWT:
        self.refreshes += 1
        if self.refresh_error is not None:
            raise self.refresh_error
        return JWT(f"{jwt.access_token}+refresh", {})

    def cache(self) -> TokenCache:
        return TokenCache(self.authenticate, self.refresh)


def failing(*errors: Exception):  # type: ignore[no-untyped-def]
    """A job that fails with each error in turn, then returns the token it got."""
    remaining = list(errors)
    seen: list[str] = []

    async def job(jwt: JWT) -> list[str]:
        seen.append(jwt.access_token)
        if remaining:
            raise remaining.pop(0)
        return seen

    return job


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (
            "Unauthorized: JWT is expired, please call /refresh to refresh it",
            Failure.EXPIRED_REFRESHABLE,
        ),
        ("Unauthorized: JWT is expired, please call /challenge", Failure.EXPIRED),
        ("Unauthorized: JWT contains no permission for trustchain 00ab", Failure.NOT_PERMITTED),
        ("Unauthorized: path does not match", Failure.OUTDATED),
        ("Bad Request: whatever", Failure.CLIENT_ERROR),
    ],
)
def test_classify(message: str, kind: Failure) -> None:
    assert classify(LedgerAPI4xx(message, status=401)) is kind


def test_classify_ignores_non_client_errors() -> None:
    assert classify(LedgerAPI5xx("JWT is expired", status=500)) is Failure.UNRELATED
    assert classify(ValueError("JWT is expired")) is Failure.UNRELATED
    assert is_not_a_member(LedgerAPI4xx("Unauthorized: Not a member of trustchain 00ab"))
    assert is_not_a_member(LedgerAPI4xx("You are not member"))
    assert not is_not_a_member(LedgerAPI5xx("Not a member of trustchain"))


async def test_cache_policy_authenticates_once() -> None:
    identity = Identity()
    cache = identity.cache()
    assert await cache.run(failing()) == ["login-1"]
    assert await cache.run(failing()) == ["login-1"]
    assert identity.logins == 1


async def test_refresh_and_no_cache_policies() -> None:
    identity = Identity()
    cache = identity.cache()
    assert await cache.run(failing(), AuthPolicy.REFRESH) == ["login-1"]  # nothing to refresh
    assert await cache.run(failing(), AuthPolicy.REFRESH) == ["login-1+refresh"]
    assert await cache.run(failing(), AuthPolicy.NO_CACHE) == ["login-2"]
    assert cache.token == JWT("login-2", {})
    cache.clear()
    assert await cache.run(failing()) == ["login-3"]


async def test_expired_refreshable_token_is_refreshed_and_the_job_retried() -> None:
    identity = Identity()
    job = failing(LedgerAPI4xx("JWT is expired, please call /refresh"))
    assert await identity.cache().run(job) == ["login-1", "login-1+refresh"]
    assert (identity.logins, identity.refreshes) == (1, 1)


@pytest.mark.parametrize("message", ["JWT is expired", "Bad Request: stale parent"])
async def test_other_client_errors_reauthenticate(message: str) -> None:
    identity = Identity()
    assert await identity.cache().run(failing(LedgerAPI4xx(message))) == ["login-1", "login-2"]


async def test_only_one_retry() -> None:
    identity = Identity()
    error = LedgerAPI4xx("Bad Request: always")
    with pytest.raises(LedgerAPI4xx, match="always"):
        await identity.cache().run(failing(error, error))
    assert identity.logins == 2


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("JWT contains no permission", TrustchainNotAllowed),
        ("path does not match", TrustchainOutdated),
    ],
)
async def test_permission_answers_become_taxonomy_errors(message: str, error: type) -> None:
    identity = Identity()
    with pytest.raises(error):
        await identity.cache().run(failing(LedgerAPI4xx(message)))
    # also when the retried job fails that way
    with pytest.raises(error):
        await identity.cache().run(failing(LedgerAPI4xx("JWT is expired"), LedgerAPI4xx(message)))


async def test_server_errors_propagate_without_retry() -> None:
    identity = Identity()
    with pytest.raises(LedgerAPI5xx):
        await identity.cache().run(failing(LedgerAPI5xx("down", status=503)))
    assert identity.logins == 1


async def test_a_refresh_refused_as_expired_falls_back_to_login() -> None:
    identity = Identity(refresh_error=LedgerAPI4xx("JWT is expired, please call /challenge"))
    cache = identity.cache()
    await cache.run(failing())
    assert await cache.run(failing(), AuthPolicy.REFRESH) == ["login-2"]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("JWT contains no permission", TrustchainNotAllowed),
        ("path does not match", TrustchainOutdated),
        ("Bad Request: other", LedgerAPI4xx),
    ],
)
async def test_refresh_failures(message: str, error: type) -> None:
    identity = Identity(refresh_error=LedgerAPI4xx(message))
    cache = identity.cache()
    await cache.run(failing())
    with pytest.raises(error):
        await cache.run(failing(), AuthPolicy.REFRESH)
