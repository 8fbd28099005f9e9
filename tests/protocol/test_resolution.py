"""Streams built in software resolve, and each resolution rule has a test that breaks it."""

from dataclasses import replace

import pytest

from ledgersync.protocol import (
    OWNER,
    AddMember,
    Block,
    CloseStream,
    KeyPair,
    PermissionRules,
    application_path,
    builders,
    decode_stream,
    encode_stream,
    permissions,
    read_key,
    resolve_stream,
    resolve_tree,
)
from ledgersync.protocol.commands import EditMember, UnknownCommand
from ledgersync.protocol.errors import DecodeError, ResolutionError

APP = application_path(16, 0)


class Chain:
    """A small trustchain: a device (root key), its root stream and one application stream."""

    def __init__(self) -> None:
        self.device = KeyPair.generate()
        self.alice = KeyPair.generate()
        self.seed, self.root_xpriv = builders.seed_block(self.device)
        self.derive, self.app_xpriv = builders.derive_block(
            self.device, self.root_xpriv, APP, self.seed.hash(), (self.alice.public_key, "alice")
        )
        self.blocks = [self.derive]

    @property
    def tip(self) -> bytes:
        return self.blocks[-1].hash()

    def add(self, block: Block) -> Block:
        self.blocks.append(block)
        return block

    def stream(self) -> bytes:
        return encode_stream(self.blocks)

    def signed(self, issuer: KeyPair, *commands) -> Block:
        return builders.signed_block(issuer, self.tip, tuple(commands))


def broken(stream: bytes, rule: str, height: int, **kwargs) -> ResolutionError:
    with pytest.raises(ResolutionError) as caught:
        resolve_stream(stream, **kwargs)
    assert caught.value.rule == rule, caught.value
    assert caught.value.height == height
    assert f"block {height}" in str(caught.value)
    return caught.value


def test_software_trustchain_resolves_and_keys_are_readable():
    chain = Chain()
    bob = KeyPair.generate()
    chain.add(
        builders.add_member_block(chain.alice, chain.tip, chain.app_xpriv, bob.public_key, "bob")
    )
    tree = resolve_tree([chain.seed.encode(), chain.stream()])
    app = tree.get(APP)
    assert app is not None
    assert [m.name for m in app.added_members] == ["alice", "bob"]
    assert set(app.key_holders) == {chain.device.public_key, chain.alice.public_key, bob.public_key}
    assert read_key(tree, bob.private_key, APP).xpriv == chain.app_xpriv
    assert read_key(tree, chain.device.private_key, ()).xpriv == chain.root_xpriv
    # The device holds the root key, so it reads the app key by derivation from the root.
    assert (
        read_key(tree, chain.device.private_key, application_path(16, 5)).private_key
        == (builders.crypto.derive_path(chain.root_xpriv, application_path(16, 5))[:32])
    )
    chain.add(builders.close_stream_block(chain.device, chain.tip))
    tree = resolve_tree([chain.seed.encode(), chain.stream()])
    assert tree.get(APP).closed
    assert tree.current_application_stream(16) is None
    assert tree.application_index(16) == 1


def test_tampered_parent():
    chain = Chain()
    block = chain.signed(chain.alice, CloseStream())
    chain.add(replace(block, parent=bytes(32)).signed_with(chain.alice.private_key))
    broken(chain.stream(), "parent", 1)


def test_derived_stream_must_link_to_the_seed_block():
    chain = Chain()
    other_seed, _ = builders.seed_block(chain.device)
    with pytest.raises(ResolutionError) as caught:
        resolve_tree([other_seed.encode(), chain.stream()])
    assert caught.value.rule == "parent" and caught.value.path == "m/0'/16'/0'"


def test_bad_signature():
    chain = Chain()
    block = chain.signed(chain.alice, CloseStream())
    chain.add(replace(block, signature=chain.alice.sign(bytes(32))))
    broken(chain.stream(), "signature", 1)


def test_unsigned_block():
    chain = Chain()
    chain.add(replace(chain.signed(chain.alice, CloseStream()), signature=b""))
    broken(chain.stream(), "signature", 1)


def test_non_member_issuer():
    chain = Chain()
    mallory = KeyPair.generate()
    chain.add(
        builders.add_member_block(mallory, chain.tip, chain.app_xpriv, mallory.public_key, "m")
    )
    broken(chain.stream(), "member", 1)


def test_add_member_without_permission():
    chain = Chain()
    reader = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.device,
            *builders.member_commands(
                chain.app_xpriv, reader.public_key, "reader", permissions.KEY_READER
            ),
        )
    )
    chain.add(
        builders.add_member_block(
            reader, chain.tip, chain.app_xpriv, KeyPair.generate().public_key, "x"
        )
    )
    error = broken(chain.stream(), "permission", 2)
    assert "ADD_MEMBER" in str(error)


def test_publish_key_without_the_key():
    chain = Chain()
    adder = KeyPair.generate()
    newcomer = KeyPair.generate()
    chain.add(
        chain.signed(chain.device, AddMember("adder", adder.public_key, permissions.ADD_MEMBER))
    )
    chain.add(
        builders.add_member_block(adder, chain.tip, chain.app_xpriv, newcomer.public_key, "n")
    )
    broken(chain.stream(), "publish-key", 2)


def test_publish_key_to_a_non_member():
    chain = Chain()
    stranger = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.alice, builders.publish_key_command(chain.app_xpriv, stranger.public_key)
        )
    )
    broken(chain.stream(), "publish-key", 1)


def test_block_after_close_stream():
    chain = Chain()
    chain.add(builders.close_stream_block(chain.alice, chain.tip))
    chain.add(
        builders.add_member_block(
            chain.alice, chain.tip, chain.app_xpriv, KeyPair.generate().public_key, "late"
        )
    )
    broken(chain.stream(), "closed", 2)


def test_command_after_close_stream_in_the_same_block():
    chain = Chain()
    late = KeyPair.generate()
    chain.add(chain.signed(chain.alice, CloseStream(), AddMember("late", late.public_key, OWNER)))
    broken(chain.stream(), "closed", 1)


def test_seed_not_first():
    chain = Chain()
    seed_command = chain.seed.commands[0]
    chain.add(chain.signed(chain.device, seed_command))
    broken(chain.stream(), "first-command", 1)
    starts_with_add = builders.signed_block(
        chain.device, bytes(32), (AddMember("a", chain.alice.public_key, OWNER),)
    )
    broken(starts_with_add.encode(), "first-command", 0)


def test_non_hardened_derive():
    device = KeyPair.generate()
    seed, root = builders.seed_block(device)
    derive, _ = builders.derive_command(device.public_key, root, (0x80000000, 16, 0x80000000))
    block = builders.signed_block(device, seed.hash(), (derive,))
    broken(block.encode(), "derive-path", 0)


def test_derive_after_height_zero_needs_an_owner():
    chain = Chain()
    restricted = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.device,
            *builders.member_commands(chain.app_xpriv, restricted.public_key, "r", 0xFFFFFFFB),
        )
    )
    derive, _ = builders.derive_command(
        restricted.public_key, chain.root_xpriv, application_path(16, 1)
    )
    chain.add(chain.signed(restricted, derive))
    broken(chain.stream(), "owner", 2)


def test_v2_rules_forbid_blocks_from_restricted_members():
    chain = Chain()
    restricted = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.device,
            *builders.member_commands(
                chain.app_xpriv, restricted.public_key, "dapp", OWNER & ~permissions.CAN_ADD_BLOCK
            ),
        )
    )
    chain.add(builders.close_stream_block(restricted, chain.tip))
    resolve_stream(chain.stream(), rules=PermissionRules.V1)  # v1 reads 0xfffffffb as allowed
    broken(chain.stream(), "permission", 2, rules=PermissionRules.V2)


def test_v2_rules_forbid_keys_to_members_without_can_encrypt():
    chain = Chain()
    blind = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.device,
            *builders.member_commands(
                chain.app_xpriv, blind.public_key, "blind", permissions.CAN_ADD_BLOCK
            ),
        )
    )
    broken(chain.stream(), "permission", 1, rules=PermissionRules.V2)


def test_unsupported_commands():
    chain = Chain()
    chain.add(chain.signed(chain.alice, EditMember(chain.alice.public_key, None, "renamed")))
    broken(chain.stream(), "unsupported-command", 1)
    chain.blocks.pop()
    chain.add(chain.signed(chain.alice, UnknownCommand(0x30, b"\x05\x00")))
    broken(chain.stream(), "unsupported-command", 1)


def test_unknown_permission_bits_are_not_rejected():
    chain = Chain()
    odd = KeyPair.generate()
    chain.add(
        chain.signed(
            chain.device,
            *builders.member_commands(chain.app_xpriv, odd.public_key, "odd", 0x0F0F0F0F),
        )
    )
    stream = resolve_stream(chain.stream())
    assert stream.member(odd.public_key).permissions == 0x0F0F0F0F


def test_truncated_and_trailing_bytes():
    stream = Chain().stream()
    for cut in (1, 2, 10, len(stream) - 1):
        with pytest.raises(DecodeError):
            resolve_stream(stream[:cut])
    with pytest.raises(DecodeError):
        resolve_stream(stream + b"\x01")
    with pytest.raises(DecodeError):
        resolve_stream(b"")


def test_tree_rules():
    chain = Chain()
    with pytest.raises(ResolutionError) as caught:
        resolve_tree([chain.stream()])
    assert caught.value.rule == "missing-root"
    with pytest.raises(ResolutionError) as caught:
        resolve_tree([chain.seed.encode(), chain.stream(), chain.stream()])
    assert caught.value.rule == "duplicate-stream"
    intruder = KeyPair.generate()
    derive, _ = builders.derive_block(
        intruder, chain.root_xpriv, application_path(16, 1), chain.seed.hash()
    )
    with pytest.raises(ResolutionError) as caught:
        resolve_tree([chain.seed.encode(), derive.encode()])
    assert caught.value.rule == "derive-issuer"


def test_re_adding_a_member_keeps_one_entry():
    chain = Chain()
    chain.add(
        builders.add_member_block(
            chain.device, chain.tip, chain.app_xpriv, chain.alice.public_key, "alice 2"
        )
    )
    stream = resolve_stream(chain.stream())
    assert [m.name for m in stream.added_members] == ["alice 2"]
    assert len(decode_stream(chain.stream())) == 2
