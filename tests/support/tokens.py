"""Access tokens (JWT, ES256) as tests take them apart."""

from __future__ import annotations

from typing import Any

import jwt

#: The order of P-256: an ES256 signature's S is canonical (low) when at most half of it.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def token_claims(access_token: str) -> dict[str, Any]:
    """Read a token's claims (the SDK never does; tests use ``exp``)."""
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims
