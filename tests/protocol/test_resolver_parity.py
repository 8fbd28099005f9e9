"""Parity with the newest resolver and tree rules of Ledger's LKRP library.

Written again from the cases of ledger-live
``libs/hw-ledger-key-ring-protocol/src/__tests__/units/CommandStreamResolver.test.ts``
(@657069aa: forged blocks, signed and chained as an attacker controlling the backend could)
and ``.../units/StreamTree.test.ts`` (@6447898a: application streams and their closure).
Where ledgersync's rule is stricter than Ledger's the test says so (see docs/protocol.md,
"Resolution"): Ledger refuses a later Seed by a non-owner ("not allowed to seed"), ledgersync
refuses a Seed anywhere but first, whoever issues it (rule ``first-command``).
"""

from __future__ import annotations

import os

import pytest

from ledgersync.protocol import (
    OWNER,
    AddMember,
    Block,
    CloseStream,
    KeyPair,
    application_path,
    builders,
    encode_stream,
    permissions,
    read_key,
    resolve_stream,
    resolve_tree,
)
from ledgersync.protocol.commands import Command, Derive, PublishKey, Seed
from ledgersync.protocol.errors import ResolutionError
from ledgersync.protocol.tree import StreamTree

LEDGER_SYNC, RING = 16, 17
#: A member that is not an owner (Ledger's tests use ``Permissions.MEMBER``).
MEMBER = permissions.KEY_READER | permissions.ADD_MEMBER


def forged(issuer: KeyPair, parent: Block, *commands: Command) -> Block:
    return builders.signed_block(issuer, parent.hash(), tuple(commands))


def forged_derive(path_app: int = LEDGER_SYNC) -> Derive:
    return Derive(
        path=application_path(path_app, 0),
        group_key=KeyPair.generate().public_key,
        initialization_vector=os.urandom(16),
        encrypted_xpriv=os.urandom(64),
        ephemeral_public_key=KeyPair.generate().public_key,
    )


def forged_seed() -> Seed:
    return Seed(
        topic=None,
        protocol_version=0,
        group_key=KeyPair.generate().public_key,
        initialization_vector=os.urandom(16),
        encrypted_xpriv=os.urandom(64),
        ephemeral_public_key=KeyPair.generate().public_key,
    )


def refused(blocks: list[Block], rule: str, **kwargs: object) -> ResolutionError:
    with pytest.raises(ResolutionError) as caught:
        resolve_stream(encode_stream(blocks), **kwargs)  # type: ignore[arg-type]
    assert caught.value.rule == rule, caught.value
    return caught.value


class Tree:
    """A root by ``owner`` and streams shared as ``StreamTree.share`` does."""

    def __init__(self) -> None:
        self.owner = KeyPair.generate()
        self.seed, self.root_xpriv = builders.seed_block(self.owner)
        self.streams: dict[tuple[int, int], list[Block]] = {}
        self.xprivs: dict[tuple[int, int], bytes] = {}

    def share(
        self, app: int, member: KeyPair, name: str, perms: int = OWNER, *, by: KeyPair | None = None
    ) -> None:
        """Derive the current stream of ``app`` with ``member`` in it, or add ``member``."""
        index = max((i for a, i in self.streams if a == app), default=0)
        key = (app, index)
        if key in self.streams and self.resolved(app, index).closed:
            key = (app, index + 1)
        if key not in self.streams:
            block, xpriv = builders.derive_block(
                self.owner,
                self.root_xpriv,
                application_path(*key),
                self.seed.hash(),
                (member.public_key, name),
                perms,
            )
            self.streams[key], self.xprivs[key] = [block], xpriv
            return
        blocks = self.streams[key]
        blocks.append(
            builders.add_member_block(
                by or self.owner,
                blocks[-1].hash(),
                self.xprivs[key],
                member.public_key,
                name,
                perms,
            )
        )

    def close(self, app: int, index: int, by: KeyPair) -> None:
        blocks = self.streams[(app, index)]
        blocks.append(builders.close_stream_block(by, blocks[-1].hash()))

    def resolved(self, app: int, index: int = 0):  # type: ignore[no-untyped-def]
        return resolve_stream(
            encode_stream(self.streams[(app, index)]), first_parent=self.seed.hash()
        )

    def tree(self) -> StreamTree:
        return resolve_tree(
            [encode_stream([self.seed])] + [encode_stream(b) for b in self.streams.values()]
        )


# --- CommandStreamResolver: membership gate ("not part of the group") ----------------------


def test_a_block_by_a_non_member_is_refused() -> None:
    tree, attacker = Tree(), KeyPair.generate()
    assert len(attacker.public_key) == len(tree.owner.public_key)  # same length, not a member
    refused([tree.seed, forged(attacker, tree.seed, CloseStream())], "member")


def test_a_non_member_cannot_take_ownership_through_a_derive() -> None:
    tree, attacker = Tree(), KeyPair.generate()
    block = forged(
        attacker, tree.seed, forged_derive(), AddMember("Attacker", attacker.public_key, OWNER)
    )
    refused([tree.seed, block], "member")


def test_a_non_member_cannot_re_seed() -> None:
    tree, attacker = Tree(), KeyPair.generate()
    refused([tree.seed, forged(attacker, tree.seed, forged_seed())], "member")


def test_a_non_member_cannot_publish_the_key_to_itself() -> None:
    tree, attacker = Tree(), KeyPair.generate()
    publish = PublishKey(
        initialization_vector=os.urandom(16),
        encrypted_xpriv=os.urandom(64),
        recipient=attacker.public_key,
        ephemeral_public_key=KeyPair.generate().public_key,
    )
    refused([tree.seed, forged(attacker, tree.seed, publish)], "member")


def test_a_non_member_is_refused_on_an_application_stream() -> None:
    tree, bob, attacker = Tree(), KeyPair.generate(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    blocks = tree.streams[(LEDGER_SYNC, 0)]
    block = forged(attacker, blocks[-1], AddMember("Attacker", attacker.public_key, OWNER))
    refused([*blocks, block], "member", first_parent=tree.seed.hash())


# --- CommandStreamResolver: stream creation gate --------------------------------------------


def test_a_member_that_is_not_owner_cannot_derive() -> None:
    tree, bob, attacker = Tree(), KeyPair.generate(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob", MEMBER)
    blocks = tree.streams[(LEDGER_SYNC, 0)]
    block = forged(
        bob, blocks[-1], forged_derive(), AddMember("Attacker", attacker.public_key, OWNER)
    )
    refused([*blocks, block], "owner", first_parent=tree.seed.hash())


def test_a_member_that_is_not_owner_cannot_seed() -> None:
    tree, bob = Tree(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob", MEMBER)
    blocks = tree.streams[(LEDGER_SYNC, 0)]
    refused(
        [*blocks, forged(bob, blocks[-1], forged_seed())],
        "first-command",
        first_parent=tree.seed.hash(),
    )


def test_stricter_than_ledger_even_an_owner_cannot_seed_again() -> None:
    """Ledger's rule names non-owners only; a later Seed is refused whoever signs it here."""
    tree = Tree()
    refused([tree.seed, forged(tree.owner, tree.seed, forged_seed())], "first-command")


def test_an_owner_may_still_derive() -> None:
    tree = Tree()
    resolved = resolve_stream(
        encode_stream([tree.seed, forged(tree.owner, tree.seed, forged_derive())])
    )
    assert resolved.height == 2


# --- CommandStreamResolver: legitimate flows -------------------------------------------------


def test_a_tree_shared_with_two_members() -> None:
    tree, bob, carol = Tree(), KeyPair.generate(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    tree.share(LEDGER_SYNC, carol, "Carol", by=bob)
    resolved = tree.resolved(LEDGER_SYNC)
    assert [m.name for m in resolved.added_members] == ["Bob", "Carol"]
    assert [m.public_key for m in resolved.members] == [
        tree.owner.public_key,
        bob.public_key,
        carol.public_key,
    ]
    carol_member = resolved.member(carol.public_key)
    assert carol_member is not None and carol_member.permissions == OWNER


def test_a_member_may_close_the_stream_it_belongs_to() -> None:
    tree, bob = Tree(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    tree.close(LEDGER_SYNC, 0, by=bob)
    assert tree.resolved(LEDGER_SYNC).closed


def test_rotation_to_the_next_index() -> None:
    tree, bob = Tree(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    tree.close(LEDGER_SYNC, 0, by=tree.owner)
    tree.share(LEDGER_SYNC, bob, "Bob")
    resolved = tree.resolved(LEDGER_SYNC, 1)
    assert [m.name for m in resolved.added_members] == ["Bob"]
    whole = tree.tree()
    assert whole.current_application_path(LEDGER_SYNC) == application_path(LEDGER_SYNC, 1)
    assert (
        read_key(whole, bob.private_key, application_path(LEDGER_SYNC, 1)).xpriv
        == (tree.xprivs[(LEDGER_SYNC, 1)])
    )


# --- StreamTree: application enumeration and closure -----------------------------------------


def test_a_fresh_tree_has_no_application() -> None:
    whole = Tree().tree()
    assert whole.applications() == {}
    assert not whole.has_another_open_application(LEDGER_SYNC)


def test_applications_and_other_open_ones() -> None:
    tree, bob = Tree(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    tree.share(RING, bob, "Bob")
    whole = tree.tree()
    assert sorted(whole.applications()) == [LEDGER_SYNC, RING]
    assert not whole.applications()[LEDGER_SYNC].closed
    assert whole.has_another_open_application(LEDGER_SYNC)  # the ring is open
    assert whole.has_another_open_application(999)  # both are "other" and open

    tree.close(RING, 0, by=tree.owner)
    whole = tree.tree()
    assert whole.applications()[RING].closed  # a closed stream stays visible
    assert not whole.applications()[LEDGER_SYNC].closed
    assert not whole.has_another_open_application(LEDGER_SYNC)
    assert whole.has_another_open_application(RING)


def test_only_the_newest_stream_of_an_application_counts() -> None:
    """An older stream left open (a rotation abandoned halfway, then the new one closed)
    does not keep its application "open"; the server lists the newest stream only."""
    tree, bob = Tree(), KeyPair.generate()
    tree.share(LEDGER_SYNC, bob, "Bob")
    tree.share(RING, bob, "Bob")
    ring_1, _ = builders.derive_block(
        tree.owner,
        tree.root_xpriv,
        application_path(RING, 1),
        tree.seed.hash(),
        (bob.public_key, "Bob"),
    )
    tree.streams[(RING, 1)] = [ring_1]
    tree.close(RING, 1, by=bob)
    whole = tree.tree()
    assert not whole.get(application_path(RING, 0)).closed  # type: ignore[union-attr]
    assert whole.applications()[RING].path == application_path(RING, 1)
    assert not whole.has_another_open_application(LEDGER_SYNC)
