"""The APDU client: the Device interface over any transport to a Ledger Sync app.

It speaks to the real app (USB, Speculos) and to the emulator alike, as Ledger Live's
``ApduDevice`` does: INIT with a fresh session key per operation, replay what the device
must know, send the templates, finalize, then decrypt the trusted properties with
``ECDH_x(session key, device session key)`` and rebuild the block the device signed.
Status words become exceptions here (:func:`~ledgersync.device.errors.error_for_status`),
so nothing above this module sees one.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from ..protocol.apdu import (
    APP_NAME,
    BlockHeader,
    CommandApdu,
    Ins,
    OutputMode,
    ParseMode,
    SignatureResponse,
    SignMode,
    StatusWord,
    split_response,
)
from ..protocol.block import Block
from ..protocol.challenge import Challenge, SeedIdResponse, build_challenge
from ..protocol.commands import AddMember, CloseStream, Command, Derive, PublishKey, Seed
from ..protocol.commands import encode_command as encode_command_tlv
from ..protocol.crypto import KeyPair, Random, ecdh_x
from ..protocol.errors import ProtocolError
from ..protocol.keys import StreamKey
from ..protocol.paths import Path
from ..protocol.templates import (
    CommandTemplate,
    DeriveTemplate,
    PublishKeyTemplate,
    SeedTemplate,
    encode_template,
)
from ..protocol.tlv import encode_signature
from ..protocol.tree import StreamTree
from ..protocol.trusted import TrustedProperties, TrustedProperty
from .approval import ApprovalKind, ApprovalRequest, PromptListener
from .errors import (
    OPEN_THE_APP,
    AppNotOpenError,
    DeviceResponseError,
    UnsupportedOperationError,
    error_for_status,
)
from .interface import Device
from .requests import BlockRequest, plan_block
from .signing import sign_plan
from .transport import Transport

#: The relying party named in the challenge the client makes to learn the device's key.
LOCAL_CHALLENGE_HOST = "ledgersync.local"
LOCAL_CHALLENGE_LIFETIME = 300


class ApduDevice(Device):
    """A Ledger Sync app behind ``transport``; ``on_prompt`` hears of every approval asked."""

    def __init__(
        self,
        transport: Transport,
        *,
        random: Random = os.urandom,
        on_prompt: PromptListener | None = None,
    ) -> None:
        self._transport = transport
        self._random = random
        self._on_prompt = on_prompt
        self._public_key: bytes | None = None
        # One operation at a time: a device session cannot interleave two of them.
        self._lock = asyncio.Lock()

    async def send(
        self,
        ins: Ins,
        p1: int = 0,
        p2: int = 0,
        data: bytes = b"",
        *,
        prompt: ApprovalRequest | None = None,
    ) -> bytes:
        """One APDU; returns the response data or raises the exception for its status."""
        if prompt is not None and self._on_prompt is not None:
            self._on_prompt(prompt)
        response = await self._transport.exchange(CommandApdu(ins, p1, p2, data).encode())
        try:
            body, status = split_response(response)
        except ProtocolError as exc:
            raise DeviceResponseError(f"the device's answer is malformed: {exc}") from exc
        if status != StatusWord.OK:
            raise error_for_status(status)
        return body

    # --- the app --------------------------------------------------------------------------

    async def app_name(self) -> str:
        name = await self.send(Ins.GET_APP_NAME)
        return name.decode("ascii", errors="replace")

    async def app_version(self) -> tuple[int, int, int]:
        version = await self.send(Ins.GET_VERSION)
        if len(version) != 3:
            raise DeviceResponseError(f"GET_VERSION answered {len(version)} bytes, not 3")
        return version[0], version[1], version[2]

    async def ensure_app(self) -> None:
        """Check that the Ledger Sync app is the one open (:class:`AppNotOpenError` if not)."""
        name = await self.app_name()
        if name != APP_NAME:
            raise AppNotOpenError(f"the device runs {name!r}, not Ledger Sync: {OPEN_THE_APP}")

    # --- Device ---------------------------------------------------------------------------

    async def seed_id_public_key(self) -> bytes:
        if self._public_key is None:
            # The app reveals its key only in a signed answer: sign a challenge made here.
            challenge = build_challenge(
                KeyPair.generate(self._random),
                LOCAL_CHALLENGE_HOST,
                int(time.time()) + LOCAL_CHALLENGE_LIFETIME,
                self._random,
            )
            await self.sign_challenge(challenge)
        assert self._public_key is not None
        return self._public_key

    async def sign_challenge(self, challenge: Challenge) -> SeedIdResponse:
        request = ApprovalRequest(ApprovalKind.LOGIN, challenge.host)
        async with self._lock:
            data = await self.send(Ins.GET_SEED_ID, data=challenge.encode(), prompt=request)
        try:
            response = SeedIdResponse.decode(data)
            response.verify(challenge)
        except ProtocolError as exc:
            raise DeviceResponseError(f"the device's login signature is invalid: {exc}") from exc
        self._public_key = response.credential.public_key
        return response

    async def sign_block(self, request: BlockRequest, tree: StreamTree | None) -> Block:
        # The key is known after a login or a signature; until then the device decides.
        plan = plan_block(request, tree, self._random, self._public_key)
        async with self._lock:
            session = _ApduSession(self, KeyPair.generate(self._random))
            await self.send(Ins.INIT, data=session.key.public_key)
            block = await sign_plan(session, plan, tree)
        self._public_key = block.issuer
        return block

    async def read_key(self, tree: StreamTree, path: Path) -> StreamKey:
        raise UnsupportedOperationError(
            "a hardware device never exports a key; read it with a member key instead"
        )

    async def close(self) -> None:
        await self._transport.close()


@dataclass(frozen=True, slots=True)
class _Signed:
    template: CommandTemplate
    properties: TrustedProperties


def _properties(data: bytes) -> TrustedProperties:
    try:
        return TrustedProperties.decode(data)
    except ProtocolError as exc:
        raise DeviceResponseError(f"the device's trusted properties are malformed: {exc}") from exc


def _approval(template: CommandTemplate) -> ApprovalRequest | None:
    if isinstance(template, AddMember):
        return ApprovalRequest(ApprovalKind.ADD_MEMBER, template.name, template.public_key)
    if isinstance(template, CloseStream):
        return ApprovalRequest(ApprovalKind.CLOSE_STREAM)
    return None


class _ApduSession:
    """One INIT session; its trusted-member tokens are the device's encrypted blobs."""

    def __init__(self, device: ApduDevice, key: KeyPair) -> None:
        self._device = device
        self.key = key
        self._header: BlockHeader | None = None
        self._header_properties: TrustedProperties | None = None
        self._signed: list[_Signed] = []

    async def parse_header(self, header: BlockHeader) -> None:
        await self._device.send(Ins.PARSE_STREAM, ParseMode.BLOCK_HEADER, data=header.encode())

    async def parse_command(self, command: Command) -> TrustedProperties | None:
        data = await self._device.send(
            Ins.PARSE_STREAM,
            ParseMode.COMMAND,
            OutputMode.TRUSTED_DATA,
            encode_command_tlv(command),
        )
        if not data:
            return None
        properties = _properties(data)
        blob = properties.find(TrustedProperty.NEW_MEMBER)
        if blob is None:
            return None
        # SET_TRUSTED_MEMBER takes it back in the same form: the IV, then the blob.
        return TrustedProperties(properties.iv, ((TrustedProperty.NEW_MEMBER, blob),))

    async def parse_signature(self, signature: bytes) -> None:
        await self._device.send(
            Ins.PARSE_STREAM, ParseMode.SIGNATURE, data=encode_signature(signature)
        )

    async def set_trusted_member(self, token: TrustedProperties) -> None:
        await self._device.send(Ins.SET_TRUSTED_MEMBER, data=token.encode())

    async def sign_header(self, header: BlockHeader) -> None:
        data = await self._device.send(Ins.SIGN_BLOCK, SignMode.BLOCK_HEADER, data=header.encode())
        self._header = header
        self._header_properties = _properties(data)

    async def sign_command(self, template: CommandTemplate) -> None:
        data = await self._device.send(
            Ins.SIGN_BLOCK,
            SignMode.COMMAND,
            data=encode_template(template),
            prompt=_approval(template),
        )
        self._signed.append(_Signed(template, _properties(data)))

    async def finalize(self) -> Block:
        data = await self._device.send(Ins.SIGN_BLOCK, SignMode.FINALIZE)
        assert self._header is not None and self._header_properties is not None
        try:
            response = SignatureResponse.decode(data)
            session_key = ecdh_x(self.key.private_key, response.session_public_key)
            issuer = self._header_properties.open(TrustedProperty.ISSUER, session_key)
            commands = tuple(
                _filled(signed.template, signed.properties, session_key) for signed in self._signed
            )
            return Block(
                self._header.parent, issuer, commands, response.signature, self._header.version
            )
        except ProtocolError as exc:
            raise DeviceResponseError(f"the device's signed block does not decode: {exc}") from exc


def _filled(template: CommandTemplate, properties: TrustedProperties, key: bytes) -> Command:
    """The command the device signed: the template with the trusted properties put in."""
    if isinstance(template, AddMember | CloseStream):
        return template
    iv = properties.open(TrustedProperty.COMMAND_IV, key)
    encrypted_xpriv = properties.open(TrustedProperty.XPRIV, key)
    ephemeral = properties.open(TrustedProperty.EPHEMERAL_PUBLIC_KEY, key)
    if isinstance(template, PublishKeyTemplate):
        return PublishKey(iv, encrypted_xpriv, template.recipient, ephemeral)
    group_key = properties.open(TrustedProperty.GROUP_KEY, key)
    if isinstance(template, SeedTemplate):
        return Seed(
            template.topic, template.protocol_version, group_key, iv, encrypted_xpriv, ephemeral
        )
    assert isinstance(template, DeriveTemplate)
    return Derive(template.path, group_key, iv, encrypted_xpriv, ephemeral)
