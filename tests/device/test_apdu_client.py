"""The APDU client: the recorded transcripts, status words, and parity with the software device."""

import pytest

from ledgersync.device import (
    ApduDevice,
    ApduError,
    AppNotOpenError,
    ApprovalKind,
    DeviceIdentity,
    DeviceLockedError,
    DeviceResponseError,
    Emulator,
    InProcessTransport,
    StreamClosedError,
    Transport,
    UserRefusedError,
    WrongSeedError,
)
from ledgersync.device.requests import AddMemberRequest, CloseRequest, DeriveRequest, SeedRequest
from ledgersync.protocol import builders, crypto
from ledgersync.protocol.apdu import CommandApdu, Ins
from ledgersync.protocol.challenge import Challenge
from ledgersync.protocol.crypto import KeyPair
from ledgersync.protocol.paths import application_path
from ledgersync.protocol.tree import read_key, resolve_tree

from ..support.chains import Chain
from ..support.devices import Approvals, KeyStream, Scripted, software_device_from

h = bytes.fromhex
APP = application_path(16, 0)
OK = h("9000")


class Transcript(Transport):
    """Plays the device's side of a recording: each APDU must be the recorded one."""

    def __init__(self, exchanges):
        self.exchanges = list(exchanges)

    async def exchange(self, apdu):
        expected, response = self.exchanges.pop(0)
        assert apdu.hex() == expected.hex()
        return response


class Recorder(Transport):
    """Passes APDUs through to an emulator and keeps them."""

    def __init__(self, emulator, tamper=None):
        self.emulator = emulator
        self.sent = []
        self.tamper = tamper

    async def exchange(self, apdu):
        self.sent.append(CommandApdu.decode(apdu))
        response = self.emulator.exchange(apdu)
        return self.tamper(apdu, response) if self.tamper else response


class Canned(Transport):
    """Answers every APDU with the same bytes (a locked device, the dashboard, …)."""

    def __init__(self, response):
        self.response = response

    async def exchange(self, apdu):
        return self.response


def seed_transcript(recorded):
    return [
        (h(recorded["init_apdu"]), OK),
        (h(recorded["sign_header_apdu"]), h(recorded["sign_header_response"]) + OK),
        (h(recorded["sign_seed_apdu"]), h(recorded["sign_seed_response"]) + OK),
        (h(recorded["finalize_apdu"]), h(recorded["finalize_response"]) + OK),
    ]


def derive_transcript(recorded):
    steps = [(h(recorded["init_apdu"]), OK)]
    parses = zip(recorded["parse_apdus"], recorded["parse_responses"], strict=True)
    steps += [(h(apdu), h(response)) for apdu, response in parses]
    for step in ("sign_header", "sign_derive", "sign_add_member", "sign_publish_key", "finalize"):
        steps.append((h(recorded[f"{step}_apdu"]), h(recorded[f"{step}_response"]) + OK))
    return steps


async def test_the_recorded_seed_session_rebuilds_the_recorded_block(vectors):
    recorded = vectors["e2e_apdu_sign_seed_block"]
    parent = CommandApdu.decode(h(recorded["sign_header_apdu"])).data[5:37]
    transport = Transcript(seed_transcript(recorded))
    # Randomness: the Seed block's parent first, then the client session key.
    device = ApduDevice(
        transport, random=Scripted(parent, h(recorded["client_session_private_key"]))
    )
    block = await device.sign_block(SeedRequest(), None)
    assert block.encode().hex() == recorded["derived"]["resulting_block"]
    assert transport.exchanges == []
    root = vectors["e2e_ledger_live_success_session"]["root_stream"]["hex"]
    assert block.encode().hex() == root
    assert await device.seed_id_public_key() == block.issuer  # learnt from the signature


async def test_the_recorded_derive_session_rebuilds_the_recorded_block(vectors):
    recorded = vectors["e2e_apdu_sign_derive_block"]
    session = vectors["e2e_ledger_live_success_session"]
    tree = resolve_tree([h(session["root_stream"]["hex"])])
    transport = Transcript(derive_transcript(recorded))
    device = ApduDevice(transport, random=Scripted(h(recorded["client_session_private_key"])))
    member = h(session["software_members"]["Member 1"]["public_key"])
    block = await device.sign_block(DeriveRequest(APP, member, "Member 1"), tree)
    assert block.encode().hex() == recorded["derived"]["resulting_block"]
    assert transport.exchanges == []
    # It is the first block of the recorded application stream, and Member 1 reads its key.
    assert block.encode().hex() == session["app_stream_index0"]["blocks"][0]["hex"]
    tree = resolve_tree([h(session["root_stream"]["hex"]), block.encode()])
    secret = h(session["software_members"]["Member 1"]["private_key"])
    assert (
        read_key(tree, secret, APP).xpriv.hex()
        == (session["app_stream_index0"]["derived"]["app_xpriv_decrypted_by_member1"])
    )


async def test_the_recorded_login_decodes_and_verifies(vectors):
    recorded = vectors["e2e_get_seed_id"]
    challenge_tlv = h(recorded["challenge_tlv"])
    apdu = h(recorded["apdu_header"]) + challenge_tlv
    prompts = []
    device = ApduDevice(
        Transcript([(apdu, h(recorded["response"]) + OK)]), on_prompt=prompts.append
    )
    response = await device.sign_challenge(Challenge.decode(challenge_tlv))
    derived = recorded["derived"]
    assert response.credential.public_key.hex() == derived["seed_id_public_key"]
    assert response.signature.hex() == derived["seed_id_signature"]
    assert response.attestation.encode().hex() == derived["attestation_result"]
    assert [prompt.kind for prompt in prompts] == [ApprovalKind.LOGIN]
    assert await device.seed_id_public_key() == h(derived["seed_id_public_key"])


async def test_a_login_answer_that_does_not_verify_is_refused(vectors):
    recorded = vectors["e2e_get_seed_id"]
    other = Challenge.decode(h(vectors["challenge_backend_example"]["tlv"]))
    apdu = CommandApdu(Ins.GET_SEED_ID, data=other.encode()).encode()
    device = ApduDevice(Transcript([(apdu, h(recorded["response"]) + OK)]))
    with pytest.raises(DeviceResponseError):
        await device.sign_challenge(other)


@pytest.mark.parametrize("step", ["seed", "derive", "add", "close"])
async def test_the_apdu_path_makes_the_software_devices_blocks_byte_for_byte(speculos_phrase, step):
    """Same phrase and same randomness: the emulator and the software device sign the same
    bytes (the APDU client draws the Seed's parent first, so the app's stream is 32 bytes on)."""
    member = KeyPair.from_private_key(crypto.sha256(b"m1")).public_key
    direct = software_device_from(speculos_phrase, random=KeyStream(b"same"))
    app_random = KeyStream(b"same")
    app_random(32)
    emulator = Emulator(
        DeviceIdentity.from_mnemonic(speculos_phrase), approver=lambda r: True, random=app_random
    )
    apdu = ApduDevice(InProcessTransport(emulator), random=KeyStream(b"same"))
    requests = {
        "seed": SeedRequest(),
        "derive": DeriveRequest(APP, member, "Member 1"),
        "add": AddMemberRequest(APP, KeyPair.generate().public_key, "Member 2"),
        "close": CloseRequest(APP),
    }
    chain = Chain()
    for name, request in requests.items():
        expected = await direct.sign_block(request, chain.tree)
        produced = await apdu.sign_block(request, chain.tree)
        if name == step:
            assert produced.encode() == expected.encode()
            return
        chain.add(() if name == "seed" else APP, expected)


async def test_set_trusted_member_is_sent_for_a_foreign_issuer(speculos_phrase):
    identity = DeviceIdentity.from_mnemonic(speculos_phrase)
    recorder = Recorder(Emulator(identity, approver=lambda r: True))
    device = ApduDevice(recorder)
    m1 = KeyPair.generate()
    chain = Chain().add((), await device.sign_block(SeedRequest(), None))
    chain.add(APP, await device.sign_block(DeriveRequest(APP, m1.public_key, "M1"), chain.tree))
    xpriv = read_key(chain.tree, m1.private_key, APP).xpriv
    for _ in range(2):
        tip = chain.tree.get(APP).last_hash
        chain.add(
            APP, builders.add_member_block(m1, tip, xpriv, KeyPair.generate().public_key, "x")
        )
    recorder.sent.clear()
    await device.sign_block(AddMemberRequest(APP, KeyPair.generate().public_key, "M4"), chain.tree)
    instructions = [apdu.ins for apdu in recorder.sent]
    # Exactly once: before the second block by M1, when the device trusts M1's last recruit.
    assert instructions.count(Ins.SET_TRUSTED_MEMBER) == 1
    assert instructions[0] == Ins.INIT


async def test_the_user_hears_of_every_approval_on_the_device(speculos_phrase):
    prompts = []
    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=lambda r: True)
    device = ApduDevice(InProcessTransport(emulator), on_prompt=prompts.append)
    chain = Chain().add((), await device.sign_block(SeedRequest(), None))
    chain.add(
        APP,
        await device.sign_block(DeriveRequest(APP, KeyPair.generate().public_key, "A"), chain.tree),
    )
    await device.sign_block(CloseRequest(APP), chain.tree)
    assert [prompt.kind for prompt in prompts] == [
        ApprovalKind.ADD_MEMBER,
        ApprovalKind.CLOSE_STREAM,
    ]


async def test_the_seed_id_key_costs_one_login_approval(speculos_phrase, vectors):
    approvals = Approvals()
    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=approvals)
    device = ApduDevice(InProcessTransport(emulator))
    expected = vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
    assert (await device.seed_id_public_key()).hex() == expected
    assert (await device.seed_id_public_key()).hex() == expected
    assert [request.kind for request in approvals.requests] == [ApprovalKind.LOGIN]


async def test_a_refused_login_for_the_seed_id_key(speculos_phrase):
    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=lambda r: False)
    with pytest.raises(UserRefusedError):
        await ApduDevice(InProcessTransport(emulator)).seed_id_public_key()


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        ("5515", DeviceLockedError, "locked"),
        ("6982", DeviceLockedError, "unlock"),
        ("6e00", AppNotOpenError, "open the Ledger Sync app"),
        ("6e01", AppNotOpenError, "open the Ledger Sync app"),
        ("6d00", AppNotOpenError, "open the Ledger Sync app"),
        ("5123", AppNotOpenError, "open the Ledger Sync app"),
        ("6985", UserRefusedError, "refused"),
        ("b007", WrongSeedError, "wrong seed"),
        ("b00c", StreamClosedError, "closed"),
        ("6a86", ApduError, "0x6A86"),
        ("6f00", ApduError, "0x6F00"),
    ],
)
async def test_status_words_become_our_exceptions(status, error, message):
    device = ApduDevice(Canned(h(status)))
    with pytest.raises(error, match=message) as raised:
        await device.ensure_app()
    assert raised.value.status_word == int(status, 16)


async def test_another_app_is_reported_by_name():
    device = ApduDevice(Canned(b"Bitcoin" + OK))
    with pytest.raises(AppNotOpenError, match=r"'Bitcoin'.*open the Ledger Sync app"):
        await device.ensure_app()


async def test_the_emulator_passes_the_app_check(speculos_phrase):
    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=lambda r: True)
    device = ApduDevice(InProcessTransport(emulator))
    await device.ensure_app()
    assert await device.app_version() == (1, 1, 1)


@pytest.mark.parametrize("response", ["90", "01029000"])
async def test_malformed_device_answers(response):
    device = ApduDevice(Canned(h(response)))
    with pytest.raises(DeviceResponseError):
        await device.app_version()


async def test_tampered_trusted_properties_are_detected(speculos_phrase):
    def flip_last_data_byte(apdu, response):
        if apdu[1] == Ins.SIGN_BLOCK and apdu[2] == 1 and len(response) > 2:
            return response[:-3] + bytes([response[-3] ^ 1]) + response[-2:]
        return response

    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=lambda r: True)
    device = ApduDevice(Recorder(emulator, tamper=flip_last_data_byte))
    # The Seed's last property is its group key (clear): the rebuilt block must not verify.
    with pytest.raises(DeviceResponseError):
        await device.sign_block(SeedRequest(), None)
