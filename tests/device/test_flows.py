"""Create / derive / add / close, logins, refusals and wrong seeds, through every device kind.

Each test runs twice (``make_device``): on the software device and on the APDU client
driving the emulator, so both must behave the same.
"""

import pytest

from ledgersync.device import (
    AddMemberRequest,
    ApprovalKind,
    ChallengeRejectedError,
    CloseRequest,
    DeriveRequest,
    RequestError,
    SeedRequest,
    UnsupportedOperationError,
    UserRefusedError,
    WrongSeedError,
)
from ledgersync.protocol import builders, crypto, permissions
from ledgersync.protocol.challenge import Challenge
from ledgersync.protocol.crypto import KeyPair
from ledgersync.protocol.paths import application_path, parse_path
from ledgersync.protocol.tree import read_key, resolve_tree

from ..support.chains import Chain
from ..support.devices import DEVICE_KINDS, OTHER_PHRASE, Approvals, software_device_from

h = bytes.fromhex
APP = application_path(16, 0)
NEXT = application_path(16, 1)
ROOT = ()


def member(index):
    return KeyPair.from_private_key(crypto.sha256(b"member" + bytes([index])))


async def create_with_member(device, first_member):
    """[Seed] then [Derive, AddMember, PublishKey] for ``first_member`` at m/0'/16'/0'."""
    chain = Chain()
    chain.add(ROOT, await device.sign_block(SeedRequest(), None))
    chain.add(
        APP,
        await device.sign_block(
            DeriveRequest(APP, first_member.public_key, "Member 1"), chain.tree
        ),
    )
    return chain


async def test_create_derive_add_close_and_rotate(make_device, speculos_phrase):
    device = make_device(speculos_phrase)
    device_key = await device.seed_id_public_key()
    m1, m2 = member(1), member(2)

    seed = await device.sign_block(SeedRequest(), None)
    chain = Chain().add(ROOT, seed)
    root = chain.tree.root
    assert root.creator == device_key == seed.issuer
    assert chain.tree.trustchain_id == "00" + seed.hash().hex()

    chain.add(
        APP, await device.sign_block(DeriveRequest(APP, m1.public_key, "Member 1"), chain.tree)
    )
    stream = chain.tree.get(APP)
    assert stream.blocks[0].block.parent == seed.hash()
    assert [(m.public_key, m.name) for m in stream.members] == [
        (device_key, None),
        (m1.public_key, "Member 1"),
    ]
    key = read_key(chain.tree, m1.private_key, APP)
    assert key.public_key == stream.group_key

    chain.add(
        APP, await device.sign_block(AddMemberRequest(APP, m2.public_key, "Member 2"), chain.tree)
    )
    assert read_key(chain.tree, m2.private_key, APP).xpriv == key.xpriv
    assert chain.tree.get(APP).member(m2.public_key).permissions == permissions.OWNER

    chain.add(APP, await device.sign_block(CloseRequest(APP), chain.tree))
    assert chain.tree.get(APP).closed
    assert chain.tree.application_index(16) == 1

    chain.add(
        NEXT, await device.sign_block(DeriveRequest(NEXT, m1.public_key, "Member 1"), chain.tree)
    )
    rotated = read_key(chain.tree, m1.private_key, NEXT)
    assert rotated.xpriv != key.xpriv
    assert chain.tree.current_application_stream(16).path == NEXT
    await device.close()


async def test_the_device_reads_its_own_keys(speculos_phrase):
    device = software_device_from(speculos_phrase)
    chain = await create_with_member(device, member(1))
    for path in (ROOT, APP, parse_path("m/0'/17'/0'")):
        # The device holds the root key: every stream key below it is readable.
        assert (await device.read_key(chain.tree, path)).xpriv == crypto.derive_path(
            (await device.read_key(chain.tree, ROOT)).xpriv, path
        )
    assert (await device.read_key(chain.tree, APP)).xpriv == read_key(
        chain.tree, member(1).private_key, APP
    ).xpriv


async def test_a_hardware_device_never_exports_keys(speculos_phrase):
    device = DEVICE_KINDS["apdu"](speculos_phrase)
    chain = await create_with_member(device, member(1))
    with pytest.raises(UnsupportedOperationError):
        await device.read_key(chain.tree, APP)


@pytest.mark.parametrize("creator_kind", sorted(DEVICE_KINDS))
async def test_the_same_phrase_operates_the_same_trustchain(
    make_device, creator_kind, speculos_phrase
):
    creator = DEVICE_KINDS[creator_kind](speculos_phrase)
    chain = await create_with_member(creator, member(1))
    # Another instance restored from the phrase: it reads the root key back from the Seed.
    twin = make_device(speculos_phrase)
    chain.add(
        APP, await twin.sign_block(AddMemberRequest(APP, member(2).public_key, "M2"), chain.tree)
    )
    chain.add(APP, await twin.sign_block(CloseRequest(APP), chain.tree))
    chain.add(
        NEXT, await twin.sign_block(DeriveRequest(NEXT, member(2).public_key, "M2"), chain.tree)
    )
    assert (
        read_key(chain.tree, member(2).private_key, NEXT).public_key
        == chain.tree.get(NEXT).group_key
    )


@pytest.mark.parametrize(
    ("phrase", "passphrase"), [(OTHER_PHRASE, ""), (None, "another passphrase")]
)
async def test_another_seed_gets_wrong_seed(make_device, speculos_phrase, phrase, passphrase):
    chain = await create_with_member(software_device_from(speculos_phrase), member(1))
    stranger = make_device(phrase or speculos_phrase, passphrase=passphrase)
    requests = [
        DeriveRequest(NEXT, member(2).public_key, "M2"),
        AddMemberRequest(APP, member(2).public_key, "M2"),
        CloseRequest(APP),
    ]
    for request in requests:
        with pytest.raises(WrongSeedError):
            await stranger.sign_block(request, chain.tree)


async def test_a_device_that_knows_its_key_refuses_before_asking(make_device, speculos_phrase):
    chain = await create_with_member(software_device_from(speculos_phrase), member(1))
    approvals = Approvals()
    stranger = make_device(OTHER_PHRASE, approver=approvals)
    await stranger.seed_id_public_key()  # a hardware device learns it with a login
    asked = len(approvals.requests)
    for request in (CloseRequest(APP), AddMemberRequest(APP, member(2).public_key, "M2")):
        with pytest.raises(WrongSeedError, match="another seed"):
            await stranger.sign_block(request, chain.tree)
    assert len(approvals.requests) == asked  # no removal or sync screen for nothing


async def test_another_seed_cannot_read_keys(speculos_phrase):
    chain = await create_with_member(software_device_from(speculos_phrase), member(1))
    with pytest.raises(WrongSeedError):
        await software_device_from(OTHER_PHRASE).read_key(chain.tree, APP)


async def test_the_recorded_ledger_live_trustchain_is_another_seed(
    make_device, vectors, speculos_phrase
):
    # Its index-0 stream holds a block issued by a software member: replaying it needs the
    # trusted-member slot, and then the device still holds none of the keys.
    session = vectors["e2e_ledger_live_success_session"]
    tree = resolve_tree([h(session["root_stream"]["hex"]), h(session["app_stream_index0"]["hex"])])
    device = make_device(speculos_phrase)
    with pytest.raises(WrongSeedError):
        await device.sign_block(AddMemberRequest(APP, member(3).public_key, "M3"), tree)


async def test_blocks_issued_by_software_members_are_replayed(make_device, speculos_phrase):
    device = make_device(speculos_phrase)
    m1, m2, m3, m4 = (member(index) for index in range(1, 5))
    chain = await create_with_member(device, m1)
    # Member 1 adds members 2 and 3 itself (QR pairing): the device did not sign these.
    for new in (m2, m3):
        stream = chain.tree.get(APP)
        xpriv = read_key(chain.tree, m1.private_key, APP).xpriv
        chain.add(APP, builders.add_member_block(m1, stream.last_hash, xpriv, new.public_key, "sw"))
    chain.add(APP, await device.sign_block(AddMemberRequest(APP, m4.public_key, "M4"), chain.tree))
    assert (
        read_key(chain.tree, m4.private_key, APP).xpriv
        == read_key(chain.tree, m1.private_key, APP).xpriv
    )


async def test_refusals_raise_and_leave_the_device_usable(make_device, speculos_phrase):
    approvals = Approvals(lambda request: request.kind is not ApprovalKind.ADD_MEMBER)
    device = make_device(speculos_phrase, approver=approvals)
    chain = Chain().add(ROOT, await device.sign_block(SeedRequest(), None))
    # Derive is silent until its AddMember: the user refuses turning sync on.
    with pytest.raises(UserRefusedError):
        await device.sign_block(DeriveRequest(APP, member(1).public_key, "Phone"), chain.tree)
    request = approvals.requests[-1]
    assert (request.kind, request.detail, request.member) == (
        ApprovalKind.ADD_MEMBER,
        "Phone",
        member(1).public_key,
    )
    assert request.prompt == "Turn on sync for this phone or computer?"

    approvals.answer = True
    chain.add(
        APP, await device.sign_block(DeriveRequest(APP, member(1).public_key, "Phone"), chain.tree)
    )
    approvals.answer = False
    with pytest.raises(UserRefusedError):
        await device.sign_block(CloseRequest(APP), chain.tree)
    assert approvals.requests[-1].kind is ApprovalKind.CLOSE_STREAM
    assert not chain.tree.get(APP).closed


async def test_only_add_member_close_and_login_ask_the_user(make_device, speculos_phrase, vectors):
    approvals = Approvals()
    device = make_device(speculos_phrase, approver=approvals)
    chain = Chain().add(ROOT, await device.sign_block(SeedRequest(), None))
    assert approvals.requests == []
    chain.add(
        APP, await device.sign_block(DeriveRequest(APP, member(1).public_key, "A"), chain.tree)
    )
    chain.add(APP, await device.sign_block(CloseRequest(APP), chain.tree))
    await device.sign_challenge(Challenge.decode(h(vectors["challenge_backend_example"]["tlv"])))
    assert [request.kind for request in approvals.requests] == [
        ApprovalKind.ADD_MEMBER,
        ApprovalKind.CLOSE_STREAM,
        ApprovalKind.LOGIN,
    ]
    assert approvals.requests[-1].detail == "localhost"


@pytest.mark.parametrize(
    "vector", ["e2e_get_seed_id", "challenge_backend_example", "challenge_device_app_default"]
)
async def test_login_signs_the_challenge_with_attestation(
    make_device, speculos_phrase, vectors, vector
):
    tlv = vectors[vector].get("challenge_tlv") or vectors[vector]["tlv"]
    challenge = Challenge.decode(h(tlv))
    device = make_device(speculos_phrase)
    response = await device.sign_challenge(challenge)
    response.verify(challenge)
    assert (
        response.credential.public_key.hex()
        == vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
    )
    assert (
        response.attestation.credential.public_key.hex()
        == vectors["device_attestation_keys"]["test_public_key_compressed"]
    )


async def test_login_refused_or_badly_signed(make_device, speculos_phrase, vectors):
    device = make_device(speculos_phrase, approver=Approvals(False))
    with pytest.raises(UserRefusedError):
        await device.sign_challenge(
            Challenge.decode(h(vectors["e2e_get_seed_id"]["challenge_tlv"]))
        )
    # Serialisation-only vector: its rp signature does not verify with its rp key.
    forged = Challenge.decode(h(vectors["challenge_tlv_serialization"]["tlv"]))
    with pytest.raises(ChallengeRejectedError):
        await make_device(speculos_phrase).sign_challenge(forged)


async def test_requests_that_do_not_fit_the_tree(make_device, speculos_phrase):
    device = make_device(speculos_phrase)
    chain = await create_with_member(device, member(1))
    key = member(2).public_key
    misfits = [
        (SeedRequest(), chain.tree, "already exists"),
        (DeriveRequest(APP, key, "x"), chain.tree, "already exists at m/0'/16'/0'"),
        (AddMemberRequest(NEXT, key, "x"), chain.tree, "no stream at m/0'/16'/1'"),
        (CloseRequest(NEXT), chain.tree, "no stream"),
        (DeriveRequest(APP, key, "x"), None, "no trustchain yet"),
    ]
    for request, tree, message in misfits:
        with pytest.raises(RequestError, match=message):
            await device.sign_block(request, tree)
    chain.add(APP, await device.sign_block(CloseRequest(APP), chain.tree))
    for request in (CloseRequest(APP), AddMemberRequest(APP, key, "x")):
        with pytest.raises(RequestError, match="is closed"):
            await device.sign_block(request, chain.tree)


@pytest.mark.parametrize(
    "build",
    [
        lambda: DeriveRequest((), member(1).public_key, "root"),
        lambda: DeriveRequest((0, 16), member(1).public_key, "soft"),
        lambda: DeriveRequest(tuple([0x80000000] * 11), member(1).public_key, "deep"),
        lambda: AddMemberRequest(APP, bytes(33), "not a point"),
        lambda: AddMemberRequest(APP, member(1).public_key, ""),
        lambda: AddMemberRequest(APP, member(1).public_key, "x" * 101),
        lambda: AddMemberRequest(APP, member(1).public_key, "nul\x00name"),
        lambda: AddMemberRequest(APP, member(1).public_key, "x", 1 << 32),
        lambda: SeedRequest(bytes(33)),
        lambda: CloseRequest(()),
    ],
)
def test_malformed_requests_are_refused_at_once(build):
    with pytest.raises(RequestError):
        build()
