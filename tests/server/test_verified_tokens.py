"""The remembered-token check both APIs use: a cached token is still judged by the clock on
every use, with the same texts as a first check, and nothing but the exact string hits."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ledgersync.server.errors import JWT_EXPIRED_REAUTHENTICATE, JWT_EXPIRED_REFRESH
from ledgersync.server.tokens import (
    CLOUD_SYNC_AUDIENCE,
    TRUSTCHAIN_AUDIENCE,
    TokenClaims,
    TokenError,
    TokenExpired,
    TokenService,
    VerifiedTokens,
)

from ..support.servers import ManualClock

ACCESS_TTL = 300
REFRESH_WINDOW = 3600


class CountingTokens(TokenService):
    """The real token service, counting the full (signature-checking) verifications."""

    checks = 0

    def verify(
        self, token: str, *, audience: str = TRUSTCHAIN_AUDIENCE, for_refresh: bool = False
    ) -> TokenClaims:
        self.checks += 1
        return super().verify(token, audience=audience, for_refresh=for_refresh)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_900_000_000)


@pytest.fixture
def service(clock: ManualClock) -> CountingTokens:
    return CountingTokens(
        ec.generate_private_key(ec.SECP256R1()),
        issuer="ledgersync.test",
        access_ttl=ACCESS_TTL,
        refresh_window=REFRESH_WINDOW,
        clock=clock,
    )


def issue(service: TokenService) -> str:
    return service.issue(b"\x02" * 33, device=True, permissions={})


def test_a_token_is_checked_once_then_remembered(
    service: CountingTokens, clock: ManualClock
) -> None:
    verified = VerifiedTokens(service, clock, audience=TRUSTCHAIN_AUDIENCE)
    token = issue(service)
    first = verified.verify(token)
    clock.advance(ACCESS_TTL - 1)
    assert verified.verify(token) == first
    assert service.checks == 1


def test_a_remembered_token_expires_with_the_texts_of_a_first_check(
    service: CountingTokens, clock: ManualClock
) -> None:
    verified = VerifiedTokens(service, clock, audience=TRUSTCHAIN_AUDIENCE)
    token = issue(service)
    verified.verify(token)
    clock.advance(ACCESS_TTL)
    with pytest.raises(TokenExpired) as expired:
        verified.verify(token)
    assert str(expired.value) == JWT_EXPIRED_REFRESH
    # Inside the refresh window the expired token still serves /refresh, remembered again.
    claims = verified.verify(token, for_refresh=True)
    assert verified.verify(token, for_refresh=True) == claims
    checks = service.checks
    clock.advance(REFRESH_WINDOW)
    with pytest.raises(TokenExpired) as too_late:
        verified.verify(token, for_refresh=True)
    assert str(too_late.value) == JWT_EXPIRED_REAUTHENTICATE
    assert service.checks == checks + 1


def test_only_the_exact_string_hits(service: CountingTokens, clock: ManualClock) -> None:
    verified = VerifiedTokens(service, clock, audience=TRUSTCHAIN_AUDIENCE)
    token = issue(service)
    verified.verify(token)
    header, payload, signature = token.split(".")
    for other in (f"{header}.{payload}.{signature}=", token + " ", token.upper()):
        with pytest.raises(TokenError) as refused:
            verified.verify(other)
        assert str(refused.value).startswith("Invalid JWT")
    assert verified.verify(token).subject == "02" * 33


def test_another_servers_token_is_refused(service: CountingTokens, clock: ManualClock) -> None:
    verified = VerifiedTokens(service, clock, audience=CLOUD_SYNC_AUDIENCE)
    stranger = TokenService(
        ec.generate_private_key(ec.SECP256R1()),
        issuer="ledgersync.test",
        access_ttl=ACCESS_TTL,
        refresh_window=REFRESH_WINDOW,
        clock=clock,
    )
    with pytest.raises(TokenError, match="Invalid JWT"):
        verified.verify(issue(stranger))
    with pytest.raises(TokenError, match="Invalid JWT"):
        verified.verify(issue(stranger))  # a refusal is not remembered as valid


def test_the_cache_is_bounded_oldest_first(service: CountingTokens, clock: ManualClock) -> None:
    verified = VerifiedTokens(service, clock, audience=TRUSTCHAIN_AUDIENCE, size=2)
    first, second, third = issue(service), issue(service), issue(service)
    for token in (first, second, third):
        verified.verify(token)
    assert service.checks == 3
    verified.verify(third)
    verified.verify(second)
    assert service.checks == 3
    verified.verify(first)  # forgotten: checked again
    assert service.checks == 4


def test_issued_tokens_are_standard_es256_jwts(service: CountingTokens) -> None:
    """An independent implementation (PyJWT) reads and verifies what the server writes."""
    token = service.issue(b"\x03" * 33, device=False, permissions={"00ab": {"m/": ["owner"]}})
    public = service._public_key  # type: ignore[attr-defined]
    claims = jwt.decode(
        token,
        public,
        algorithms=["ES256"],
        audience=TRUSTCHAIN_AUDIENCE,
        issuer="ledgersync.test",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == "03" * 33 and claims["permissions"] == {"00ab": {"m/": ["owner"]}}
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}
    assert service.verify(token).subject == "03" * 33
