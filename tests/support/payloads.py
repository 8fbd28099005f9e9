"""Base64 as the APIs carry it: Cloud Sync payloads (standard alphabet, padded) and JWT
segments (URL-safe alphabet, unpadded)."""

from __future__ import annotations

import base64
import json


def b64(text: str) -> str:
    """A Cloud Sync payload (base64, as Ledger's clients send) carrying ``text``."""
    return base64.b64encode(text.encode()).decode("ascii")


def b64url_encode(data: bytes) -> str:
    """A JWT segment: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(value: object) -> str:
    """A JWT segment holding ``value`` as JSON (a string is taken as the JSON text itself)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return b64url_encode(text.encode())
