"""Confidentiality after a real run, on SQLite and PostgreSQL: a real ``ledgersync serve``
(``ledgersync.testing.LocalServer``, logging at debug level) serves a whole Ledger Live-like
session with the SDK: a device creates the trustchain, two instances join, wallet data with
a unique marker is pushed, pulled and watched over the notifications socket, a QR-relay
exchange carries another marker, a member is removed (key rotation) and data pushed again.

Then every byte the server kept is scanned: the database files (SQLite: the file, its WAL
and shared memory; PostgreSQL: the rows of the deployment's schema and the cluster's files,
after a checkpoint) and the server's log. None may contain the plaintext, a member's or the
device's private key, the wallet encryption keys, an access token (or its signature), the
server's own private keys, or a QR frame; the log may not contain a client address. The
database and key files are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from ledgersync.device.approval import ApprovalRequest
from ledgersync.device.identity import DeviceIdentity, generate_mnemonic
from ledgersync.device.software import SoftwareDevice
from ledgersync.sdk.cloudsync import CloudSyncSDK, UpdateEvent
from ledgersync.sdk.credentials import TrustchainMember
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.server.keys import ServerKeys
from ledgersync.testing import EmbeddedPostgres, LocalServer


class Secrets:
    """Everything that must never reach the server's storage or logs, as bytes."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}
        self.log_only: set[str] = set()
        #: What the server does see and keep (the threat model says so): a positive control.
        self.visible: dict[str, bytes] = {}

    def add(self, name: str, value: bytes | str, *, log_only: bool = False) -> None:
        data = value.encode() if isinstance(value, str) else value
        assert len(data) >= 8, name
        self.items[name] = data
        if log_only:
            self.log_only.add(name)

    def add_key(self, name: str, key: bytes) -> None:
        self.add(f"{name} (raw)", key)
        self.add(f"{name} (hex)", key.hex())
        self.add(f"{name} (HEX)", key.hex().upper())

    def found_in(self, data: bytes, *, log: bool = False) -> list[str]:
        return [
            name
            for name, secret in self.items.items()
            if secret in data and (log or name not in self.log_only)
        ]


def approve(request: ApprovalRequest) -> bool:
    return True


async def run_session(url: str, secrets: Secrets) -> None:
    marker = f"CONFIDENTIAL-{uuid.uuid4().hex}"
    secrets.add("the plaintext marker", marker)
    secrets.add("the plaintext marker (UTF-16)", marker.encode("utf-16-le"))
    phrase = generate_mnemonic()
    secrets.add("the device's recovery phrase", phrase)
    secrets.add_key(
        "the device's private key", DeviceIdentity.from_mnemonic(phrase).seed_id.private_key
    )
    device = SoftwareDevice.from_mnemonic(phrase, approver=approve)
    names = [f"{name} {uuid.uuid4().hex[:12]}" for name in ("Linux", "Mac", "Phone")]
    for name in names:
        secrets.visible[f"member name {name}"] = name.encode()
    sdks = [TrustchainSDK(url, name=name) for name in names]
    state: dict[str, Any] = {}

    async def save(event: UpdateEvent) -> None:
        state["last"] = event

    clouds = [
        CloudSyncSDK(
            url, trustchain_sdk=sdk, get_current_version=lambda: None, save_new_update=save
        )
        for sdk in sdks
    ]
    try:
        credentials = [sdk.init_member_credentials() for sdk in sdks]
        for index, each in enumerate(credentials):
            secrets.add_key(f"member {index}'s private key", each.private_key)
        trustchains = [
            (await sdk.get_or_create_trustchain(device, creds)).trustchain
            for sdk, creds in zip(sdks, credentials, strict=True)
        ]
        secrets.add_key("the wallet key", trustchains[0].wallet_sync_encryption_key)
        data = {"accounts": [], "accountNames": {"js:2:bitcoin:xpub": marker}}
        notes = clouds[1].notifications(trustchains[1], credentials[1])
        async with notes:
            # subscribed (the server answers with the version, 0: no document yet)
            assert await asyncio.wait_for(anext(notes), 30) == 0
            pushed = await clouds[0].push(trustchains[0], credentials[0], data)
            assert await asyncio.wait_for(anext(notes), 30) == pushed.version
        pulled = await clouds[1].pull(trustchains[1], credentials[1])
        assert pulled.data == data  # the flow worked: the secrets did travel, encrypted
        for sdk, trustchain, creds in zip(sdks, trustchains, credentials, strict=True):
            jwt = await sdk.get_jwt(trustchain, creds)
            secrets.add(f"{sdk.name}'s access token", jwt.access_token)
            secrets.add(f"{sdk.name}'s token signature", jwt.access_token.rsplit(".", 1)[1])
        # a key rotation, and data under the new key
        sdks[0].lifecycle = clouds[0].rotation_lifecycle(lambda: data)
        removed = TrustchainMember(credentials[1].pubkey, "Mac")
        rotated = await sdks[0].remove_member(device, trustchains[0], credentials[0], removed)
        secrets.add_key("the rotated wallet key", rotated.wallet_sync_encryption_key)
        await clouds[0].push(rotated, credentials[0], {**data, "after": marker})
        jwt = await sdks[0].get_jwt(rotated, credentials[0])
        secrets.add("a token after the rotation", jwt.access_token)
        # the QR relay: two peers exchange frames carrying a marker
        await relay_exchange(url, secrets)
    finally:
        for cloud in clouds:
            await cloud.aclose()
        for sdk in sdks:
            await sdk.aclose()


async def relay_exchange(url: str, secrets: Secrets) -> None:
    from ledgersync.protocol import KeyPair

    host = KeyPair.generate().public_key.hex()
    frame = f"QR-FRAME-{uuid.uuid4().hex}"
    secrets.add("a QR frame", frame)
    secrets.add("a QR room key", host, log_only=True)  # PostgreSQL keeps seats by room
    target = url.replace("http://", "ws://") + f"/v1/qr?host={host}"
    async with websockets.connect(target) as first, websockets.connect(target) as second:
        await first.send(frame)
        assert await asyncio.wait_for(second.recv(), 30) == frame


def server_secrets(directory: Path, secrets: Secrets) -> None:
    keys = ServerKeys.from_json((directory / "server-key.json").read_text())
    secrets.add_key("the server's challenge key", keys.relying_party.private_key)
    scalar = keys.token_key.private_numbers().private_value.to_bytes(32, "big")
    secrets.add_key("the server's token key", scalar)
    pem = json.loads((directory / "server-key.json").read_text())["token_private_key_pem"]
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    secrets.add("the server's token key (PEM)", body[20:80])


def client_addresses(log: str, server_port: int) -> list[str]:
    """Log lines naming a client's address (127.0.0.1 with a port that is not the server's)."""
    found = []
    for line in log.splitlines():
        for match in re.finditer(r"127\.0\.0\.1\D{1,4}(\d{2,5})", line):
            if int(match.group(1)) != server_port:
                found.append(line[:200])
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def local_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LocalServer, str]]:
    settings: dict[str, str] = {"log_level": "debug"}
    if request.param == "postgres":
        cluster: EmbeddedPostgres = request.getfixturevalue("ledgersync_postgres")
        settings["database"] = cluster.create_database()
    server = LocalServer(tmp_path, **settings)
    server.start()
    try:
        yield server, request.param
    finally:
        server.close()


async def test_the_server_keeps_no_secret(
    local_server: tuple[LocalServer, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server, backend = local_server
    secrets = Secrets()
    await run_session(server.url, secrets)
    server_secrets(tmp_path, secrets)
    port = server.port
    stored: dict[str, bytes] = {}
    if backend == "postgres":
        cluster: EmbeddedPostgres = request.getfixturevalue("ledgersync_postgres")
        stored.update(await postgres_contents(cluster, server.database))
    if backend == "sqlite":  # while running: the WAL holds recent pages, old versions too
        stored.update(sqlite_files(tmp_path, "while running"))
    server.stop()  # graceful: everything is written out
    if backend == "sqlite":
        stored.update(sqlite_files(tmp_path, "after stopping"))
        assert "ledgersync.sqlite after stopping" in stored
    log = server.log.read_text(errors="replace")
    assert "Application startup complete" in log or "started" in log, log[-2000:]
    problems = [
        f"{name} holds {secret}"
        for name, data in stored.items()
        for secret in secrets.found_in(data)
    ]
    problems += [f"the log holds {secret}" for secret in secrets.found_in(log.encode(), log=True)]
    problems += [f"the log names a client: {line}" for line in client_addresses(log, port)]
    assert not problems, "\n".join(problems)
    # the scan sees what the server does keep: the member names are in the blocks
    everything = b"".join(stored.values())
    for name, value in secrets.visible.items():
        assert value in everything, f"the scan did not find {name}: it reads the wrong files"


def sqlite_files(directory: Path, when: str) -> dict[str, bytes]:
    return {
        f"{path.name} {when}": path.read_bytes() for path in directory.glob("ledgersync.sqlite*")
    }


async def postgres_contents(cluster: EmbeddedPostgres, url: str) -> dict[str, bytes]:
    """Every row of the deployment's schema as text, and every file of the cluster."""
    import asyncpg

    schema = url.split("search_path=", 1)[1]
    connection = await asyncpg.connect(cluster.url())
    try:
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        dump: dict[str, bytes] = {}
        for row in tables:
            rows = await connection.fetch(f'SELECT * FROM "{schema}"."{row["table_name"]}"')
            text = "\n".join(repr(tuple(record.values())) for record in rows)
            raw = b"".join(
                value if isinstance(value, bytes) else str(value).encode()
                for record in rows
                for value in record.values()
            )
            dump[f"table {row['table_name']}"] = text.encode() + b"\n" + raw
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    assert any(rows for rows in dump.values())
    files = b"".join(
        path.read_bytes()
        for path in cluster.data.rglob("*")
        if path.is_file() and path.stat().st_size < 64 << 20
    )
    dump["the cluster's files"] = files
    return dump


def test_database_and_key_files_are_private(tmp_path: Path) -> None:
    """What ``ledgersync serve`` creates is readable by its owner only."""
    (tmp_path / "server").mkdir()
    with LocalServer(tmp_path / "server") as server:
        directory = server.directory
        paths = [directory / "server-key.json", *directory.glob("ledgersync.sqlite*")]
        assert any(path.name == "ledgersync.sqlite" for path in paths)
        for path in paths:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
