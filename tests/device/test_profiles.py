"""Software device profiles on disk."""

import json
import stat

import pytest

from ledgersync.device import (
    DeviceIdentity,
    InvalidMnemonicError,
    ProfileError,
    ProfileStore,
    approve_all,
    default_home,
    open_device,
)
from ledgersync.device.profiles import ProfileExistsError, ProfileNotFoundError
from ledgersync.device.spec import SoftwareSpec

from ..support.devices import OTHER_PHRASE

KEY = "attestation_private_key"


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_profile_is_private(tmp_path):
    store = ProfileStore(tmp_path)
    profile = store.create("alice")
    path = store.path_for("alice")
    assert mode(path) == 0o600
    assert mode(store.directory) == 0o700
    assert len(profile.mnemonic.split()) == 24
    assert profile.mnemonic in path.read_text()
    assert profile.mnemonic not in repr(profile)
    assert [p.name for p in tmp_path.joinpath("devices").iterdir()] == ["alice.json"]


def test_profiles_round_trip(tmp_path, speculos_phrase):
    store = ProfileStore(tmp_path)
    created = store.create("bob", mnemonic=speculos_phrase.upper(), passphrase="extra")
    loaded = store.load("bob")
    assert loaded == created
    assert loaded.mnemonic == speculos_phrase
    assert loaded.identity() == DeviceIdentity.from_mnemonic(speculos_phrase, "extra")
    assert store.names() == ["bob"]


def test_a_custom_attestation_key_is_kept(tmp_path):
    store = ProfileStore(tmp_path)
    key = bytes(31) + b"\x09"
    store.create("carol", mnemonic=OTHER_PHRASE, attestation_key=key)
    profile = store.load("carol")
    assert profile.attestation_key == key and not profile.uses_test_attestation
    assert json.loads(store.path_for("carol").read_text())["attestation_private_key"] == key.hex()


def test_store_errors(tmp_path):
    store = ProfileStore(tmp_path)
    assert store.names() == []
    store.create("dave")
    with pytest.raises(ProfileExistsError):
        store.create("dave")
    with pytest.raises(ProfileNotFoundError, match="device new"):
        store.load("erin")
    for name in ("", "../x", ".hidden", "a/b", "x" * 65):
        with pytest.raises(ProfileError, match="invalid device name"):
            store.path_for(name)
    with pytest.raises(InvalidMnemonicError):
        store.create("frank", mnemonic="not a phrase")
    assert store.names() == ["dave"]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"format": 2}',
        '{"format": 1, "name": "gina", "mnemonic": "abandon"}',
        '{"format": 1, "name": "gina", "mnemonic": 12}',
        json.dumps({"format": 1, "name": "other", "mnemonic": OTHER_PHRASE}),
        json.dumps({"format": 1, "name": "gina", "mnemonic": OTHER_PHRASE, **{KEY: "zz"}}),
        json.dumps({"format": 1, "name": "gina", "mnemonic": OTHER_PHRASE, **{KEY: "00"}}),
    ],
)
def test_a_damaged_profile_is_reported(tmp_path, content):
    store = ProfileStore(tmp_path)
    store.directory.mkdir(parents=True)
    store.path_for("gina").write_text(content)
    with pytest.raises(ProfileError, match="gina"):
        store.load("gina")


def test_home_comes_from_the_environment(tmp_path):
    assert default_home({"LEDGERSYNC_HOME": str(tmp_path)}) == tmp_path
    assert default_home({}).parts[-2:] == (".config", "ledgersync")


async def test_a_profile_opens_as_a_software_device(tmp_path, vectors, speculos_phrase):
    ProfileStore(tmp_path).create("spec", mnemonic=speculos_phrase)
    device = await open_device(SoftwareSpec("spec"), home=tmp_path, approver=approve_all)
    expected = vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
    assert (await device.seed_id_public_key()).hex() == expected
    with pytest.raises(ProfileNotFoundError):
        await open_device(SoftwareSpec("nobody"), home=tmp_path, approver=approve_all)


def test_delete_removes_the_profile_for_good(tmp_path):
    store = ProfileStore(tmp_path)
    store.create("alice")
    store.create("bob")
    store.delete("alice")
    assert store.names() == ["bob"]
    assert sorted(p.name for p in store.directory.iterdir()) == ["bob.json"]
    with pytest.raises(ProfileNotFoundError, match="no device named 'alice'"):
        store.load("alice")
    with pytest.raises(ProfileNotFoundError, match="no device named 'alice'"):
        store.delete("alice")
    with pytest.raises(ProfileError, match="invalid device name"):
        store.delete("../bob")
    assert store.names() == ["bob"]


def test_rename_keeps_everything_but_the_name(tmp_path, speculos_phrase):
    store = ProfileStore(tmp_path)
    key = bytes(31) + b"\x05"
    before = store.create(
        "alice", mnemonic=speculos_phrase, passphrase="extra", attestation_key=key
    )
    after = store.rename("alice", "bob")
    assert after == store.load("bob")
    assert after.name == "bob"
    assert (after.mnemonic, after.passphrase, after.attestation_key, after.created) == (
        before.mnemonic,
        before.passphrase,
        before.attestation_key,
        before.created,
    )
    assert after.identity() == before.identity()
    assert mode(store.path_for("bob")) == 0o600
    assert mode(store.directory) == 0o700
    assert store.names() == ["bob"]
    assert sorted(p.name for p in store.directory.iterdir()) == ["bob.json"]
    with pytest.raises(ProfileNotFoundError):
        store.load("alice")


def test_rename_refuses_what_it_cannot_do(tmp_path):
    store = ProfileStore(tmp_path)
    alice = store.create("alice")
    bob = store.create("bob")
    with pytest.raises(ProfileExistsError, match="a device named 'bob' already exists"):
        store.rename("alice", "bob")
    with pytest.raises(ProfileExistsError, match="a device named 'alice' already exists"):
        store.rename("alice", "alice")
    with pytest.raises(ProfileNotFoundError, match="no device named 'carol'"):
        store.rename("carol", "dave")
    with pytest.raises(ProfileError, match="invalid device name"):
        store.rename("alice", "../x")
    assert store.load("alice") == alice and store.load("bob") == bob
    assert sorted(p.name for p in store.directory.iterdir()) == ["alice.json", "bob.json"]


def test_a_failed_rename_leaves_the_old_profile(tmp_path, monkeypatch):
    store = ProfileStore(tmp_path)
    alice = store.create("alice")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ledgersync.device.privatefiles.os.fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        store.rename("alice", "bob")
    monkeypatch.undo()
    assert store.load("alice") == alice
    assert sorted(p.name for p in store.directory.iterdir()) == ["alice.json"]


def test_profiles_are_created_where_hard_links_are_missing(tmp_path, monkeypatch):
    """Some network and FUSE file systems refuse hard links: a check and a rename then."""

    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("ledgersync.device.privatefiles.os.link", refused)
    store = ProfileStore(tmp_path)
    store.create("alice")
    renamed = store.rename("alice", "bob")
    assert store.load("bob") == renamed and mode(store.path_for("bob")) == 0o600
    store.create("carol")
    with pytest.raises(ProfileExistsError):
        store.rename("bob", "carol")
    assert sorted(p.name for p in store.directory.iterdir()) == ["bob.json", "carol.json"]
