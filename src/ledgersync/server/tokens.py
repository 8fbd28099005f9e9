"""Access tokens: ES256 JWTs with the claims Ledger's backend issues.

See docs/api.md, "Tokens and permissions".

Claims: ``iss`` (the public host), ``sub`` (hex public key that logged in), ``aud``
(``["CloudSync", "trustchain"]``), ``iat``, ``exp`` (``iat`` + access TTL), ``jti``,
``permissions`` (``{trustchainId: {path: ["owner"]}}``, a snapshot taken when the token was
issued or refreshed), ``device`` (device login or member login) and ``refreshExpiration``
(ISO time, the end of the refresh window, fixed at the original login and kept by refreshes).

Verification answers with the texts the SDK reacts to (docs/api.md, "Error texts"): an
expired token inside its refresh window says ``JWT is expired, please call /refresh …``;
past the window it says ``JWT is expired, please call /challenge …``. Expiry is judged with
the injected clock, so tests can move time. Tokens are encoded and checked here, with
the ``cryptography`` package's P-256: one header, one algorithm, nothing taken from a token's
header.

The Cloud Sync API verifies the same tokens with ``audience=CLOUD_SYNC_AUDIENCE``.

One token, one string: an ECDSA signature ``(r, s)`` is also valid as ``(r, n - s)``, and a
base64url decoder ignores the spare bits of a segment's last character, so a token could be
rewritten into other strings with the same claims (each then cached and logged as another
token). Tokens are therefore issued with the low ``s`` (``s <= n / 2``, as the challenge
signatures are) and only their canonical encoding is accepted: each segment must be the
unpadded base64url of its bytes, and the signature's ``s`` the low one.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..protocol.wire import format_time, parse_time
from .clock import Clock
from .errors import JWT_EXPIRED_REAUTHENTICATE, JWT_EXPIRED_REFRESH, Unauthorized

ALGORITHM = "ES256"
TRUSTCHAIN_AUDIENCE = "trustchain"
CLOUD_SYNC_AUDIENCE = "CloudSync"
AUDIENCES = [CLOUD_SYNC_AUDIENCE, TRUSTCHAIN_AUDIENCE]
#: Ledger's only permission value.
OWNER = "owner"

Permissions = dict[str, dict[str, list[str]]]

#: The order of P-256; ES256 signatures are ``r || s``, 32 bytes each.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _P256_ORDER // 2
_ECDSA = ec.ECDSA(hashes.SHA256())
#: The one header this server writes (``alg`` and ``typ``, keys sorted, compact).
_HEADER = json.dumps(
    {"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":"), sort_keys=True
).encode()


class TokenError(Exception):
    """A token that cannot be used; ``str(error)`` is the client-facing message."""

    #: The token is genuine but past its lifetime (the client may present a fresh one).
    expired: bool = False


class TokenExpired(TokenError):
    expired = True


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    device: bool
    permissions: Permissions
    issued_at: int
    expires_at: int
    refresh_expiration: int
    token_id: str

    @property
    def subject_key(self) -> bytes:
        return bytes.fromhex(self.subject)


class TokenService:
    """Issues and verifies access tokens with one P-256 key."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        issuer: str,
        access_ttl: int,
        refresh_window: int,
        clock: Clock,
    ) -> None:
        self._key = key
        self._public_key = key.public_key()
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.refresh_window = refresh_window
        self._clock = clock

    def issue(
        self,
        subject: bytes,
        *,
        device: bool,
        permissions: Permissions,
        refresh_expiration: int | None = None,
    ) -> str:
        """A fresh token; ``refresh_expiration`` is carried over on refresh, new on login."""
        now = int(self._clock())
        if refresh_expiration is None:
            refresh_expiration = now + self.refresh_window
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject.hex(),
            "aud": AUDIENCES,
            "exp": now + self.access_ttl,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "permissions": permissions,
            "device": device,
            "refreshExpiration": format_time(refresh_expiration),
        }
        payload = json.dumps(claims, separators=(",", ":")).encode()
        signing_input = f"{_HEADER_SEGMENT}.{_b64url_encode(payload)}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), _ECDSA))
        if s > _HALF_ORDER:  # the low s: one token, one string (see above)
            s = _P256_ORDER - s
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url_encode(signature)}"

    def verify(
        self, token: str, *, audience: str = TRUSTCHAIN_AUDIENCE, for_refresh: bool = False
    ) -> TokenClaims:
        """The claims of a valid token, or :class:`TokenError`.

        With ``for_refresh`` an expired access token is accepted as long as its refresh window
        is open (that is what ``GET /v1/refresh`` needs).
        """
        try:
            raw = self._verified_payload(token, audience)
            claims = _claims(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise TokenError(f"Invalid JWT: {_reason(exc)}") from exc
        now = self._clock()
        if now >= claims.refresh_expiration:
            raise TokenExpired(JWT_EXPIRED_REAUTHENTICATE)
        if now >= claims.expires_at and not for_refresh:
            raise TokenExpired(JWT_EXPIRED_REFRESH)
        return claims

    def _verified_payload(self, token: str, audience: str) -> dict[str, Any]:
        """The claims of a token this service signed, for ``audience``: its header exactly
        the one :meth:`issue` writes (no other algorithm, key or header field is ever taken
        from a token), its signature checked, then its issuer and audience."""
        header, payload, signature = _canonical_parts(token)
        if header != _HEADER:
            raise _Invalid("unsupported header")
        signing_input, _, _ = token.rpartition(".")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self._public_key.verify(der, signing_input.encode("ascii"), _ECDSA)
        except InvalidSignature as exc:
            raise _Invalid("bad signature") from exc
        raw = json.loads(payload)
        if not isinstance(raw, dict):
            raise _Invalid("malformed token")
        for claim in ("iss", "sub", "aud", "exp", "iat", "jti"):
            if claim not in raw:
                raise _Invalid(f'Token is missing the "{claim}" claim')
        if raw["iss"] != self.issuer:
            raise _Invalid("wrong issuer")
        audiences = raw["aud"]
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _Invalid("malformed token")
        if audience not in audiences:
            raise _Invalid("wrong audience")
        return raw


class VerifiedTokens:
    """:meth:`TokenService.verify` for one audience, remembering the tokens already found
    valid: a client sends the same token with every request for minutes, and checking its
    ES256 signature is most of what a cheap request costs (about 150 µs). A remembered token
    is still judged against the clock on every use (the expiry and the refresh window); once
    it is past what the call allows it goes through :meth:`TokenService.verify` again, which
    answers with Ledger's texts. Bounded: the oldest entries are forgotten first. Keyed by the
    token's exact string (tokens have one canonical encoding, see above): only a
    byte-for-byte equal token hits, and string hashing being keyed per process (SipHash), the
    lookup's timing says nothing about the tokens held."""

    def __init__(
        self, tokens: TokenService, clock: Clock, *, audience: str, size: int = 4096
    ) -> None:
        self._tokens = tokens
        self._clock = clock
        self._audience = audience
        self._size = size
        self._valid: dict[str, TokenClaims] = {}

    def verify(self, token: str, *, for_refresh: bool = False) -> TokenClaims:
        """The claims of a valid token, or :class:`TokenError` (as ``TokenService.verify``)."""
        claims = self._valid.get(token)
        if claims is not None:
            now = self._clock()
            if now < claims.refresh_expiration and (for_refresh or now < claims.expires_at):
                return claims
        try:
            claims = self._tokens.verify(token, audience=self._audience, for_refresh=for_refresh)
        except TokenError:
            self._valid.pop(token, None)
            raise
        if len(self._valid) >= self._size:
            del self._valid[next(iter(self._valid))]
        self._valid[token] = claims
        return claims


def claims_or_401(tokens: VerifiedTokens, token: str, *, for_refresh: bool = False) -> TokenClaims:
    """The claims of a valid token, else 401 (:class:`~.errors.Unauthorized`) with the
    verifier's message: what both APIs answer a request whose token is refused."""
    try:
        return tokens.verify(token, for_refresh=for_refresh)
    except TokenError as exc:
        raise Unauthorized(str(exc)) from exc


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER_SEGMENT = _b64url_encode(_HEADER)


class _Invalid(ValueError):
    """A token refused before its claims are read; ``str`` is the reason given."""


def _canonical_parts(token: str) -> tuple[bytes, bytes, bytes]:
    """The decoded header, payload and signature of ``token``, refusing any string but the
    one :meth:`TokenService.issue` would produce for these bytes: three unpadded base64url
    segments in canonical form, a 64-byte low-``s`` signature."""
    segments = token.split(".")
    if len(segments) != 3:
        raise _Invalid("malformed token")
    try:
        decoded = [_b64url_decode(segment) for segment in segments]
    except (binascii.Error, ValueError) as exc:
        raise _Invalid("malformed token") from exc
    if any(_b64url_encode(data) != text for data, text in zip(decoded, segments, strict=True)):
        raise _Invalid("non-canonical encoding")
    header, payload, signature = decoded
    if len(signature) != 64 or int.from_bytes(signature[32:], "big") > _HALF_ORDER:
        raise _Invalid("non-canonical signature")
    return header, payload, signature


def _claims(raw: dict[str, Any]) -> TokenClaims:
    subject = raw["sub"]
    key = bytes.fromhex(subject)
    if len(key) != 33:
        raise ValueError("sub is not a compressed public key")
    device = raw.get("device")
    if not isinstance(device, bool):
        raise ValueError("device must be a boolean")
    permissions = raw.get("permissions")
    if not _is_permissions(permissions):
        raise ValueError("permissions are malformed")
    assert isinstance(permissions, dict)
    expires_at, issued_at = raw["exp"], raw["iat"]
    if not isinstance(expires_at, int) or not isinstance(issued_at, int):
        raise ValueError("exp and iat must be integers")
    return TokenClaims(
        subject=subject,
        device=device,
        permissions=permissions,
        issued_at=issued_at,
        expires_at=expires_at,
        refresh_expiration=parse_time(raw["refreshExpiration"]),
        token_id=str(raw["jti"]),
    )


def _is_permissions(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(trustchain, str)
        and isinstance(paths, dict)
        and all(
            isinstance(path, str)
            and isinstance(rights, list)
            and all(isinstance(r, str) for r in rights)
            for path, rights in paths.items()
        )
        for trustchain, paths in value.items()
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "malformed token"
    if isinstance(exc, KeyError):
        return f"missing claim {exc}"
    return str(exc) or type(exc).__name__
