"""Creating, reading, extending and deleting trustchains over real HTTP."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx2
import pytest

from ledgersync.protocol import KeyPair, application_path, format_path
from ledgersync.protocol.block import Block
from ledgersync.protocol.builders import (
    add_member_block,
    derive_block,
    seed_block,
    signed_block,
)
from ledgersync.protocol.commands import CloseStream
from ledgersync.protocol.paths import HARDENED

from ..support.keyring import (
    Trustchain,
    app_path,
    created_trustchain,
    error_message,
    login_device,
    login_member,
    rotate,
    stream_hex,
)
from ..support.servers import RunningServer


def rule_of(response: httpx2.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "BAD_REQUEST"
    rule: str = body["rule"]
    assert f"({rule})" in body["message"]
    return rule


def tree_of(session: Any, trustchain_id: str) -> dict[str, str]:
    response = session.tree(trustchain_id)
    assert response.status_code == 200, response.text
    tree: dict[str, str] = response.json()
    return tree


# --- POST /v1/seed ----------------------------------------------------------------------------


def test_create_trustchain_flow_as_recorded(client: httpx2.Client) -> None:
    """challenge → authenticate ({}) → trustchains ({}) → seed (204) → refresh (m/ owner)."""
    device = KeyPair.generate()
    session = login_device(client, device)
    assert session.get("/v1/trustchains").json() == {}
    trustchain = Trustchain.new(device)
    response = session.post_seed(trustchain)
    assert response.status_code == 204 and response.content == b""
    refreshed = session.refresh()
    assert refreshed.json()["permissions"] == {trustchain.id: {"m/": ["owner"]}}
    assert session.get("/v1/trustchains").json() == {trustchain.id: {"m/": ["owner"]}}
    assert tree_of(session, trustchain.id) == {"m/": trustchain.root.encode().hex()}


def test_a_device_may_own_several_trustchains(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    first, second = Trustchain.new(device), Trustchain.new(device)
    assert session.post_seed(first).status_code == 204
    assert session.post_seed(second).status_code == 204
    assert session.get("/v1/trustchains").json() == {
        first.id: {"m/": ["owner"]},
        second.id: {"m/": ["owner"]},
    }


def test_the_seed_issuer_must_be_the_logged_in_device(client: httpx2.Client) -> None:
    session = login_device(client, KeyPair.generate())
    response = session.post_seed(Trustchain.new(KeyPair.generate()))
    assert rule_of(response) == "seed-issuer"


def test_a_member_cannot_create_a_trustchain(client: httpx2.Client) -> None:
    trustchain, _, (member,) = created_trustchain(client)
    session = login_member(client, member, trustchain.id)
    response = session.post_seed(Trustchain.new(member))
    assert response.status_code == 401
    assert "JWT contains no permission" in error_message(response)


def test_a_trustchain_cannot_be_created_twice(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)
    assert session.post_seed(trustchain).status_code == 204
    assert rule_of(session.post_seed(trustchain)) == "duplicate-trustchain"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"stream": "00"}, 400),
        (12, 400),
        ("zz", 400),
        ("", 400),
        ("0101", 400),
    ],
)
def test_seed_bodies_that_are_not_streams(client: httpx2.Client, body: Any, status: int) -> None:
    session = login_device(client, KeyPair.generate())
    response = session.post_json("/v1/seed", body)
    assert response.status_code == status
    assert response.json()["status"] == status


def test_a_seed_with_a_bad_signature_is_refused(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    root, _ = seed_block(device)
    forged = dataclasses.replace(root, signature=KeyPair.generate().sign(root.signing_digest()))
    response = session.post_json("/v1/seed", forged.encode().hex())
    assert rule_of(response) == "signature"


def test_a_derived_stream_is_not_a_root(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)
    derived = trustchain.derive(0)
    assert rule_of(session.post_json("/v1/seed", derived.encode().hex())) == "first-command"


def test_a_root_stream_cannot_carry_a_derive(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)
    derive = trustchain.derive(0)
    second = signed_block(device, trustchain.root.hash(), derive.commands)
    body = stream_hex([trustchain.root, second])
    assert rule_of(session.post_json("/v1/seed", body)) == "first-command"


# --- GET /v1/trustchain/{id} --------------------------------------------------------------------


def test_tree_shows_root_and_newest_stream_per_application(client: httpx2.Client) -> None:
    trustchain, device, (member, other) = created_trustchain(client, members=2)
    tree = tree_of(device, trustchain.id)
    assert tree == {
        "m/": stream_hex(trustchain.streams["m/"]),
        "m/16'": stream_hex(trustchain.streams[app_path(0)]),
    }
    # rotation to index 1, and another application (17)
    rotate(device, trustchain, 1, keep=other)
    trustchain.derive(0, member, application=17)
    assert device.post_derivation(trustchain, app_path(0, 17)).status_code == 204
    assert tree_of(device, trustchain.id) == {
        "m/": stream_hex(trustchain.streams["m/"]),
        "m/16'": stream_hex(trustchain.streams[app_path(1)]),
        "m/17'": stream_hex(trustchain.streams[app_path(0, 17)]),
    }
    # a member of app 17 only reads the same tree
    assert tree_of(login_member(client, member, trustchain.id), trustchain.id)["m/16'"] == (
        stream_hex(trustchain.streams[app_path(1)])
    )


def test_another_device_has_no_permission(client: httpx2.Client) -> None:
    trustchain, _, _ = created_trustchain(client)
    stranger = login_device(client, KeyPair.generate())
    for response in (
        stranger.tree(trustchain.id),
        stranger.delete(f"/v1/trustchain/{trustchain.id}"),
        stranger.put_blocks(trustchain.id, app_path(0), [trustchain.streams[app_path(0)][0]]),
        stranger.post_derivation(trustchain, app_path(0)),
    ):
        assert response.status_code == 401
        assert error_message(response) == (
            f"Unauthorized: JWT contains no permission for trustchain {trustchain.id}"
        )


def test_a_member_token_names_its_trustchain_only(client: httpx2.Client) -> None:
    first, _, (member,) = created_trustchain(client)
    second, second_device, _ = created_trustchain(client)
    # the member is added to the second trustchain too, but its token is for the first
    block = second.add_member(app_path(0), second.device, member)
    assert second_device.put_blocks(second.id, app_path(0), [block]).status_code == 204
    session = login_member(client, member, first.id)
    response = session.tree(second.id)
    assert response.status_code == 401
    assert "JWT contains no permission" in error_message(response)


@pytest.mark.parametrize("trustchain_id", ["00" + "cd" * 32, "nothex", "00" + "AB" * 32])
def test_unknown_trustchains_are_404(client: httpx2.Client, trustchain_id: str) -> None:
    session = login_device(client, KeyPair.generate())
    response = session.tree(trustchain_id)
    assert response.status_code == 404
    assert "No such trustchain" in error_message(response)


# --- POST /v1/trustchain/{id}/derivation -------------------------------------------------------


def seeded(client: httpx2.Client) -> tuple[Trustchain, Any]:
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)
    assert session.post_seed(trustchain).status_code == 204
    return trustchain, session


def test_first_derivation_with_a_member_lets_the_member_in(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    member = KeyPair.generate()
    assert member_status(client, member, trustchain.id) == 401
    trustchain.derive(0, member)
    assert session.post_derivation(trustchain, app_path(0)).status_code == 204
    assert member_status(client, member, trustchain.id) == 200


def member_status(client: httpx2.Client, member: KeyPair, trustchain_id: str) -> int:
    from ..support.keyring import member_login

    return member_login(client, member, trustchain_id).status_code


def test_derivation_indexes_follow_each_other(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    trustchain.derive(1)
    assert rule_of(session.post_derivation(trustchain, app_path(1))) == "derive-index"
    trustchain.derive(0)
    assert session.post_derivation(trustchain, app_path(0)).status_code == 204
    assert rule_of(session.post_derivation(trustchain, app_path(0))) == "derive-index"
    trustchain.derive(2)
    assert rule_of(session.post_derivation(trustchain, app_path(2))) == "derive-index"
    # index 1 while 0 is still open: Ledger Live's rotation closes the old stream last
    trustchain.derive(1)
    assert session.post_derivation(trustchain, app_path(1)).status_code == 204
    trustchain.derive(2)
    assert session.post_derivation(trustchain, app_path(2)).status_code == 204


def test_a_derivation_needs_an_application_path(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    for path in ((HARDENED, HARDENED + 16), (HARDENED + 1, HARDENED + 16, HARDENED)):
        block, _ = derive_block(
            trustchain.device, trustchain.root_xpriv, path, trustchain.root.hash()
        )
        body = block.encode().hex()
        response = session.post_json(f"/v1/trustchain/{trustchain.id}/derivation", body)
        assert rule_of(response) == "derive-path"


def test_a_derivation_must_be_issued_by_the_root_issuer(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    intruder = KeyPair.generate()
    block, _ = derive_block(
        intruder, trustchain.root_xpriv, application_path(16, 0), trustchain.root.hash()
    )
    url = f"/v1/trustchain/{trustchain.id}/derivation"
    assert rule_of(session.post_json(url, block.encode().hex())) == "derive-issuer"


def test_a_derivation_must_link_to_the_root_seed_block(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    block, _ = derive_block(
        trustchain.device, trustchain.root_xpriv, application_path(16, 0), bytes(32)
    )
    url = f"/v1/trustchain/{trustchain.id}/derivation"
    assert rule_of(session.post_json(url, block.encode().hex())) == "parent"


def test_a_derivation_starts_with_derive(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    block = add_member_block(
        trustchain.device,
        trustchain.root.hash(),
        trustchain.root_xpriv,
        KeyPair.generate().public_key,
        "x",
    )
    url = f"/v1/trustchain/{trustchain.id}/derivation"
    assert rule_of(session.post_json(url, block.encode().hex())) == "first-command"


def test_a_derived_stream_may_hold_several_blocks(client: httpx2.Client) -> None:
    trustchain, session = seeded(client)
    member, other = KeyPair.generate(), KeyPair.generate()
    trustchain.derive(0, member)
    trustchain.add_member(app_path(0), member, other)
    assert session.post_derivation(trustchain, app_path(0)).status_code == 204
    assert tree_of(session, trustchain.id)["m/16'"] == stream_hex(trustchain.streams[app_path(0)])
    assert member_status(client, other, trustchain.id) == 200


def test_a_member_cannot_derive(client: httpx2.Client) -> None:
    trustchain, _, (member,) = created_trustchain(client)
    session = login_member(client, member, trustchain.id)
    trustchain.derive(1)
    response = session.post_derivation(trustchain, app_path(1))
    assert response.status_code == 401
    assert "JWT contains no permission" in error_message(response)


def test_derivation_of_an_unknown_trustchain(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)  # never posted
    trustchain.derive(0)
    response = session.post_derivation(trustchain, app_path(0))
    assert response.status_code == 404 and "No such trustchain" in error_message(response)


# --- PUT /v1/trustchain/{id}/commands -----------------------------------------------------------


def test_device_and_members_add_members(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    second, third = KeyPair.generate(), KeyPair.generate()
    # the device adds a member (join with the device)
    block = trustchain.add_member(path, trustchain.device, second)
    assert device.put_blocks(trustchain.id, path, [block]).status_code == 204
    # a member adds a member with its own token (QR pairing)
    member = login_member(client, first, trustchain.id)
    block = trustchain.add_member(path, first, third)
    assert member.put_blocks(trustchain.id, path, [block]).status_code == 204
    assert tree_of(member, trustchain.id)["m/16'"] == stream_hex(trustchain.streams[path])
    assert member_status(client, third, trustchain.id) == 200


def test_several_blocks_are_applied_together(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    keys = [KeyPair.generate() for _ in range(3)]
    blocks = [trustchain.add_member(path, first, key) for key in keys]
    assert device.put_blocks(trustchain.id, path, blocks).status_code == 204
    assert tree_of(device, trustchain.id)["m/16'"] == stream_hex(trustchain.streams[path])


def test_one_bad_block_rejects_the_whole_request(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    before = tree_of(device, trustchain.id)
    good = trustchain.add_member(path, first, KeyPair.generate())
    stranger = KeyPair.generate()
    bad = add_member_block(
        stranger, good.hash(), trustchain.xprivs[path], KeyPair.generate().public_key, "x"
    )
    assert rule_of(device.put_blocks(trustchain.id, path, [good, bad])) == "member"
    assert tree_of(device, trustchain.id) == before
    assert device.put_blocks(trustchain.id, path, [good]).status_code == 204


def test_a_stale_parent_is_outdated(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    parent = trustchain.last_hash(path)
    accepted = trustchain.add_member(path, first, KeyPair.generate())
    assert device.put_blocks(trustchain.id, path, [accepted]).status_code == 204
    stale = add_member_block(
        first, parent, trustchain.xprivs[path], KeyPair.generate().public_key, "late"
    )
    response = device.put_blocks(trustchain.id, path, [stale])
    assert rule_of(response) == "outdated"
    assert "path does not match" in error_message(response)


def test_nothing_after_close_stream(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    close = trustchain.close(path, first)  # any member may close (destroyApplication)
    assert device.put_blocks(trustchain.id, path, [close]).status_code == 204
    late = trustchain.add_member(path, trustchain.device, KeyPair.generate())
    assert rule_of(device.put_blocks(trustchain.id, path, [late])) == "closed"


def test_blocks_must_be_signed_by_their_issuer(client: httpx2.Client) -> None:
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    block = trustchain.add_member(path, first, KeyPair.generate())
    forged = dataclasses.replace(block, signature=trustchain.device.sign(block.signing_digest()))
    assert rule_of(device.put_blocks(trustchain.id, path, [forged])) == "signature"


def test_appended_blocks_cannot_reopen_a_stream(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    path = app_path(0)
    derive = trustchain.streams[path][0].commands[0]
    block = signed_block(trustchain.device, trustchain.last_hash(path), (derive,))
    assert rule_of(device.put_blocks(trustchain.id, path, [block])) == "first-command"


def test_a_member_appends_only_to_its_open_stream(client: httpx2.Client) -> None:
    trustchain, device, (member, other) = created_trustchain(client, members=2)
    session = login_member(client, member, trustchain.id)
    trustchain.derive(1, other)  # the member is not in stream 1
    assert device.post_derivation(trustchain, app_path(1)).status_code == 204
    block = trustchain.add_member(app_path(1), other, KeyPair.generate())
    response = session.put_blocks(trustchain.id, app_path(1), [block])
    assert response.status_code == 401
    assert "path does not match" in error_message(response)


def test_the_root_stream_can_be_extended_by_the_device(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    block = signed_block(trustchain.device, trustchain.root.hash(), (CloseStream(),))
    assert device.put_blocks(trustchain.id, "m/", [block]).status_code == 204
    assert tree_of(device, trustchain.id)["m/"] == stream_hex([trustchain.root, block])


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"blocks": ["00"]},
        {"path": 3, "blocks": ["00"]},
        {"path": "m/x", "blocks": ["00"]},
        {"path": "m/0'/16'/0'"},
        {"path": "m/0'/16'/0'", "blocks": []},
        {"path": "m/0'/16'/0'", "blocks": "00"},
        {"path": "m/0'/16'/0'", "blocks": [1]},
        {"path": "m/0'/16'/0'", "blocks": ["zz"]},
        {"path": "m/0'/16'/0'", "blocks": ["0101"]},
    ],
)
def test_malformed_commands_are_400(client: httpx2.Client, body: Any) -> None:
    trustchain, device, _ = created_trustchain(client)
    response = device.put_json(f"/v1/trustchain/{trustchain.id}/commands", body)
    assert response.status_code == 400, response.text


def test_commands_on_a_missing_stream_are_404(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    block = trustchain.add_member(app_path(0), trustchain.device, KeyPair.generate())
    response = device.put_blocks(trustchain.id, app_path(3), [block])
    assert response.status_code == 404


def test_the_path_may_use_h_for_hardened(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    block = trustchain.add_member(app_path(0), trustchain.device, KeyPair.generate())
    response = device.put_blocks(trustchain.id, "m/0h/16h/0h", [block])
    assert response.status_code == 204


# --- rotation (removeMember) and ejection ------------------------------------------------------


def test_rotation_as_ledger_live_does_it(client: httpx2.Client) -> None:
    """sdk.ts removeMember: derive n+1 with self, re-add the others with the software key
    (device JWT), close n last, refresh."""
    trustchain, device, (me, removed, kept) = created_trustchain(client, members=3)
    removed_session = login_member(client, removed, trustchain.id)
    close = Block(
        parent=trustchain.last_hash(app_path(0)),
        issuer=trustchain.device.public_key,
        commands=(CloseStream(),),
    ).signed_with(trustchain.device.private_key)  # signed first, sent last
    trustchain.derive(1, me)
    assert device.post_derivation(trustchain, app_path(1)).status_code == 204
    readd = trustchain.add_member(app_path(1), me, kept)
    assert device.put_blocks(trustchain.id, app_path(1), [readd]).status_code == 204
    assert device.put_blocks(trustchain.id, app_path(0), [close]).status_code == 204
    assert device.refresh().json()["permissions"] == {trustchain.id: {"m/": ["owner"]}}

    for key in (me, kept):
        session = login_member(client, key, trustchain.id)
        assert session.refresh().json()["permissions"] == {trustchain.id: {app_path(1): ["owner"]}}
    # The removed member's unexpired token no longer opens anything: re-login says ejected.
    response = removed_session.tree(trustchain.id)
    assert response.status_code == 401
    assert "JWT is expired" in error_message(response)
    assert "/refresh" not in error_message(response)
    assert member_status(client, removed, trustchain.id) == 401


def test_mid_rotation_both_streams_work(client: httpx2.Client) -> None:
    trustchain, device, (me, other) = created_trustchain(client, members=2)
    trustchain.derive(1, me)
    assert device.post_derivation(trustchain, app_path(1)).status_code == 204
    # `other` is still only in the open stream 0; `me` is newest in 1
    assert login_member(client, other, trustchain.id).refresh().json()["permissions"] == {
        trustchain.id: {app_path(0): ["owner"]}
    }
    assert login_member(client, me, trustchain.id).refresh().json()["permissions"] == {
        trustchain.id: {app_path(1): ["owner"]}
    }


# --- DELETE /v1/trustchain/{id} -----------------------------------------------------------------


def test_delete_by_a_member_removes_everything(client: httpx2.Client) -> None:
    trustchain, device, (member,) = created_trustchain(client)
    session = login_member(client, member, trustchain.id)
    response = session.delete(f"/v1/trustchain/{trustchain.id}")
    assert response.status_code == 204
    for reader in (device, session):
        gone = reader.tree(trustchain.id)
        assert gone.status_code == 404
        assert error_message(gone) == f"Not Found: No such trustchain {trustchain.id}"
    assert device.get("/v1/trustchains").json() == {}
    assert device.refresh().json()["permissions"] == {}
    refused = session.refresh()
    assert refused.status_code == 401 and "JWT is expired" in error_message(refused)
    assert member_status(client, member, trustchain.id) == 401
    # its id cannot come back
    assert rule_of(device.post_seed(trustchain)) == "duplicate-trustchain"
    again = session.delete(f"/v1/trustchain/{trustchain.id}")
    assert again.status_code == 404


def test_delete_by_the_device(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    assert device.delete(f"/v1/trustchain/{trustchain.id}").status_code == 204
    assert device.tree(trustchain.id).status_code == 404


def test_a_removed_member_cannot_delete(client: httpx2.Client) -> None:
    trustchain, device, (member, other) = created_trustchain(client, members=2)
    session = login_member(client, member, trustchain.id)
    rotate(device, trustchain, 1, keep=other)
    assert session.delete(f"/v1/trustchain/{trustchain.id}").status_code == 401
    assert device.tree(trustchain.id).status_code == 200


# --- limits ------------------------------------------------------------------------------------


def test_block_count_limits(make_server: Any) -> None:
    server: RunningServer = make_server(max_blocks_per_request=2, max_stream_blocks=3)
    client = server.client()
    trustchain, device, (first,) = created_trustchain(client)  # stream 0 has 1 block
    path = app_path(0)
    blocks = [trustchain.add_member(path, first, KeyPair.generate()) for _ in range(3)]
    assert rule_of(device.put_blocks(trustchain.id, path, blocks)) == "limit"
    assert device.put_blocks(trustchain.id, path, blocks[:2]).status_code == 204
    assert rule_of(device.put_blocks(trustchain.id, path, blocks[2:])) == "limit"


def test_stream_count_limit(make_server: Any) -> None:
    server: RunningServer = make_server(max_streams_per_trustchain=2)
    client = server.client()
    trustchain, device, _ = created_trustchain(client)  # root + app 16
    trustchain.derive(0, application=17)
    assert rule_of(device.post_derivation(trustchain, app_path(0, 17))) == "limit"


def test_trustchains_per_device_limit(make_server: Any) -> None:
    server: RunningServer = make_server(max_trustchains_per_device=1)
    device = KeyPair.generate()
    session = login_device(server.client(), device)
    assert session.post_seed(Trustchain.new(device)).status_code == 204
    assert rule_of(session.post_seed(Trustchain.new(device))) == "limit"


def test_paths_are_reported_canonically() -> None:
    assert app_path(0) == format_path(application_path(16, 0)) == "m/0'/16'/0'"
