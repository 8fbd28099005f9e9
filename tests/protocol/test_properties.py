"""Property tests: codecs round-trip, and no input makes a decoder raise anything but a
ProtocolError (the h11 contract: any other exception is a bug)."""

import base64
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgersync.protocol import (
    AddMember,
    Block,
    CloseStream,
    Derive,
    EditMember,
    PublishKey,
    Seed,
    UnknownCommand,
    crypto,
    decode_block,
    decode_command,
    decode_stream,
    encode_command,
    resolve_stream,
    resolve_tree,
    userdata,
)
from ledgersync.protocol.challenge import Challenge, SeedIdResponse, decode_attestation
from ledgersync.protocol.errors import ProtocolError
from ledgersync.protocol.paths import decode_path, encode_path, format_path, parse_path

from ..support.vectors import load_vectors

KEY = st.binary(min_size=33, max_size=33)
IV = st.binary(min_size=16, max_size=16)
U32 = st.integers(0, 0xFFFFFFFF)
NAME = st.text(min_size=1, max_size=40)
CIPHERTEXT = st.binary(max_size=80)

seeds = st.one_of(
    st.builds(
        Seed,
        topic=st.none() | st.binary(max_size=32),
        protocol_version=st.integers(0, 0xFFFF),
        group_key=KEY,
        initialization_vector=IV,
        encrypted_xpriv=CIPHERTEXT,
        ephemeral_public_key=KEY,
        protocol_version_width=st.just(2),
    ),
    st.builds(
        Seed,
        topic=st.none() | st.binary(max_size=32),
        protocol_version=U32,
        group_key=KEY,
        initialization_vector=IV,
        encrypted_xpriv=CIPHERTEXT,
        ephemeral_public_key=KEY,
        protocol_version_width=st.just(4),
    ),
)
derives = st.builds(
    Derive,
    path=st.lists(U32, max_size=10).map(tuple),
    group_key=KEY,
    initialization_vector=IV,
    encrypted_xpriv=CIPHERTEXT,
    ephemeral_public_key=KEY,
)
add_members = st.builds(AddMember, name=NAME, public_key=KEY, permissions=U32)
publish_keys = st.builds(
    PublishKey,
    initialization_vector=IV,
    encrypted_xpriv=CIPHERTEXT,
    recipient=KEY,
    ephemeral_public_key=KEY,
)
edit_members = st.builds(EditMember, member=KEY, permissions=st.none() | U32, name=st.none() | NAME)
unknowns = st.builds(
    UnknownCommand, tag=st.sampled_from([0x16, 0x20, 0x3F]), body=st.binary(max_size=60)
)
commands = st.one_of(
    seeds, derives, add_members, publish_keys, st.just(CloseStream()), edit_members, unknowns
)
blocks = st.builds(
    Block,
    parent=st.binary(min_size=32, max_size=32),
    issuer=KEY,
    commands=st.lists(commands, min_size=1, max_size=4).map(tuple),
    signature=st.binary(max_size=72),
    version=st.integers(0, 255),
)


@given(commands)
def test_commands_round_trip(command):
    encoded = encode_command(command)
    assert decode_command(encoded) == command
    assert encode_command(decode_command(encoded)) == encoded


@given(blocks)
def test_blocks_round_trip(block):
    encoded = block.encode()
    assert decode_block(encoded) == block
    assert decode_block(encoded).hash() == crypto.sha256(encoded)


@given(st.lists(blocks, min_size=1, max_size=3))
def test_streams_round_trip(stream):
    data = b"".join(block.encode() for block in stream)
    assert decode_stream(data) == tuple(stream)


@given(
    st.lists(
        st.integers(0, 0x7FFFFFFF).flatmap(lambda i: st.sampled_from([i, i | 0x80000000])),
        max_size=12,
    )
)
def test_paths_round_trip(path):
    path = tuple(path)
    assert decode_path(encode_path(path)) == path
    assert parse_path(format_path(path)) == path


def expect_value_or_protocol_error(function, *args):
    with contextlib.suppress(ProtocolError):
        function(*args)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash_the_decoders(data):
    for decoder in (
        decode_command,
        decode_block,
        decode_stream,
        resolve_stream,
        Challenge.decode,
        SeedIdResponse.decode,
        decode_attestation,
        decode_path,
        crypto.parse_der_signature,
    ):
        expect_value_or_protocol_error(decoder, data)
    expect_value_or_protocol_error(resolve_tree, [data])
    key = bytes(31) + b"\x01"
    expect_value_or_protocol_error(userdata.decrypt_user_data, key, data)
    expect_value_or_protocol_error(userdata.decompress, data)
    expect_value_or_protocol_error(
        userdata.decode_cloud_payload, key, base64.b64encode(data).decode()
    )


RECORDED = load_vectors()["e2e_ledger_live_success_session"]
RECORDED_STREAMS = [
    bytes.fromhex(RECORDED[name]["hex"]) for name in ("root_stream", "app_stream_index0")
]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_recorded_streams_never_crash_resolution(data):
    """Random byte flips, cuts and insertions in a valid trustchain reach deep into the
    resolver: they must give a valid tree or a ProtocolError."""
    streams = list(RECORDED_STREAMS)
    index = data.draw(st.integers(0, len(streams) - 1))
    stream = bytearray(streams[index])
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            stream[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del stream[position]
        else:
            stream.insert(position, data.draw(st.integers(0, 255)))
    streams[index] = bytes(stream)
    expect_value_or_protocol_error(resolve_tree, streams)
    expect_value_or_protocol_error(resolve_stream, bytes(stream))
