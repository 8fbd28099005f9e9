"""Access tokens: ES256 JWTs with the claims Ledger's backend issues (``ledger-sync-api.md`` §2.4).

Claims: ``iss`` (the public host), ``sub`` (hex public key that logged in), ``aud``
(``["CloudSync", "trustchain"]``), ``iat``, ``exp`` (``iat`` + access TTL), ``jti``,
``permissions`` (``{trustchainId: {path: ["owner"]}}``, a snapshot taken when the token was
issued or refreshed), ``device`` (device login or member login) and ``refreshExpiration``
(ISO time, the end of the refresh window, fixed at the original login and kept by refreshes).

Verification answers with the texts the SDK reacts to (§2.5): an expired token inside its
refresh window says ``JWT is expired, please call /refresh …``; past the window it says
``JWT is expired, please call /challenge …``. Expiry is judged with the injected clock, not
PyJWT's, so tests can move time.

The Cloud Sync API verifies the same tokens with ``audience=CLOUD_SYNC_AUDIENCE``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from .clock import Clock
from .errors import JWT_EXPIRED_REAUTHENTICATE, JWT_EXPIRED_REFRESH

ALGORITHM = "ES256"
TRUSTCHAIN_AUDIENCE = "trustchain"
CLOUD_SYNC_AUDIENCE = "CloudSync"
AUDIENCES = [CLOUD_SYNC_AUDIENCE, TRUSTCHAIN_AUDIENCE]
#: Ledger's only permission value.
OWNER = "owner"

Permissions = dict[str, dict[str, list[str]]]


class TokenError(Exception):
    """A token that cannot be used; ``str(error)`` is the client-facing message."""


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


def format_time(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


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
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "JWT"})

    def verify(
        self, token: str, *, audience: str = TRUSTCHAIN_AUDIENCE, for_refresh: bool = False
    ) -> TokenClaims:
        """The claims of a valid token, or :class:`TokenError`.

        With ``for_refresh`` an expired access token is accepted as long as its refresh window
        is open (that is what ``GET /v1/refresh`` needs).
        """
        try:
            raw = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "aud", "exp", "iat", "jti"],
                },
            )
            claims = _claims(raw)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise TokenError(f"Invalid JWT: {_reason(exc)}") from exc
        now = self._clock()
        if now >= claims.refresh_expiration:
            raise TokenError(JWT_EXPIRED_REAUTHENTICATE)
        if now >= claims.expires_at and not for_refresh:
            raise TokenError(JWT_EXPIRED_REFRESH)
        return claims


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
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return str(exc)
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    if isinstance(exc, KeyError):
        return f"missing claim {exc}"
    return str(exc) or type(exc).__name__
