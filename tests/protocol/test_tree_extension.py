"""Extending a resolved tree resolves only the new blocks, yet gives resolve_tree's results and
errors."""

import pytest

from ledgersync.protocol import (
    KeyPair,
    ResolutionError,
    StreamTree,
    application_path,
    builders,
    encode_stream,
    resolve_tree,
)
from ledgersync.protocol.block import Block

APP = application_path(16, 0)
NEXT_APP = application_path(16, 1)


class Tree:
    """A root stream and one application stream of two members, built in software."""

    def __init__(self) -> None:
        self.device, self.alice, self.bob = (
            KeyPair.generate(),
            KeyPair.generate(),
            KeyPair.generate(),
        )
        self.seed, self.root_xpriv = builders.seed_block(self.device)
        derive, self.app_xpriv = builders.derive_block(
            self.device, self.root_xpriv, APP, self.seed.hash(), (self.alice.public_key, "alice")
        )
        self.app = [derive]
        self.tree = resolve_tree([self.seed.encode(), derive.encode()])

    def add_member(self, issuer: KeyPair, parent: bytes, name: str) -> Block:
        return builders.add_member_block(
            issuer, parent, self.app_xpriv, KeyPair.generate().public_key, name
        )

    def resolved_whole(self, *app_blocks: Block) -> StreamTree:
        return resolve_tree([self.seed.encode(), encode_stream([*self.app, *app_blocks])])


def encoded(*blocks: Block) -> bytes:
    return encode_stream(blocks)


def test_appending_to_a_stream_equals_resolving_it_whole() -> None:
    tree = Tree()
    first = builders.add_member_block(
        tree.alice, tree.app[0].hash(), tree.app_xpriv, tree.bob.public_key, "bob"
    )
    second = tree.add_member(tree.bob, first.hash(), "carol")
    extended = tree.tree.extended(APP, encoded(first)).extended(APP, encoded(second))
    assert extended == tree.resolved_whole(first, second)
    assert [m.name for m in extended.derived[APP].members] == [None, "alice", "bob", "carol"]


def test_a_new_derived_stream_equals_resolving_the_tree_whole() -> None:
    tree = Tree()
    close = builders.close_stream_block(tree.alice, tree.app[0].hash())
    derive, _ = builders.derive_block(
        tree.device, tree.root_xpriv, NEXT_APP, tree.seed.hash(), (tree.alice.public_key, "alice")
    )
    extended = tree.tree.extended(APP, encoded(close)).extended(NEXT_APP, encoded(derive))
    whole = resolve_tree([tree.seed.encode(), encoded(*tree.app, close), derive.encode()])
    assert extended == whole
    assert extended.current_application_path(16) == NEXT_APP


def test_the_first_broken_rule_is_the_one_resolve_tree_reports() -> None:
    tree = Tree()
    stranger = KeyPair.generate()
    good = tree.add_member(tree.alice, tree.app[0].hash(), "bob")
    bad = tree.add_member(stranger, good.hash(), "intruder")
    with pytest.raises(ResolutionError) as whole:
        tree.resolved_whole(good, bad)
    with pytest.raises(ResolutionError) as incremental:
        tree.tree.extended(APP, encoded(good, bad))
    assert (
        (incremental.value.rule, incremental.value.height, incremental.value.path)
        == (
            whole.value.rule,
            whole.value.height,
            whole.value.path,
        )
        == ("member", 2, "m/0'/16'/0'")
    )


def test_a_block_that_does_not_follow_the_tip_is_refused() -> None:
    tree = Tree()
    detached = tree.add_member(tree.alice, tree.seed.hash(), "bob")
    with pytest.raises(ResolutionError) as info:
        tree.tree.extended(APP, encoded(detached))
    assert (info.value.rule, info.value.height) == ("parent", 1)


def test_a_derived_stream_not_issued_by_a_root_owner_is_refused() -> None:
    tree = Tree()
    derive, _ = builders.derive_block(
        tree.alice, tree.root_xpriv, NEXT_APP, tree.seed.hash(), (tree.bob.public_key, "bob")
    )
    with pytest.raises(ResolutionError) as info:
        tree.tree.extended(NEXT_APP, encoded(derive))
    assert (info.value.rule, info.value.path) == ("derive-issuer", "m/0'/16'/1'")


def test_appending_to_the_root_keeps_the_derived_streams() -> None:
    tree = Tree()
    member = builders.add_member_block(
        tree.device, tree.seed.hash(), tree.root_xpriv, tree.bob.public_key, "bob"
    )
    extended = tree.tree.extended((), encoded(member))
    assert extended == resolve_tree([encoded(tree.seed, member), encoded(*tree.app)])
    assert extended.derived == tree.tree.derived
