"""Authentication and authorization attacks, on both backends, over real HTTP and websockets.

Forged tokens (``alg: none``, HS256 keyed with the server's public key, other keys and
algorithms, embedded or remote keys, high-S and re-encoded signatures, tampered claims, and
tokens correctly signed with the server's own key but with claims it would never issue),
expired tokens, replayed and foreign challenges (also raced and across a restart),
untrusted attestations, access across trustchains, removed members (with the SDK), a third
QR peer, and the rate limits. Every one must be refused, with the JSON error, never a 5xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledgersync.protocol import KeyPair
from ledgersync.protocol.challenge import Challenge, DeviceAttestation, sign_seed_id
from ledgersync.sdk.credentials import TrustchainMember
from ledgersync.sdk.errors import TrustchainEjected
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.server.keys import ServerKeys

from ..support.cloudsync import closed, next_frame, subscribe
from ..support.devices import software_device
from ..support.http import response_problem
from ..support.keyring import (
    PROD_ATTESTATION_KEY,
    Session,
    app_path,
    bearer,
    device_answer,
    get_challenge,
    login_member,
    member_answer,
    rotate,
)
from ..support.payloads import b64url_decode, b64url_encode
from ..support.servers import ManualClock, RunningServer
from ..support.tokens import P256_ORDER
from ..support.world import World, populate


#: The order of P-256 (ES256 signatures are r ‖ s modulo it).
def part(value: Any) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def parts_of(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    header, claims, signature = token.split(".")
    return (
        json.loads(b64url_decode(header)),
        json.loads(b64url_decode(claims)),
        b64url_decode(signature),
    )


def assemble(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    return f"{part(header)}.{part(claims)}.{b64url_encode(signature)}"


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(mac)}"


def low_s(token: str) -> str:
    """The same token with its signature in the low-S form (the one the server issues)."""
    header, claims, signature = parts_of(token)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    s = min(s, P256_ORDER - s)
    return assemble(header, claims, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def server_token(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """A token signed with the server's own key, as the server would (low S)."""
    return low_s(jwt.encode(claims, key, algorithm="ES256", headers={"typ": "JWT"}))


def server_keys(server: RunningServer) -> ServerKeys:
    return ServerKeys.from_json(Path(server.config.key_file).read_text())


# --- what a refusal must look like, on each API --------------------------------------------------


def refused_everywhere(world: World, token: str, what: str) -> list[str]:
    """``token`` used on the Key Ring API, /v1/refresh, the Cloud Sync API: all must be 401."""
    client = world.client
    answers = {
        "GET /v1/trustchains": client.get("/v1/trustchains", headers=bearer(token)),
        "GET /v1/refresh": client.get("/v1/refresh", headers=bearer(token)),
        "GET tree": client.get(f"/v1/trustchain/{world.trustchain_id}", headers=bearer(token)),
        "GET /atomic": client.get(
            "/atomic/v1/live", params=world.document(), headers=bearer(token)
        ),
    }
    problems = []
    for name, response in answers.items():
        problem = response_problem(response)
        if problem is None and response.status_code != 401:
            problem = f"answered {response.status_code}: {response.text[:120]}"
        if problem:
            problems.append(f"{what}, {name}: {problem}")
    return problems


async def refused_by_notifications(world: World, token: str) -> int | None:
    socket = await subscribe(world.server.ws_url, token)
    try:
        code, _ = await closed(socket)
    finally:
        await socket.close()
    return code


def check_all(world: World, tokens: dict[str, str]) -> None:
    problems = []
    for what, token in tokens.items():
        problems += refused_everywhere(world, token, what)
    assert not problems, "\n".join(problems)
    # the genuine token still works: the refusals were about the forgeries
    assert world.member.get("/v1/trustchains").status_code == 200


# --- forged tokens -------------------------------------------------------------------------------


def test_alg_none_is_refused(world: World) -> None:
    header, claims, signature = parts_of(world.member.token)
    forged = {}
    for alg in ("none", "None", "NONE", "nOnE", "", None):
        forged[f"alg {alg!r}"] = assemble({**header, "alg": alg}, claims, b"")
        forged[f"alg {alg!r} with the signature"] = assemble(
            {**header, "alg": alg}, claims, signature
        )
    forged["no alg"] = assemble({"typ": "JWT"}, claims, b"")
    forged["no signature part"] = f"{part({'alg': 'none'})}.{part(claims)}"
    check_all(world, forged)


async def test_alg_none_is_refused_by_the_notifications_socket(world: World) -> None:
    _, claims, _ = parts_of(world.member.token)
    token = assemble({"alg": "none", "typ": "JWT"}, claims, b"")
    assert await refused_by_notifications(world, token) == 1008


def test_hs256_keyed_with_the_servers_public_keys_is_refused(world: World) -> None:
    keys = server_keys(world.server)
    public = keys.token_key.public_key()
    _, claims, _ = parts_of(world.member.token)
    secrets = {
        "PEM": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "DER": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "uncompressed point": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        "compressed point": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        ),
        "OpenSSH": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "JWK": json.dumps(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))).encode(),
        "the challenge key": keys.relying_party.public_key,
        "the challenge key, hex": keys.relying_party.public_key.hex().encode(),
        "empty": b"",
    }
    check_all(
        world, {f"HS256 with {name}": hs256(claims, secret) for name, secret in secrets.items()}
    )


def test_tokens_signed_by_other_keys_are_refused(world: World) -> None:
    keys = server_keys(world.server)
    _, claims, _ = parts_of(world.member.token)
    attacker = ec.generate_private_key(ec.SECP256R1())
    challenge_key = ec.derive_private_key(
        int.from_bytes(keys.relying_party.private_key, "big"), ec.SECP256K1()
    )
    attacker_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    forged = {
        "ES256, another P-256 key": low_s(jwt.encode(claims, attacker, algorithm="ES256")),
        "ES256K, the server's challenge key": jwt.encode(claims, challenge_key, algorithm="ES256K"),
        "ES384": jwt.encode(claims, ec.generate_private_key(ec.SECP384R1()), algorithm="ES384"),
        "ES512": jwt.encode(claims, ec.generate_private_key(ec.SECP521R1()), algorithm="ES512"),
        "RS256": jwt.encode(
            claims,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
        ),
        "embedded jwk": low_s(
            jwt.encode(claims, attacker, algorithm="ES256", headers={"jwk": attacker_jwk})
        ),
        "kid pointing at the key file": low_s(
            jwt.encode(
                claims,
                attacker,
                algorithm="ES256",
                headers={"kid": str(world.server.config.key_file)},
            )
        ),
        "kid traversal": low_s(
            jwt.encode(claims, attacker, algorithm="ES256", headers={"kid": "../../../../dev/null"})
        ),
        "crit header": low_s(
            jwt.encode(claims, attacker, algorithm="ES256", headers={"crit": ["exp"], "exp": 1})
        ),
    }
    check_all(world, forged)


async def test_remote_keys_in_headers_are_never_fetched(world: World) -> None:
    """``jku`` / ``x5u`` / ``x5c`` naming a key the attacker serves: the server fetches
    nothing (the listener sees no connection) and refuses the token."""
    connections: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append("connected")
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/jwks.json"
    try:
        attacker = ec.generate_private_key(ec.SECP256R1())
        _, claims, _ = parts_of(world.member.token)
        forged = {
            name: low_s(
                jwt.encode(claims, attacker, algorithm="ES256", headers={name: url, "kid": "1"})
            )
            for name in ("jku", "x5u")
        }
        forged["x5c"] = low_s(
            jwt.encode(claims, attacker, algorithm="ES256", headers={"x5c": ["MIIB"]})
        )
        await asyncio.to_thread(check_all, world, forged)
    finally:
        listener.close()
        await listener.wait_closed()
    assert connections == []


def test_high_s_signatures_are_refused(world: World) -> None:
    """ECDSA signatures are malleable: (r, n - s) verifies as well as (r, s). The server
    accepts only the form it issues (low S), so a token has one spelling."""
    header, claims, signature = parts_of(world.member.token)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    assert s <= P256_ORDER // 2, "the server issued a high-S token"
    high = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    check_all(world, {"high S": assemble(header, claims, high)})


def test_re_encoded_signatures_are_refused(world: World) -> None:
    header, claims, signature = parts_of(world.member.token)
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    der = encode_dss_signature(r, s)
    assert decode_dss_signature(der) == (r, s)
    forged = {
        "DER signature": assemble(header, claims, der),
        "66-byte signature": assemble(
            header, claims, b"\x00" + signature[:32] + b"\x00" + signature[32:]
        ),
        "63-byte signature": assemble(header, claims, signature[:63]),
        "r = s = 0": assemble(header, claims, b"\x00" * 64),
        "r = s = n": assemble(header, claims, P256_ORDER.to_bytes(32, "big") * 2),
        "padded base64": world.member.token + "==",
        "standard base64": world.member.token.replace("-", "+").replace("_", "/") + "+",
    }
    check_all(world, forged)


def test_tampered_claims_are_refused(world: World) -> None:
    header, claims, signature = parts_of(world.member.token)
    other = "00" + "ab" * 32
    changes: dict[str, dict[str, Any]] = {
        "another trustchain granted": {
            "permissions": {**claims["permissions"], other: {app_path(0): ["owner"]}}
        },
        "device promoted": {"device": True},
        "another subject": {"sub": KeyPair.generate().public_key.hex()},
        "expiry extended": {"exp": claims["exp"] + 86400},
        "refresh window extended": {"refreshExpiration": "2099-01-01T00:00:00Z"},
        "audience": {"aud": ["CloudSync", "trustchain", "admin"]},
        "issuer": {"iss": "evil.example"},
        "token id": {"jti": "0"},
    }
    forged = {
        name: assemble(header, {**claims, **change}, signature) for name, change in changes.items()
    }
    forged["a claim removed"] = assemble(
        header, {k: v for k, v in claims.items() if k != "jti"}, signature
    )
    forged["header changed"] = assemble({**header, "typ": "at+jwt"}, claims, signature)
    check_all(world, forged)


def test_server_signed_tokens_with_impossible_claims_are_refused(world: World) -> None:
    """Even signed with the server's own key, claims it never issues are refused (401, not a
    500): the verifier checks every claim's type and value."""
    key = server_keys(world.server).token_key
    _, claims, _ = parts_of(world.member.token)
    changes: dict[str, Any] = {
        "wrong issuer": {"iss": "evil.example"},
        "no audience": {"aud": []},
        "other audience": {"aud": ["admin"]},
        "expiry a string": {"exp": "tomorrow"},
        "expiry a float": {"exp": float(claims["exp"])},
        "subject not hex": {"sub": "zz"},
        "subject 32 bytes": {"sub": "ab" * 32},
        "subject long": {"sub": "ab" * 2000},
        "permissions a list": {"permissions": [claims["permissions"]]},
        "permissions rights not a list": {
            "permissions": {world.trustchain_id: {world.path: "owner"}}
        },
        "permissions deeply nested": {"permissions": {"a": {"b": [[[[[["owner"]]]]]]}}},
        "device a string": {"device": "yes"},
        "refreshExpiration garbage": {"refreshExpiration": "not a date"},
        "refreshExpiration a number": {"refreshExpiration": 4102444800},
        "refreshExpiration out of range": {"refreshExpiration": "99999-01-01T00:00:00Z"},
    }
    forged = {name: server_token({**claims, **change}, key) for name, change in changes.items()}
    for name in (
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "refreshExpiration",
        "permissions",
        "device",
    ):
        forged[f"no {name}"] = server_token({k: v for k, v in claims.items() if k != name}, key)
    check_all(world, forged)


def test_audiences_are_not_interchangeable(world: World) -> None:
    """A token for one API only is refused by the other."""
    key = server_keys(world.server).token_key
    _, claims, _ = parts_of(world.member.token)
    key_ring_only = server_token({**claims, "aud": ["trustchain"]}, key)
    cloud_only = server_token({**claims, "aud": ["CloudSync"]}, key)
    client = world.client
    cloud = client.get("/atomic/v1/live", params=world.document(), headers=bearer(key_ring_only))
    assert cloud.status_code == 401 and response_problem(cloud) is None
    ring = client.get(f"/v1/trustchain/{world.trustchain_id}", headers=bearer(cloud_only))
    assert ring.status_code == 401 and response_problem(ring) is None
    # the control: each works where it belongs
    assert (
        client.get(
            "/atomic/v1/live", params=world.document(), headers=bearer(cloud_only)
        ).status_code
        == 200
    )
    assert (
        client.get(
            f"/v1/trustchain/{world.trustchain_id}", headers=bearer(key_ring_only)
        ).status_code
        == 200
    )


# --- expiry --------------------------------------------------------------------------------------


async def test_expired_tokens_are_refused(make_server: Callable[..., RunningServer]) -> None:
    clock = ManualClock()
    server = make_server(clock=clock, access_token_ttl=60, refresh_window=600)
    world = await asyncio.to_thread(populate, server)
    socket = await subscribe(server.ws_url, world.member.token)
    try:
        # Subscribed (no document yet) before the clock moves: else the token could be judged
        # already expired when it arrives, and no "0" would come.
        assert await next_frame(socket) == "0"
        clock.advance(61)
        # the open socket is told, then must send a fresh token; the expired one is refused
        assert await next_frame(socket) == "JWT expired"
        await socket.send(world.member.token)
        assert await next_frame(socket) == "JWT expired"
    finally:
        await socket.close()
    for url, params in [
        ("/v1/trustchains", None),
        (f"/v1/trustchain/{world.trustchain_id}", None),
        ("/atomic/v1/live", world.document()),
    ]:
        response = await asyncio.to_thread(
            world.client.get, url, params=params, headers=bearer(world.member.token)
        )
        assert response.status_code == 401 and "/refresh" in response.json()["message"], url
    clock.advance(600)
    response = await asyncio.to_thread(world.member.refresh)
    assert response.status_code == 401 and "/challenge" in response.json()["message"]
    response = await asyncio.to_thread(
        world.client.get,
        "/atomic/v1/live",
        params=world.document(),
        headers=bearer(world.member.token),
    )
    assert response.status_code == 401 and "/challenge" in response.json()["message"]


# --- challenges ----------------------------------------------------------------------------------


def test_a_challenge_answer_is_single_use(world: World) -> None:
    answer = device_answer(get_challenge(world.client), KeyPair.generate())
    assert world.client.post("/v1/authenticate", json=answer).status_code == 200
    again = world.client.post("/v1/authenticate", json=answer)
    assert again.status_code == 401 and response_problem(again) is None
    # the same challenge signed by someone else is just as used
    challenge = Challenge.from_json(answer["challenge"])
    other = world.client.post("/v1/authenticate", json=device_answer(challenge, KeyPair.generate()))
    assert other.status_code == 401


async def test_a_challenge_answered_many_times_at_once_logs_in_once(world: World) -> None:
    answer = device_answer(get_challenge(world.client), KeyPair.generate())
    async with httpx2.AsyncClient(base_url=world.server.url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/authenticate", json=answer) for _ in range(12))
        )
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [200] + [401] * 11, statuses


def test_a_used_challenge_stays_used_after_a_restart(
    make_server: Callable[..., RunningServer],
) -> None:
    first = make_server()
    answer = device_answer(get_challenge(first.client()), KeyPair.generate())
    assert first.client().post("/v1/authenticate", json=answer).status_code == 200
    first.stop()
    second = make_server()  # the same database and key file
    assert second.client().post("/v1/authenticate", json=answer).status_code == 401
    unused = device_answer(get_challenge(second.client()), KeyPair.generate())
    second.stop()
    third = make_server()
    assert third.client().post("/v1/authenticate", json=unused).status_code == 200


def test_foreign_and_forged_challenges_are_refused(
    make_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = make_server()
    other = make_server(key_file=tmp_path / "other-key.json")  # same host name, other keys
    client = server.client()
    problems = []
    foreign = device_answer(get_challenge(other.client()), KeyPair.generate())
    attacker = KeyPair.generate()
    genuine = get_challenge(client)
    candidates = {
        "issued by another server": foreign,
        "re-signed by an attacker": device_answer(_resigned(genuine, attacker), KeyPair.generate()),
        "expiry moved": device_answer(
            _with(genuine, expiry=genuine.expiry + 3600), KeyPair.generate()
        ),
        "host changed": device_answer(_with(genuine, host="evil.example"), KeyPair.generate()),
        "data changed": device_answer(_with(genuine, data=bytes(16)), KeyPair.generate()),
    }
    for name, answer in candidates.items():
        response = client.post("/v1/authenticate", json=answer)
        if response.status_code != 401 or response_problem(response):
            problems.append(f"{name}: {response.status_code} {response.text[:100]}")
    assert not problems, "\n".join(problems)
    # and the genuine challenge was not spent by those attempts
    assert (
        client.post("/v1/authenticate", json=device_answer(genuine, KeyPair.generate())).status_code
        == 200
    )


def _with(challenge: Challenge, **changes: Any) -> Challenge:
    from dataclasses import replace

    return replace(challenge, **changes)


def _resigned(challenge: Challenge, key: KeyPair) -> Challenge:
    from dataclasses import replace

    from ledgersync.protocol import crypto

    unsigned = replace(challenge, rp_public_key=key.public_key, rp_signature=b"")
    return replace(unsigned, rp_signature=crypto.sign_digest(key.private_key, unsigned.hash()))


async def test_an_expired_challenge_is_refused(make_server: Callable[..., RunningServer]) -> None:
    clock = ManualClock()
    server = make_server(clock=clock, challenge_ttl=60)
    client = server.client()
    answer = device_answer(get_challenge(client), KeyPair.generate())
    clock.advance(61)
    response = client.post("/v1/authenticate", json=answer)
    assert response.status_code == 401 and "expired" in response.json()["message"]


# --- attestations --------------------------------------------------------------------------------


def test_untrusted_attestations_are_refused(world: World) -> None:
    client = world.client
    device = KeyPair.generate()
    problems = []

    def attempt(name: str, answer: dict[str, Any]) -> None:
        response = client.post("/v1/authenticate", json=answer)
        if response.status_code != 401 or response_problem(response):
            problems.append(f"{name}: {response.status_code} {response.text[:120]}")

    attempt(
        "a self-made attestation key",
        device_answer(get_challenge(client), device, KeyPair.generate().private_key),
    )
    challenge = get_challenge(client)
    response = sign_seed_id(challenge, device.private_key, KeyPair.generate().private_key)
    forged = DeviceAttestation(
        credential=response.attestation.credential.__class__(PROD_ATTESTATION_KEY),
        signature=response.attestation.signature,
    )
    answer = device_answer(challenge, device)
    answer["signature"]["attestation"] = forged.encode().hex()
    attempt("claims the PROD key, signed by another", answer)
    answer = device_answer(get_challenge(client), device)
    raw = bytearray(bytes.fromhex(answer["signature"]["attestation"]))
    raw[0] = 0x01  # "device" attestation type: not accepted for logins
    answer["signature"]["attestation"] = raw.hex()
    attempt("attestation type 01", answer)
    other_challenge = get_challenge(client)
    answer = device_answer(get_challenge(client), device)
    other = device_answer(other_challenge, device)
    answer["signature"]["attestation"] = other["signature"]["attestation"]
    attempt("an attestation for another challenge", answer)
    attempt(
        "a member attestation by a stranger",
        member_answer(get_challenge(client), KeyPair.generate(), world.trustchain_id),
    )
    attempt(
        "a member attestation by the device for its own trustchain",
        member_answer(get_challenge(client), world.trustchain.device, "00" + "cd" * 32),
    )
    assert not problems, "\n".join(problems)


def test_prod_only_refuses_the_test_attestation(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(prod_attestation_only=True)
    client = server.client()
    response = client.post(
        "/v1/authenticate", json=device_answer(get_challenge(client), KeyPair.generate())
    )
    assert response.status_code == 401 and response_problem(response) is None


# --- across trustchains --------------------------------------------------------------------------


async def test_no_access_across_trustchains(world: World) -> None:
    other = await asyncio.to_thread(populate, world.server)
    client = world.client
    tree_before = other.device.tree(other.trustchain_id).json()
    problems = []

    def refused(name: str, response: httpx2.Response) -> None:
        if response.status_code not in (401, 404) or response_problem(response):
            problems.append(f"{name}: {response.status_code} {response.text[:120]}")

    for who, session in (("device", world.device), ("member", world.member)):
        tid = other.trustchain_id
        refused(f"{who}: read the tree", session.tree(tid))
        refused(f"{who}: delete", session.delete(f"/v1/trustchain/{tid}"))
        other.trustchain.derive(5, KeyPair.generate())
        refused(f"{who}: derive", session.post_derivation(other.trustchain, app_path(5)))
        block = other.trustchain.add_member(
            app_path(0), other.trustchain.device, KeyPair.generate()
        )
        refused(f"{who}: append", session.put_blocks(tid, app_path(0), [block]))
        other.trustchain.streams[app_path(0)].pop()
        for method in ("GET", "POST", "DELETE"):
            refused(
                f"{who}: Cloud Sync {method}",
                client.request(
                    method, "/atomic/v1/live", params=other.document(version="1"),
                    json={"payload": "QUJD"} if method == "POST" else None,
                    headers=bearer(session.token),
                ),
            )  # fmt: skip
    # a member of one trustchain cannot log in to the other
    login = member_login_response(world, world.member_key, other.trustchain_id)
    refused("member login elsewhere", login)
    assert not problems, "\n".join(problems)
    assert other.device.tree(other.trustchain_id).json() == tree_before

    # notifications: each socket hears its own trustchain only
    def write(on: World, version: int) -> None:
        response = on.client.post(
            "/atomic/v1/cross", params=on.document(version=str(version)),
            json={"payload": "QUJD"}, headers=bearer(on.member.token),
        )  # fmt: skip
        assert response.json() == {"status": "updated"}, response.text

    await asyncio.to_thread(write, world, 1)
    mine = await subscribe(world.server.ws_url, world.member.token, slug="cross")
    try:
        assert await next_frame(mine) == "1"  # the current version: the socket listens now
        await asyncio.to_thread(write, other, 7)
        await asyncio.to_thread(write, world, 2)
        assert await next_frame(mine) == "2"  # not 7: the other trustchain's write
    finally:
        await mine.close()


def member_login_response(world: World, key: KeyPair, trustchain_id: str) -> httpx2.Response:
    return world.client.post(
        "/v1/authenticate", json=member_answer(get_challenge(world.client), key, trustchain_id)
    )


# --- removed members -----------------------------------------------------------------------------


async def test_a_removed_member_keeps_nothing(make_server: Callable[..., RunningServer]) -> None:
    """After a rotation the removed member's unexpired token opens nothing: not the Key Ring
    (tree, refresh), not the old Cloud Sync path (nothing read or written there), not the new
    one (nor can it delete the current document), not a new notifications socket; and it
    cannot restore the trustchain (the SDK says TrustchainEjected)."""
    server = make_server()
    device, _ = software_device()
    sdks = [TrustchainSDK(server.url, name=name) for name in ("Linux", "Mac")]
    try:
        linux, mac = sdks
        linux_creds, mac_creds = linux.init_member_credentials(), mac.init_member_credentials()
        linux_tc = (await linux.get_or_create_trustchain(device, linux_creds)).trustchain
        mac_tc = (await mac.get_or_create_trustchain(device, mac_creds)).trustchain
        old_token = (await mac.get_jwt(mac_tc, mac_creds)).access_token
        client = server.client()
        old = {"id": mac_tc.root_id, "path": mac_tc.application_path}
        post = await asyncio.to_thread(
            client.post, "/atomic/v1/live", params={**old, "version": 1},
            json={"payload": "QUJD"}, headers=bearer(old_token),
        )  # fmt: skip
        assert post.json() == {"status": "updated"}
        socket = await subscribe(server.ws_url, old_token)
        assert await next_frame(socket) == "1"

        new_tc = await linux.remove_member(
            device, linux_tc, linux_creds, TrustchainMember(mac_creds.pubkey, "Mac")
        )
        assert new_tc.application_path != mac_tc.application_path
        problems = []

        def refused(name: str, response: httpx2.Response) -> None:
            if response.status_code != 401 or response_problem(response):
                problems.append(f"{name}: {response.status_code} {response.text[:120]}")

        session = Session(client, old_token)
        refused("tree", await asyncio.to_thread(session.tree, mac_tc.root_id))
        refused("refresh", await asyncio.to_thread(session.refresh))
        new = {"id": new_tc.root_id, "path": new_tc.application_path}

        def cloud(method: str, params: dict[str, Any]) -> httpx2.Response:
            return client.request(
                method, "/atomic/v1/live", params={**params, "version": "2"},
                json={"payload": "QUJD"} if method == "POST" else None, headers=bearer(old_token),
            )  # fmt: skip

        # the old path (closed): nothing to read (401, or "no-data" as a rotation leaves it),
        # nothing written, no 5xx
        read = await asyncio.to_thread(cloud, "GET", old)
        if read.status_code != 401:
            assert read.json() == {"status": "no-data"}, read.text
        write = await asyncio.to_thread(cloud, "POST", old)
        refused("Cloud Sync POST on the old path", write)
        delete = await asyncio.to_thread(cloud, "DELETE", old)
        assert delete.status_code in (204, 401) and response_problem(delete) is None
        # the new path: not in its token, whatever it tries
        for method in ("GET", "POST", "DELETE"):
            refused(
                f"Cloud Sync {method} on the new path", await asyncio.to_thread(cloud, method, new)
            )
        assert not problems, "\n".join(problems)
        new_token = (await linux.get_jwt(new_tc, linux_creds)).access_token
        current = await asyncio.to_thread(
            client.post, "/atomic/v1/live", params={**new, "version": 1},
            json={"payload": "QUJD"}, headers=bearer(new_token),
        )  # fmt: skip
        assert current.json() == {"status": "updated"}
        refused(
            "Cloud Sync DELETE of the current document",
            await asyncio.to_thread(cloud, "DELETE", new),
        )
        kept = await asyncio.to_thread(
            client.get, "/atomic/v1/live", params=new, headers=bearer(new_token)
        )
        assert kept.json()["status"] == "out-of-sync"  # still there
        # a new notifications socket with the old token is refused
        fresh = await subscribe(server.ws_url, old_token)
        try:
            assert (await closed(fresh))[0] == 1008
        finally:
            await fresh.close()
        await socket.close()
        with pytest.raises(TrustchainEjected):
            await mac.restore_trustchain(mac_tc, mac_creds)
    finally:
        for sdk in sdks:
            await sdk.aclose()


def test_a_removed_member_cannot_append(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    client = server.client()
    world = populate(server)
    kept = KeyPair.generate()
    block = world.trustchain.add_member(world.path, world.trustchain.device, kept)
    assert world.device.put_blocks(world.trustchain_id, world.path, [block]).status_code == 204
    rotate(world.device, world.trustchain, 1, keep=kept)
    # the removed member builds a block on the new stream with its old token
    intruder = world.trustchain.add_member(app_path(1), world.member_key, KeyPair.generate())
    response = world.member.put_blocks(world.trustchain_id, app_path(1), [intruder])
    assert response.status_code == 401 and response_problem(response) is None
    again = member_login_response(world, world.member_key, world.trustchain_id)
    assert again.status_code == 401 and "Not a member" in again.json()["message"]
    assert login_member(client, kept, world.trustchain_id).token


# --- the QR relay --------------------------------------------------------------------------------


async def test_a_third_qr_peer_is_refused(world: World) -> None:
    host = KeyPair.generate().public_key.hex()
    url = f"{world.server.ws_url}/v1/qr?host={host}"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        for candidate in (url, url.replace(host, host.upper())):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(candidate, open_timeout=10)
            assert refused.value.response.status_code == 403
        await first.send("still private")
        assert await asyncio.wait_for(second.recv(), 10) == "still private"


# --- rate limits ---------------------------------------------------------------------------------


def test_rate_limits_hold_and_cannot_be_spoofed(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(rate_limit_per_minute=1, rate_limit_burst=2)
    client = server.client()
    assert [client.get("/v1/challenge").status_code for _ in range(2)] == [200, 200]
    spoofed = [
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Real-IP": "203.0.113.8"},
        {"Forwarded": "for=203.0.113.9"},
        {},
    ]
    for headers in spoofed:
        response = client.get("/v1/challenge", headers=headers)
        assert response.status_code == 429, headers
        assert response_problem(response) is None
        assert int(response.headers["retry-after"]) >= 1
    # the same database and key file: its challenge is valid here
    answer = device_answer(get_challenge(make_server().client()), KeyPair.generate())
    statuses = [client.post("/v1/authenticate", json=answer).status_code for _ in range(3)]
    assert statuses == [200, 401, 429]
