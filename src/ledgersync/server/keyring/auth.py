"""Logging in: challenges, ``/v1/authenticate``, ``/v1/refresh`` and bearer-token checks.

A challenge is signed by the server's relying-party key, remembered by its 16 random bytes
and can be answered once, before its expiry. The answer's signature covers the challenge hash;
its attestation says who signed:

* ``00 …`` (device): the Ledger Sync app's attestation key vouches for the seed-id signature;
  the key must be one of the trusted attestation keys;
* ``02 len id`` (member): a software key asking to enter trustchain ``id``; it must belong to
  an open application stream of that trustchain, else 401 ``Not a member of trustchain <id>``.

Failures are 401 with a message saying what was wrong; a malformed request is a 400.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from ...protocol import crypto
from ...protocol.challenge import (
    ATTESTATION_APPLICATION,
    Challenge,
    ChallengeAnswer,
    DeviceAttestation,
    MemberAttestation,
    build_challenge,
)
from ...protocol.errors import ChallengeError, CryptoError, SignatureError
from ..errors import JWT_EXPIRED_REAUTHENTICATE, BadRequest, Unauthorized, not_a_member
from ..tokens import Permissions, TokenClaims, claims_or_401
from .context import KeyRing
from .permissions import device_permissions, member_permissions

TRUSTCHAIN_ID = re.compile(r"00[0-9a-f]{64}")


def is_trustchain_id(value: str) -> bool:
    return TRUSTCHAIN_ID.fullmatch(value) is not None


async def issue_challenge(ring: KeyRing) -> dict[str, Any]:
    """``GET /v1/challenge``: ``{"json": <challenge JSON>, "tlv": "<hex>"}``."""
    now = int(ring.clock())
    expiry = now + ring.config.challenge_ttl
    # Not stored: the signature and the expiry inside vouch for it (see ``_consume``).
    challenge = build_challenge(ring.relying_party, ring.config.public_host, expiry)
    return {"json": challenge.to_json(), "tlv": challenge.encode().hex()}


async def authenticate(ring: KeyRing, body: Any) -> dict[str, Any]:
    """``POST /v1/authenticate``: ``{"access_token": <JWT>, "permissions": {...}}``."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be an object with challenge and signature")
    try:
        challenge = Challenge.from_json(body.get("challenge"))
    except ChallengeError as exc:
        raise BadRequest(f"challenge: {exc}") from exc
    try:
        answer = ChallengeAnswer.from_json(body.get("signature"))
    except ChallengeError as exc:
        raise BadRequest(f"signature: {exc}") from exc
    credential, signature, attestation = answer.credential, answer.signature, answer.attestation

    await _consume(ring, challenge)
    challenge_hash = challenge.hash()
    kind = "device" if isinstance(attestation, DeviceAttestation) else "member"
    try:
        try:
            crypto.verify_signature(credential.public_key, challenge_hash, signature)
        except (SignatureError, CryptoError) as exc:
            raise Unauthorized(f"the challenge signature does not verify: {exc}") from exc
        if isinstance(attestation, DeviceAttestation):
            result = await _device_login(
                ring, credential.public_key, attestation, challenge_hash, signature
            )
        else:
            result = await _member_login(ring, credential.public_key, attestation)
    except Unauthorized:
        ring.metrics.logins.labels(kind, "refused").inc()
        raise
    ring.metrics.logins.labels(kind, "accepted").inc()
    return result


async def refresh(ring: KeyRing, token: str) -> dict[str, Any]:
    """``GET /v1/refresh``: a new token for the same subject, permissions recomputed.

    The refresh window stays the one of the original login. A member that no longer belongs
    to any open application stream of its trustchain (removed, or the trustchain deleted) is
    told its JWT is expired without ``/refresh``, so that it logs in again and learns there
    that it was ejected.
    """
    claims = verify(ring, token, for_refresh=True)
    permissions = await current_permissions(ring, claims)
    if not claims.device and not permissions:
        raise Unauthorized(f"{JWT_EXPIRED_REAUTHENTICATE} (no longer a member)")
    access_token = ring.tokens.issue(
        claims.subject_key,
        device=claims.device,
        permissions=permissions,
        refresh_expiration=claims.refresh_expiration,
    )
    return {"access_token": access_token, "permissions": permissions}


def verify(ring: KeyRing, token: str, *, for_refresh: bool = False) -> TokenClaims:
    return claims_or_401(ring.verified_tokens, token, for_refresh=for_refresh)


async def current_permissions(ring: KeyRing, claims: TokenClaims) -> Permissions:
    """The subject's permissions now: a device's trustchains, or a member's open streams in
    the trustchains its token names."""
    if claims.device:
        return device_permissions(await ring.store.trustchains_of(claims.subject_key))
    permissions: Permissions = {}
    for trustchain_id in claims.permissions:
        streams = await ring.store.streams_with_member(trustchain_id, claims.subject_key)
        permissions.update(member_permissions(trustchain_id, streams))
    return permissions


async def _consume(ring: KeyRing, challenge: Challenge) -> None:
    """Check the challenge is one of ours, unused and unexpired; it can never be used again."""
    ours = hmac.compare_digest(challenge.rp_public_key, ring.relying_party.public_key)
    if not ours or challenge.host != ring.config.public_host:
        raise Unauthorized("unknown challenge: it was not issued by this server")
    try:
        challenge.verify_rp_signature(allow_high_s=False)
    except ChallengeError as exc:
        raise Unauthorized("unknown challenge: it was altered after it was issued") from exc
    now = int(ring.clock())
    if now >= challenge.expiry:  # first: a used challenge is forgotten some time after expiry
        raise Unauthorized("the challenge has expired; get a new one at /v1/challenge")
    if not await ring.store.use_challenge(challenge.data, challenge.expiry, now):
        raise Unauthorized("already used challenge; get a new one at /v1/challenge")


async def _device_login(
    ring: KeyRing,
    device: bytes,
    attestation: DeviceAttestation,
    challenge_hash: bytes,
    signature: bytes,
) -> dict[str, Any]:
    if attestation.attestation_type != ATTESTATION_APPLICATION:
        raise Unauthorized(
            f"attestation type 0x{attestation.attestation_type:02x} is not supported"
        )
    key = attestation.credential.public_key
    trusted_keys = ring.config.trusted_attestation_keys
    if not any(hmac.compare_digest(key, trusted) for trusted in trusted_keys):
        raise Unauthorized(f"the attestation key {key.hex()} is not trusted by this server")
    try:
        attestation.verify(challenge_hash, signature)
    except ChallengeError as exc:
        raise Unauthorized(str(exc)) from exc
    permissions = device_permissions(await ring.store.trustchains_of(device))
    token = ring.tokens.issue(device, device=True, permissions=permissions)
    return {"access_token": token, "permissions": permissions}


async def _member_login(
    ring: KeyRing, member: bytes, attestation: MemberAttestation
) -> dict[str, Any]:
    trustchain_id = attestation.trustchain_id
    if not is_trustchain_id(trustchain_id):
        raise Unauthorized(not_a_member(trustchain_id[:80]))
    streams = await ring.store.streams_with_member(trustchain_id, member)
    permissions = member_permissions(trustchain_id, streams)
    if not permissions:
        raise Unauthorized(not_a_member(trustchain_id))
    token = ring.tokens.issue(member, device=False, permissions=permissions)
    return {"access_token": token, "permissions": permissions}
