"""Challenges, /v1/authenticate, tokens and /v1/refresh over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx2
import pytest

from ledgersync.protocol import KeyPair, crypto
from ledgersync.protocol.challenge import Challenge

from ..support.keyring import (
    PROD_ATTESTATION_KEY,
    TEST_ATTESTATION_KEY,
    app_path,
    bearer,
    created_trustchain,
    device_answer,
    device_login,
    error_message,
    get_challenge,
    login_device,
    login_member,
    member_answer,
    member_login,
    rotate,
    token_of,
)
from ..support.servers import ManualClock, RunningServer


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def header_of(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


# --- GET /v1/challenge --------------------------------------------------------------------------


def test_challenge_is_a_device_ready_tlv_signed_by_the_server(
    server: RunningServer, client: httpx2.Client
) -> None:
    body = client.get("/v1/challenge").json()
    tlv = bytes.fromhex(body["tlv"])
    decoded = Challenge.decode(tlv)  # the device's strict parser: exact order and lengths
    assert decoded.encode() == tlv
    assert [tlv[0], tlv[3], tlv[6]] == [0x01, 0x02, 0x12]  # payload type, version, data first
    assert tlv[2] == 0x07 and len(decoded.data) == 16
    assert decoded.host == "ledgersync.test"
    assert decoded.expiry == int(server.clock()) + 1800
    decoded.verify_rp_signature(allow_high_s=False)
    assert Challenge.from_json(body["json"]) == decoded
    assert body["json"]["rp"][0]["credential"]["publicKey"] == decoded.rp_public_key.hex()
    assert body["json"]["challenge"]["expiry"].endswith("Z")


def test_challenges_are_random_and_signed_by_one_persistent_key(
    make_server: Callable[..., RunningServer],
) -> None:
    first = make_server()
    key = get_challenge(first.client()).rp_public_key
    challenges = [get_challenge(first.client()) for _ in range(3)]
    assert len({challenge.data for challenge in challenges}) == 3
    assert {challenge.rp_public_key for challenge in challenges} == {key}
    first.stop()
    # A restart on the same key file signs with the same key; the file is private.
    second = make_server()
    assert get_challenge(second.client()).rp_public_key == key
    assert second.config.key_file.stat().st_mode & 0o777 == 0o600


# --- device logins -------------------------------------------------------------------------------


def test_device_login_returns_an_es256_token_with_observed_claims(
    server: RunningServer, client: httpx2.Client
) -> None:
    device = KeyPair.generate()
    response = device_login(client, device)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "permissions"}
    assert body["permissions"] == {}
    token = body["access_token"]
    assert header_of(token) == {"typ": "JWT", "alg": "ES256"}
    claims = claims_of(token)
    now = int(server.clock())
    assert claims["iss"] == "ledgersync.test"
    assert claims["sub"] == device.public_key.hex()
    assert claims["aud"] == ["CloudSync", "trustchain"]
    assert claims["iat"] == now and claims["exp"] == now + 300
    assert claims["device"] is True
    assert claims["permissions"] == {}
    refresh_expiration = datetime.fromisoformat(claims["refreshExpiration"]).timestamp()
    assert refresh_expiration == now + 3600
    assert len(claims["jti"]) == 36


def test_device_login_with_an_untrusted_attestation_key_is_refused(
    client: httpx2.Client,
) -> None:
    rogue = KeyPair.generate()
    response = device_login(client, KeyPair.generate(), attestation_secret=rogue.private_key)
    assert response.status_code == 401
    assert "not trusted" in error_message(response)
    assert rogue.public_key.hex() in error_message(response)


def test_prod_only_refuses_the_test_attestation_key(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(prod_attestation_only=True)
    response = device_login(server.client(), KeyPair.generate())
    assert response.status_code == 401
    assert TEST_ATTESTATION_KEY.hex() in error_message(response)


def test_a_configured_attestation_key_is_trusted(make_server: Callable[..., RunningServer]) -> None:
    own = KeyPair.generate()
    server = make_server(attestation_keys=(own.public_key,))
    client = server.client()
    assert device_login(client, KeyPair.generate(), own.private_key).status_code == 200
    assert device_login(client, KeyPair.generate()).status_code == 401  # TEST no longer listed


def test_default_trust_list_is_ledgers_prod_and_test_keys(server: RunningServer) -> None:
    assert set(server.config.trusted_attestation_keys) == {
        PROD_ATTESTATION_KEY,
        TEST_ATTESTATION_KEY,
    }


def test_a_bad_attestation_signature_is_refused(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    answer = device_answer(challenge, KeyPair.generate())
    attestation = bytearray.fromhex(answer["signature"]["attestation"])
    attestation[-3] ^= 0x01  # inside the attestation's DER signature
    answer["signature"]["attestation"] = attestation.hex()
    response = client.post("/v1/authenticate", json=answer)
    assert response.status_code in (400, 401)
    assert response.json()["status"] == response.status_code


def test_an_attestation_over_another_signature_is_refused(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    device = KeyPair.generate()
    answer = device_answer(challenge, device)
    other = device_answer(get_challenge(client), device)  # valid, but for another challenge
    answer["signature"]["attestation"] = other["signature"]["attestation"]
    response = client.post("/v1/authenticate", json=answer)
    assert response.status_code == 401
    assert "attestation does not verify" in error_message(response)


def test_a_signature_by_another_key_is_refused(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    answer = device_answer(challenge, KeyPair.generate())
    answer["signature"]["credential"]["publicKey"] = KeyPair.generate().public_key.hex()
    response = client.post("/v1/authenticate", json=answer)
    assert response.status_code == 401
    assert "signature does not verify" in error_message(response)


# --- challenge lifecycle -------------------------------------------------------------------------


def test_a_challenge_can_be_used_once(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    device = KeyPair.generate()
    assert client.post("/v1/authenticate", json=device_answer(challenge, device)).status_code == 200
    again = client.post("/v1/authenticate", json=device_answer(challenge, device))
    assert again.status_code == 401
    assert "already used" in error_message(again)


def test_a_failed_answer_still_uses_the_challenge(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    rogue = KeyPair.generate()
    refused = client.post(
        "/v1/authenticate", json=device_answer(challenge, KeyPair.generate(), rogue.private_key)
    )
    assert refused.status_code == 401
    retry = client.post("/v1/authenticate", json=device_answer(challenge, KeyPair.generate()))
    assert retry.status_code == 401 and "already used" in error_message(retry)


def test_an_expired_challenge_is_refused(server: RunningServer, client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    server.clock.advance(1800)
    response = client.post("/v1/authenticate", json=device_answer(challenge, KeyPair.generate()))
    assert response.status_code == 401
    assert "expired" in error_message(response)


def test_a_challenge_answered_just_in_time_is_accepted(
    server: RunningServer, client: httpx2.Client
) -> None:
    challenge = get_challenge(client)
    server.clock.advance(1799)
    response = client.post("/v1/authenticate", json=device_answer(challenge, KeyPair.generate()))
    assert response.status_code == 200


def test_a_challenge_is_vouched_for_by_the_servers_signature_not_stored(
    make_server: Callable[..., RunningServer], tmp_path: Any
) -> None:
    first = make_server()
    challenge = get_challenge(first.client())
    # Same keys and host, another database (never told of the challenge): its signature and
    # expiry are what count, and its single use is recorded where it is answered.
    other = make_server(database=f"sqlite:///{tmp_path / 'other.sqlite'}")
    answer = device_answer(challenge, KeyPair.generate())
    assert other.client().post("/v1/authenticate", json=answer).status_code == 200
    again = other.client().post("/v1/authenticate", json=answer)
    assert again.status_code == 401
    assert "already used" in error_message(again)


def test_an_altered_challenge_is_refused(client: httpx2.Client) -> None:
    challenge = get_challenge(client)
    answer = device_answer(challenge, KeyPair.generate())
    answer["challenge"]["challenge"]["expiry"] = "2099-01-01T00:00:00Z"
    response = client.post("/v1/authenticate", json=answer)
    assert response.status_code == 401
    assert "altered" in error_message(response)


def test_a_challenge_from_another_relying_party_is_refused(client: httpx2.Client) -> None:
    from ledgersync.protocol.challenge import build_challenge

    foreign = build_challenge(KeyPair.generate(), "ledgersync.test", 2**31)
    response = client.post("/v1/authenticate", json=device_answer(foreign, KeyPair.generate()))
    assert response.status_code == 401
    assert "not issued by this server" in error_message(response)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {},
        {"challenge": {"version": 0}},
        {"challenge": None, "signature": None},
    ],
)
def test_malformed_authenticate_bodies_are_400(client: httpx2.Client, body: Any) -> None:
    response = client.post("/v1/authenticate", json=body)
    assert response.status_code == 400
    assert response.json()["type"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        {"credential": {}, "signature": "00", "attestation": "00"},
        {
            "credential": {"version": 0, "curveId": 33, "signAlgorithm": 1, "publicKey": "zz"},
            "signature": "00",
            "attestation": "00",
        },
        {"attestation": "ff"},
    ],
)
def test_malformed_answers_are_400(client: httpx2.Client, signature: Any) -> None:
    challenge = get_challenge(client)
    response = client.post(
        "/v1/authenticate", json={"challenge": challenge.to_json(), "signature": signature}
    )
    assert response.status_code == 400


# --- member logins ------------------------------------------------------------------------------


def test_member_login_gets_its_application_stream(client: httpx2.Client) -> None:
    trustchain, _, (member,) = created_trustchain(client)
    response = member_login(client, member, trustchain.id)
    assert response.status_code == 200, response.text
    permissions = {trustchain.id: {app_path(0): ["owner"]}}
    assert response.json()["permissions"] == permissions
    claims = claims_of(response.json()["access_token"])
    assert claims["device"] is False
    assert claims["permissions"] == permissions
    assert claims["sub"] == member.public_key.hex()


def test_a_stranger_is_not_a_member(client: httpx2.Client) -> None:
    trustchain, _, _ = created_trustchain(client)
    response = member_login(client, KeyPair.generate(), trustchain.id)
    assert response.status_code == 401
    assert error_message(response) == f"Unauthorized: Not a member of trustchain {trustchain.id}"


def test_member_login_to_an_unknown_trustchain(client: httpx2.Client) -> None:
    unknown = "00" + "ab" * 32
    response = member_login(client, KeyPair.generate(), unknown)
    assert response.status_code == 401
    assert f"Not a member of trustchain {unknown}" in error_message(response)


def test_member_of_a_closed_stream_only_is_not_a_member(client: httpx2.Client) -> None:
    trustchain, device, (member,) = created_trustchain(client)
    close = trustchain.close(app_path(0), trustchain.device)
    assert device.put_blocks(trustchain.id, app_path(0), [close]).status_code == 204
    response = member_login(client, member, trustchain.id)
    assert response.status_code == 401
    assert "Not a member of trustchain" in error_message(response)


def test_member_software_signature_vector_verifies() -> None:
    # The recorded member signature from Ledger's staging traffic is what the server checks.
    from ..support.vectors import vector

    recorded = vector("e2e_member_software_auth")
    challenge = Challenge.decode(bytes.fromhex(recorded["challenge_tlv"]))
    assert challenge.hash().hex() == recorded["derived"]["challenge_hash"]
    crypto.verify_signature(
        bytes.fromhex(recorded["member_public_key"]),
        challenge.hash(),
        bytes.fromhex(recorded["signature"]),
    )


# --- tokens and refresh ---------------------------------------------------------------------------


def test_an_expired_token_asks_for_refresh_then_for_a_new_login(
    server: RunningServer, client: httpx2.Client
) -> None:
    session = login_device(client, KeyPair.generate())
    assert session.get("/v1/trustchains").status_code == 200
    server.clock.advance(300)
    expired = session.get("/v1/trustchains")
    assert expired.status_code == 401
    assert "JWT is expired" in error_message(expired) and "/refresh" in error_message(expired)
    server.clock.advance(3300)
    too_late = session.get("/v1/trustchains")
    assert too_late.status_code == 401
    assert "JWT is expired" in error_message(too_late)
    assert "/refresh" not in error_message(too_late)


def test_refresh_keeps_the_refresh_window_and_recomputes_permissions(
    server: RunningServer, client: httpx2.Client
) -> None:
    trustchain, session, _ = created_trustchain(client)  # refreshed after the seed
    first = claims_of(session.token)
    assert first["permissions"] == {trustchain.id: {"m/": ["owner"]}}
    server.clock.advance(400)  # access token expired, refresh window open
    response = session.refresh()
    assert response.status_code == 200
    assert response.json()["permissions"] == {trustchain.id: {"m/": ["owner"]}}
    second = claims_of(session.token)
    assert second["refreshExpiration"] == first["refreshExpiration"]
    assert second["iat"] == first["iat"] + 400
    assert second["jti"] != first["jti"]
    server.clock.advance(3600)
    late = session.refresh()
    assert late.status_code == 401
    assert "JWT is expired" in error_message(late) and "/refresh" not in error_message(late)


def test_refresh_of_a_removed_member_asks_for_a_new_login(client: httpx2.Client) -> None:
    trustchain, device, (member, other) = created_trustchain(client, members=2)
    session = login_member(client, member, trustchain.id)
    rotate(device, trustchain, 1, keep=other)
    response = session.refresh()
    assert response.status_code == 401
    assert "JWT is expired" in error_message(response)
    assert "/refresh" not in error_message(response)
    again = member_login(client, member, trustchain.id)
    assert again.status_code == 401 and "Not a member of trustchain" in error_message(again)
    kept = login_member(client, other, trustchain.id)
    assert claims_of(kept.token)["permissions"] == {trustchain.id: {app_path(1): ["owner"]}}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        lambda token: "not-a-jwt",
        lambda token: token.split(".")[0] + ".e30." + token.split(".")[2],
    ],
)
def test_invalid_tokens_are_401(client: httpx2.Client, mangle: Callable[[str], str]) -> None:
    token = token_of(device_login(client, KeyPair.generate()))
    response = client.get("/v1/trustchains", headers=bearer(mangle(token)))
    assert response.status_code == 401
    assert "Invalid JWT" in error_message(response)
    assert client.get("/v1/refresh", headers=bearer(mangle(token))).status_code == 401


def test_a_token_of_another_server_is_invalid(
    make_server: Callable[..., RunningServer], tmp_path: Any
) -> None:
    first = make_server()
    token = token_of(device_login(first.client(), KeyPair.generate()))
    other = make_server(key_file=tmp_path / "other-key.json")
    response = other.client().get("/v1/trustchains", headers=bearer(token))
    assert response.status_code == 401 and "Invalid JWT" in error_message(response)


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Token abc.def.ghi"])
def test_missing_bearer_is_401(client: httpx2.Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/v1/trustchains", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "UNAUTHORIZED" and body["message"].startswith("Unauthorized: ")


def test_token_lifetimes_are_configurable(make_server: Callable[..., RunningServer]) -> None:
    clock = ManualClock()
    server = make_server(clock=clock, access_token_ttl=60, refresh_window=120)
    session = login_device(server.client(), KeyPair.generate())
    claims = claims_of(session.token)
    assert claims["exp"] - claims["iat"] == 60
    clock.advance(60)
    assert "/refresh" in error_message(session.get("/v1/trustchains"))
    assert session.refresh().status_code == 200
    clock.advance(60)
    assert session.refresh().status_code == 401


def test_member_answer_helper_matches_recorded_attestation() -> None:
    from ..support.vectors import vector

    recorded = vector("e2e_member_software_auth")
    challenge = Challenge.decode(bytes.fromhex(recorded["challenge_tlv"]))
    member = KeyPair.from_private_key(bytes.fromhex(recorded["member_private_key"]))
    trustchain_id = bytes.fromhex(recorded["attestation"])[2:].decode("ascii")
    answer = member_answer(challenge, member, trustchain_id)["signature"]
    assert answer["attestation"] == recorded["attestation"]
    assert answer["signature"] == recorded["signature"]
