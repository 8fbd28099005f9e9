"""The emulator at the APDU level: status words for every malformed or out-of-order request.

These tests speak raw APDUs, as a buggy or hostile host would; the expected status words
are the app's (``src/sw.h``, docs/protocol.md, "Status words").
"""

import asyncio
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgersync.device import ApduDevice, DeviceIdentity, Emulator, InProcessTransport
from ledgersync.device.approval import approve_all
from ledgersync.device.requests import AddMemberRequest, CloseRequest, DeriveRequest, SeedRequest
from ledgersync.protocol import crypto
from ledgersync.protocol.apdu import (
    ISSUER_PLACEHOLDER,
    BlockHeader,
    CommandApdu,
    Ins,
    SignatureResponse,
    split_response,
)
from ledgersync.protocol.builders import add_member_block
from ledgersync.protocol.commands import CloseStream, EditMember, encode_command
from ledgersync.protocol.crypto import KeyPair
from ledgersync.protocol.paths import application_path
from ledgersync.protocol.templates import (
    DeriveTemplate,
    PublishKeyTemplate,
    SeedTemplate,
    encode_template,
)
from ledgersync.protocol.tlv import encode_signature
from ledgersync.protocol.tree import read_key
from ledgersync.protocol.trusted import TrustedProperties, TrustedProperty

from ..support.chains import Chain
from ..support.devices import OTHER_PHRASE, Approvals, software_device_from

h = bytes.fromhex
APP = application_path(16, 0)
_FUZZ_PHRASE = OTHER_PHRASE
OK, DENY, WRONG_DATA, WRONG_P1P2, WRONG_LENGTH = 0x9000, 0x6985, 0x6A80, 0x6A86, 0x6A87
BAD_STATE, PARSER_STATE, INVALID_STREAM, CLOSED = 0xB007, 0xB009, 0xB00A, 0xB00C


class Host:
    """Raw APDUs to an emulator, with just enough client logic to read its answers."""

    def __init__(self, phrase, approver=approve_all):
        self.emulator = Emulator(DeviceIdentity.from_mnemonic(phrase), approver=approver)
        self.session = KeyPair.from_private_key(crypto.sha256(b"host session"))
        self.tokens = {}

    def raw(self, apdu):
        return split_response(self.emulator.exchange(apdu))

    def send(self, ins, p1=0, p2=0, data=b""):
        return self.raw(CommandApdu(ins, p1, p2, data).encode())

    def sw(self, ins, p1=0, p2=0, data=b""):
        return self.send(ins, p1, p2, data)[1]

    def init(self):
        assert self.sw(Ins.INIT, data=self.session.public_key) == OK

    def parse_block(self, block):
        """Replay one block; returns the status words of its steps and keeps the member
        tokens the device hands out, by member key."""
        header = BlockHeader(block.parent, block.issuer, len(block.commands), block.version)
        words = [self.sw(Ins.PARSE_STREAM, 0, 0, header.encode())]
        for command in block.commands:
            data, status = self.send(Ins.PARSE_STREAM, 1, 1, encode_command(command))
            words.append(status)
            if data:
                owner = getattr(command, "public_key", None) or getattr(command, "recipient", None)
                self.tokens[owner or block.issuer] = data
        words.append(self.sw(Ins.PARSE_STREAM, 2, 0, encode_signature(block.signature)))
        return words

    def sign_header(self, parent, count):
        return self.sw(
            Ins.SIGN_BLOCK, 0, 0, BlockHeader(parent, ISSUER_PLACEHOLDER, count).encode()
        )


@pytest.fixture
def host(speculos_phrase):
    return Host(speculos_phrase)


@pytest.fixture
async def chain(speculos_phrase):
    """A trustchain of this phrase's device: Seed; Derive+Add(M1); Add(M2) at m/0'/16'/0'."""
    device = software_device_from(speculos_phrase)
    m1, m2 = KeyPair.generate(), KeyPair.generate()
    chain = Chain().add((), await device.sign_block(SeedRequest(), None))
    chain.add(APP, await device.sign_block(DeriveRequest(APP, m1.public_key, "M1"), chain.tree))
    chain.add(APP, await device.sign_block(AddMemberRequest(APP, m2.public_key, "M2"), chain.tree))
    return chain


def blocks(chain):
    tree = chain.tree
    return [tree.root.blocks[0].block, *(encoded.block for encoded in tree.get(APP).blocks)]


# --- information and framing ---------------------------------------------------------------


def test_version_and_name(host):
    assert host.send(Ins.GET_VERSION) == (h("010101"), OK)
    assert host.send(Ins.GET_APP_NAME) == (b"Ledger Sync", OK)


@pytest.mark.parametrize(
    ("apdu", "status"),
    [
        ("", WRONG_LENGTH),
        ("e003", WRONG_LENGTH),
        ("e003000005aabb", WRONG_LENGTH),  # Lc says 5, 2 bytes follow
        ("e10300 0000", 0x6E00),
        ("b006000000", 0x911C),  # Ledger-PKI certificate: no PKI in the emulated OS
        ("b001000000", 0x6E00),
        ("e0ff000000", 0x6D00),
        ("e00a000000", 0x6D00),
        ("e003010000", WRONG_P1P2),
        ("e004000100", WRONG_P1P2),
        ("e005010000", WRONG_P1P2),
        ("e007030000", WRONG_P1P2),
        ("e008040000", WRONG_P1P2),
        ("e008000200", WRONG_P1P2),
        ("e009010000", WRONG_P1P2),
        ("e0060000" + "20" + "02" * 32, WRONG_LENGTH),  # INIT takes exactly 33 bytes
        ("e0060000" + "21" + "02" + "ff" * 32, WRONG_DATA),  # not a point on the curve
    ],
)
def test_malformed_apdus(host, apdu, status):
    assert host.raw(h(apdu.replace(" ", ""))) == (b"", status)


@pytest.mark.parametrize(
    ("ins", "p1", "data"),
    [
        (Ins.SIGN_BLOCK, 0, BlockHeader(bytes(32), ISSUER_PLACEHOLDER, 1).encode()),
        (Ins.SIGN_BLOCK, 1, h("1300")),
        (Ins.SIGN_BLOCK, 2, b""),
        (Ins.PARSE_STREAM, 0, b""),
        (Ins.PARSE_STREAM, 3, b""),
        (Ins.SET_TRUSTED_MEMBER, 0, b""),
    ],
)
def test_everything_but_information_and_login_needs_init(host, ins, p1, data):
    assert host.sw(ins, p1, 0, data) == BAD_STATE


# --- PARSE_STREAM --------------------------------------------------------------------------


async def test_parsing_its_own_trustchain(host, chain):
    host.init()
    for block in blocks(chain):
        assert set(host.parse_block(block)) == {OK}


async def test_parse_steps_out_of_order(host, chain):
    seed = blocks(chain)[0]
    host.init()
    assert host.sw(Ins.PARSE_STREAM, 1, 1, encode_command(seed.commands[0])) == PARSER_STATE
    assert host.sw(Ins.PARSE_STREAM, 2, 0, encode_signature(seed.signature)) == PARSER_STATE
    header = BlockHeader(seed.parent, seed.issuer, 1).encode()
    assert host.sw(Ins.PARSE_STREAM, 0, 0, header) == OK
    assert host.sw(Ins.PARSE_STREAM, 2, 0, encode_signature(seed.signature)) == PARSER_STATE


async def test_malformed_or_forged_streams(host, chain):
    seed, derive, _ = blocks(chain)
    host.init()
    assert host.sw(Ins.PARSE_STREAM, 0, 0, h("0101")) == INVALID_STREAM
    header = BlockHeader(seed.parent, seed.issuer, 0).encode()
    assert host.sw(Ins.PARSE_STREAM, 0, 0, header) == INVALID_STREAM
    # A stream must open with Seed.
    assert host.parse_block(derive)[:2] == [OK, INVALID_STREAM]
    host.init()
    header = BlockHeader(seed.parent, seed.issuer, 1).encode()
    assert host.sw(Ins.PARSE_STREAM, 0, 0, header) == OK
    assert host.sw(Ins.PARSE_STREAM, 1, 1, h("10020500")) == INVALID_STREAM
    edit = EditMember(member=seed.issuer, permissions=None, name=None)
    assert host.sw(Ins.PARSE_STREAM, 1, 1, encode_command(edit)) == INVALID_STREAM
    # A signature that does not verify.
    host.init()
    forged = bytearray(seed.signature)
    forged[-1] ^= 1
    steps = host.parse_block(type(seed)(seed.parent, seed.issuer, seed.commands, bytes(forged)))
    assert steps == [OK, OK, INVALID_STREAM]


async def test_a_foreign_issuer_needs_the_trusted_member(host, chain, speculos_phrase):
    # Member 1 adds members 2 and 3 itself, in two blocks of its own (QR pairing).
    seed = blocks(chain)[0]
    m1 = KeyPair.generate()
    chain = Chain().add((), seed)
    device = software_device_from(speculos_phrase)
    chain.add(APP, await device.sign_block(DeriveRequest(APP, m1.public_key, "M1"), chain.tree))
    derive = chain.tree.get(APP).blocks[0].block
    xpriv = read_key(chain.tree, m1.private_key, APP).xpriv
    for _ in range(2):
        tip = chain.tree.get(APP).last_hash
        chain.add(APP, add_member_block(m1, tip, xpriv, KeyPair.generate().public_key, "sw"))
    add_m2, add_m3 = (encoded.block for encoded in chain.tree.get(APP).blocks[1:])
    host.init()
    host.parse_block(seed)
    host.parse_block(derive)  # the device now trusts M1 (added, then given the key)
    assert host.parse_block(add_m2) == [OK, OK, OK, OK]  # M1's block; the slot moves to M2
    assert host.parse_block(add_m3)[0] == INVALID_STREAM  # M1 is no longer the trusted one
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, host.tokens[m1.public_key]) == OK
    assert host.parse_block(add_m3) == [OK, OK, OK, OK]
    assert host.sign_header(add_m3.hash(), 1) == OK


async def test_set_trusted_member(host, chain):
    seed, derive, add = blocks(chain)
    host.init()
    host.parse_block(seed)
    host.parse_block(derive)
    header = BlockHeader(add.parent, add.issuer, len(add.commands))
    assert host.sw(Ins.PARSE_STREAM, 0, 0, header.encode()) == OK
    m2_blob, status = host.send(Ins.PARSE_STREAM, 1, 1, encode_command(add.commands[0]))
    assert status == OK
    token = TrustedProperties.decode(m2_blob)
    assert [tag for tag, _ in token.entries] == [TrustedProperty.NEW_MEMBER]
    assert len(token.find(TrustedProperty.NEW_MEMBER)) == 68
    # Garbage, the IV without a blob, a tampered blob: all 0x6A80.
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, h("0102")) == WRONG_DATA
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, token.encode()[:18]) == WRONG_DATA
    tampered = bytearray(token.encode())
    tampered[-1] ^= 1
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, bytes(tampered)) == WRONG_DATA
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, token.encode()) == OK
    # A blob is valid for one session only.
    host.init()
    assert host.sw(Ins.SET_TRUSTED_MEMBER, 0, 0, token.encode()) == WRONG_DATA


async def test_parsing_a_closed_stream_answers_stream_closed(host, chain, speculos_phrase):
    device = software_device_from(speculos_phrase)
    chain.add(APP, await device.sign_block(CloseRequest(APP), chain.tree))
    host.init()
    *earlier, closing = blocks(chain)
    for block in earlier:
        host.parse_block(block)
    assert host.parse_block(closing) == [OK, CLOSED, OK]


# --- SIGN_BLOCK ----------------------------------------------------------------------------


async def test_a_stream_that_changed_between_parse_and_sign_is_refused(host, chain):
    seed, derive, add = blocks(chain)
    # The device parsed up to the Derive block; the stream has since grown by one block.
    host.init()
    host.parse_block(seed)
    host.parse_block(derive)
    assert host.sign_header(add.hash(), 1) == INVALID_STREAM
    # It parsed everything, but the host signs against the stale tip.
    host.init()
    for block in (seed, derive, add):
        host.parse_block(block)
    assert host.sign_header(derive.hash(), 1) == INVALID_STREAM
    assert host.sign_header(add.hash(), 1) == OK


async def test_sign_refusals(host, chain):
    seed = blocks(chain)[0]
    host.init()
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, h("1300")) == BAD_STATE  # before its header
    assert host.sign_header(bytes(32), 0) == INVALID_STREAM  # no command
    host.parse_block(seed)
    assert host.sign_header(seed.hash(), 1) == OK
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(SeedTemplate())) == BAD_STATE
    host.init()
    host.parse_block(seed)
    host.sign_header(seed.hash(), 2)
    non_hardened = DeriveTemplate((0, 16, 0))
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(non_hardened)) == BAD_STATE
    host.init()
    host.parse_block(seed)
    host.sign_header(seed.hash(), 2)
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(DeriveTemplate(APP))) == OK
    stranger = PublishKeyTemplate(KeyPair.generate().public_key)
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(stranger)) == BAD_STATE
    host.init()
    host.parse_block(seed)
    host.sign_header(seed.hash(), 1)
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, h("1502aabb")) == BAD_STATE  # malformed command


async def test_finalize_needs_every_announced_command(host, chain):
    seed = blocks(chain)[0]
    host.init()
    host.parse_block(seed)
    assert host.sign_header(seed.hash(), 2) == OK
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(DeriveTemplate(APP))) == OK
    assert host.sw(Ins.SIGN_BLOCK, 2) == BAD_STATE
    # The signature attempt ended the session.
    assert host.sign_header(seed.hash(), 1) == BAD_STATE


async def test_another_seed_cannot_derive_or_publish(chain):
    seed = blocks(chain)[0]
    stranger = Host(OTHER_PHRASE)
    stranger.init()
    # A foreign Seed parses (its issuer becomes the trusted member) but yields no key.
    assert stranger.parse_block(seed) == [OK, OK, OK]
    stranger.sign_header(seed.hash(), 1)
    assert stranger.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(DeriveTemplate(APP))) == BAD_STATE


async def test_a_refused_command_ends_the_session(speculos_phrase, chain):
    seed, derive, add = blocks(chain)
    approvals = Approvals(False)
    host = Host(speculos_phrase, approver=approvals)
    host.init()
    host.parse_block(seed)
    host.parse_block(derive)
    host.parse_block(add)
    assert host.sign_header(add.hash(), 1) == OK
    assert host.sw(Ins.SIGN_BLOCK, 1, 0, encode_template(CloseStream())) == DENY
    assert host.sw(Ins.SIGN_BLOCK, 2) == BAD_STATE  # nothing left to sign
    assert len(approvals.requests) == 1


def test_sign_responses_have_the_shape_of_the_recorded_ones(host, vectors):
    """Same TLV tags and lengths as the real device, response by response."""

    def shape(data):
        properties = TrustedProperties.decode(data)
        return [(0, len(properties.iv))] + [(tag, len(value)) for tag, value in properties.entries]

    recorded = vectors["e2e_apdu_sign_seed_block"]
    host.init()
    parent = h(recorded["sign_header_apdu"])[10:42]
    header, _ = host.send(Ins.SIGN_BLOCK, 0, 0, BlockHeader(parent, ISSUER_PLACEHOLDER, 1).encode())
    assert shape(header) == shape(h(recorded["sign_header_response"]))
    seed, _ = host.send(Ins.SIGN_BLOCK, 1, 0, encode_template(SeedTemplate()))
    assert shape(seed) == shape(h(recorded["sign_seed_response"]))
    final, status = host.send(Ins.SIGN_BLOCK, 2)
    assert status == OK
    response = SignatureResponse.decode(final)
    # Only now can the host read the encrypted properties: the issuer is the device's key.
    key = crypto.ecdh_x(host.session.private_key, response.session_public_key)
    issuer = TrustedProperties.decode(header).open(TrustedProperty.ISSUER, key)
    assert issuer == host.emulator.app.public_key


KNOWN_STATUS = {OK, DENY, WRONG_DATA, WRONG_P1P2, WRONG_LENGTH, BAD_STATE, PARSER_STATE}
KNOWN_STATUS |= {INVALID_STREAM, CLOSED, 0x6E00, 0x6D00, 0x911C, 0xB00D, 0xB00E, 0xB00F}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0xE0, 0xE0, 0xE0, 0xB0]),
            st.integers(3, 9),
            st.integers(0, 4),
            st.integers(0, 2),
            st.binary(max_size=120),
        ),
        max_size=12,
    )
)
def test_whatever_arrives_only_status_words_come_out(steps):
    host = Host(_FUZZ_PHRASE)
    host.init()
    for cla, ins, p1, p2, data in steps:
        response = host.emulator.exchange(CommandApdu(ins, p1, p2, data, cla=cla).encode())
        assert int.from_bytes(response[-2:], "big") in KNOWN_STATUS


class _Recording(InProcessTransport):
    def __init__(self, emulator):
        super().__init__(emulator)
        self.sent = []

    async def exchange(self, apdu):
        self.sent.append(apdu)
        return await super().exchange(apdu)


@functools.cache
def _real_apdus():
    """Every APDU of a create / derive / add / close run: material for shuffled sessions."""

    async def run():
        emulator = Emulator(DeviceIdentity.from_mnemonic(_FUZZ_PHRASE), approver=approve_all)
        transport = _Recording(emulator)
        device = ApduDevice(transport)
        chain = Chain().add((), await device.sign_block(SeedRequest(), None))
        member = KeyPair.generate().public_key
        chain.add(APP, await device.sign_block(DeriveRequest(APP, member, "M"), chain.tree))
        other = KeyPair.generate().public_key
        chain.add(APP, await device.sign_block(AddMemberRequest(APP, other, "N"), chain.tree))
        await device.sign_block(CloseRequest(APP), chain.tree)
        return tuple(transport.sent)

    return asyncio.run(run())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_real_apdus_in_any_order_and_damaged_only_get_status_words(data):
    pool = _real_apdus()
    host = Host(_FUZZ_PHRASE, approver=lambda request: data.draw(st.booleans()))
    for _ in range(data.draw(st.integers(1, 40))):
        apdu = bytearray(data.draw(st.sampled_from(pool)))
        if len(apdu) > 5 and data.draw(st.booleans()):
            apdu[data.draw(st.integers(5, len(apdu) - 1))] ^= data.draw(st.integers(1, 255))
        response = host.emulator.exchange(bytes(apdu))
        assert int.from_bytes(response[-2:], "big") in KNOWN_STATUS
