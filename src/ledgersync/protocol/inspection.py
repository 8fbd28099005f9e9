"""An auditor's view of a trustchain: verify it and describe every stream, block and member.

Pure functions: text in (hex, or the JSON object ``GET /v1/trustchain/{id}`` returns), a typed
report out, rendered as plain text or JSON-ready dicts. The CLI only does the I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import permissions
from .block import EncodedBlock, decode_stream_blocks
from .commands import (
    AddMember,
    CloseStream,
    Command,
    Derive,
    EditMember,
    PublishKey,
    Seed,
    UnknownCommand,
    command_name,
)
from .errors import DecodeError, ResolutionError
from .paths import Path, format_path
from .resolver import ResolvedStream, resolve_stream
from .tree import check_derived_link, duplicate_root_error, trustchain_id_from_hash

#: The largest input accepted (hex text); a real trustchain is a few kilobytes.
MAX_INPUT_LENGTH = 16 * 1024 * 1024


class UnreadableInput(ValueError):
    """The input is neither hex nor a JSON object/array/string of hex streams."""


@dataclass(frozen=True)
class Violation:
    stream: str | None
    block: int | None
    rule: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "block": self.block,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class StreamReport:
    label: str | None  # the key the stream came under in a JSON input, if any
    blocks: tuple[EncodedBlock, ...]
    resolved: ResolvedStream | None
    violation: Violation | None

    @property
    def path(self) -> str | None:
        if self.resolved is not None:
            return self.resolved.path_text
        return _declared_path(self.blocks)


def _declared_path(blocks: tuple[EncodedBlock, ...]) -> str | None:
    """The path a stream's first command claims: ``m/`` for a Seed, the Derive's path."""
    if blocks:
        first = blocks[0].block.commands[0]
        if isinstance(first, Seed):
            return "m/"
        if isinstance(first, Derive):
            return format_path(first.path)
    return None


@dataclass(frozen=True)
class Inspection:
    streams: tuple[StreamReport, ...]
    trustchain_id: str | None
    violation: Violation | None = field(default=None)

    @property
    def valid(self) -> bool:
        return self.violation is None


def parse_input(text: str) -> list[tuple[str | None, bytes]]:
    """Read streams from hex text or from JSON (object of hex values, array, or string)."""
    if len(text) > MAX_INPUT_LENGTH:
        raise UnreadableInput(f"input is larger than {MAX_INPUT_LENGTH} characters")
    stripped = text.strip()
    if not stripped:
        raise UnreadableInput("input is empty")
    if stripped[0] in '{["':
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UnreadableInput(f"input is not valid JSON: {exc}") from exc
        if isinstance(value, str):
            return [(None, _hex(value, "the JSON string"))]
        if isinstance(value, list):
            return [(None, _hex(item, f"item {i}")) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return [(str(key), _hex(item, f"key {key!r}")) for key, item in value.items()]
        raise UnreadableInput("JSON input must be an object, an array or a string of hex")
    return [(None, _hex(stripped, "the input"))]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise UnreadableInput(f"{what} is not a hex string")
    cleaned = "".join(value.split())
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise UnreadableInput(f"{what} is not valid hex") from exc


def inspect_streams(streams: list[tuple[str | None, bytes]]) -> Inspection:
    """Verify every stream on its own, then the tree they form, keeping the first violation."""
    decoded: list[tuple[str | None, tuple[EncodedBlock, ...], Violation | None]] = []
    for label, data in streams:
        try:
            blocks = decode_stream_blocks(data)
            violation = None if blocks else Violation(label, None, "decode", "empty stream")
        except DecodeError as exc:
            blocks, violation = (), Violation(label, None, "decode", str(exc))
        decoded.append((label, blocks, violation))

    roots = [
        blocks
        for _, blocks, _ in decoded
        if blocks and isinstance(blocks[0].block.commands[0], Seed)
    ]
    seed_hash = roots[0][0].hash() if len(roots) == 1 else None
    reports = []
    for label, blocks, violation in decoded:
        resolved = None
        if violation is None:
            first = blocks[0].block.commands[0]
            first_parent = seed_hash if isinstance(first, Derive) else None
            try:
                resolved = resolve_stream(blocks, first_parent=first_parent)
            except ResolutionError as exc:
                where = _declared_path(blocks) or label
                violation = Violation(where, exc.height, exc.rule, exc.detail)
        reports.append(StreamReport(label, blocks, resolved, violation))
    reports.sort(key=_order)

    first_violation = next((r.violation for r in reports if r.violation), None)
    if first_violation is None and roots:
        try:
            _check_links(reports, len(roots))
        except ResolutionError as exc:
            first_violation = Violation(exc.path, exc.height, exc.rule, exc.detail)
    trustchain_id = trustchain_id_from_hash(seed_hash) if seed_hash else None
    return Inspection(tuple(reports), trustchain_id, first_violation)


def _check_links(reports: list[StreamReport], root_count: int) -> None:
    """The tree's rules between streams that each resolved on their own (in path order)."""
    if root_count > 1:
        raise duplicate_root_error()
    resolved = [report.resolved for report in reports if report.resolved is not None]
    root, derived = resolved[0], resolved[1:]
    seen: dict[Path, ResolvedStream] = {}
    for stream in derived:
        check_derived_link(root, stream.path, stream.creator, seen)
        seen[stream.path] = stream


def _order(report: StreamReport) -> tuple[int, str]:
    path = report.path
    return (0, "") if path == "m/" else (1, path or report.label or "")


def inspect_text(text: str) -> Inspection:
    return inspect_streams(parse_input(text))


# --- rendering --------------------------------------------------------------------------------


def _command_fields(command: Command) -> dict[str, Any]:
    if isinstance(command, Seed):
        return {
            "topic": None if command.topic is None else command.topic.hex() or '""',
            "protocol_version": command.protocol_version,
            "group_key": command.group_key.hex(),
            "iv": command.initialization_vector.hex(),
            "encrypted_xpriv": command.encrypted_xpriv.hex(),
            "ephemeral_public_key": command.ephemeral_public_key.hex(),
        }
    if isinstance(command, Derive):
        return {
            "path": format_path(command.path),
            "group_key": command.group_key.hex(),
            "iv": command.initialization_vector.hex(),
            "encrypted_xpriv": command.encrypted_xpriv.hex(),
            "ephemeral_public_key": command.ephemeral_public_key.hex(),
        }
    if isinstance(command, AddMember):
        return {
            "name": command.name,
            "public_key": command.public_key.hex(),
            "permissions": command.permissions,
            "permissions_text": permissions.describe(command.permissions),
        }
    if isinstance(command, PublishKey):
        return {
            "recipient": command.recipient.hex(),
            "iv": command.initialization_vector.hex(),
            "encrypted_xpriv": command.encrypted_xpriv.hex(),
            "ephemeral_public_key": command.ephemeral_public_key.hex(),
        }
    if isinstance(command, EditMember):
        return {
            "member": command.member.hex(),
            "permissions": command.permissions,
            "name": command.name,
        }
    if isinstance(command, UnknownCommand):
        return {"tag": command.tag, "body": command.body.hex()}
    assert isinstance(command, CloseStream)
    return {}


def to_json(inspection: Inspection) -> dict[str, Any]:
    """The ``--json`` document; its keys are documented in the README."""
    streams = []
    for report in inspection.streams:
        resolved = report.resolved
        streams.append(
            {
                "path": report.path,
                "label": report.label,
                "valid": report.violation is None,
                "stream_id": resolved.stream_id.hex() if resolved else None,
                "group_key": resolved.group_key.hex() if resolved else None,
                "topic": resolved.topic.hex() if resolved and resolved.topic is not None else None,
                "closed": resolved.closed if resolved else None,
                "creator": resolved.creator.hex() if resolved else None,
                "members": [
                    {
                        "public_key": m.public_key.hex(),
                        "name": m.name,
                        "permissions": m.permissions,
                        "permissions_text": permissions.describe(m.permissions),
                        "holds_key": m.owns_key,
                    }
                    for m in resolved.members
                ]
                if resolved
                else None,
                "key_holders": [k.hex() for k in resolved.key_holders] if resolved else None,
                "blocks": [
                    {
                        "height": height,
                        "hash": encoded.hash().hex(),
                        "parent": encoded.block.parent.hex(),
                        "issuer": encoded.block.issuer.hex(),
                        "version": encoded.block.version,
                        "signature": encoded.block.signature.hex(),
                        "commands": [
                            {"type": command_name(c), **_command_fields(c)}
                            for c in encoded.block.commands
                        ],
                    }
                    for height, encoded in enumerate(report.blocks)
                ],
                "violation": report.violation.to_json() if report.violation else None,
            }
        )
    return {
        "valid": inspection.valid,
        "trustchain_id": inspection.trustchain_id,
        "violation": inspection.violation.to_json() if inspection.violation else None,
        "streams": streams,
    }


def render_text(inspection: Inspection) -> str:
    lines = []
    status = "VALID" if inspection.valid else "INVALID"
    lines.append(f"Trustchain {inspection.trustchain_id or '(no root stream given)'}: {status}")
    for report in inspection.streams:
        resolved = report.resolved
        lines.append("")
        title = report.path or report.label or "(unreadable stream)"
        if report.label is not None and report.label != report.path:
            title += f"  (input key {report.label!r})"
        state = "closed" if resolved and resolved.closed else "open" if resolved else "invalid"
        lines.append(f"Stream {title}  [{state}]")
        if resolved:
            lines.append(f"  stream id  {resolved.stream_id.hex()}")
            lines.append(f"  group key  {resolved.group_key.hex()}")
            if resolved.topic:
                lines.append(f"  topic      {resolved.topic.hex()}")
        for height, encoded in enumerate(report.blocks):
            block = encoded.block
            lines.append(f"  block {height}  hash {encoded.hash().hex()}")
            lines.append(f"    parent {block.parent.hex()}")
            lines.append(f"    issuer {block.issuer.hex()}")
            for command in block.commands:
                fields = _command_fields(command)
                detail = ", ".join(
                    f"{k}={v}" for k, v in fields.items()
                    if k not in ("encrypted_xpriv", "iv", "ephemeral_public_key", "permissions")
                )  # fmt: skip
                lines.append(f"    - {command_name(command)}" + (f" {detail}" if detail else ""))
        if resolved:
            lines.append("  members:")
            for member in resolved.members:
                role = member.name if member.name is not None else "(creator)"
                key = "holds key" if member.owns_key else "no key"
                lines.append(
                    f"    {member.public_key.hex()}  {role}  "
                    f"{permissions.describe(member.permissions)}  {key}"
                )
        if report.violation:
            lines.append(f"  violation: {_describe(report.violation)}")
    if inspection.violation:
        lines.append("")
        lines.append(f"First violation: {_describe(inspection.violation)}")
    return "\n".join(lines)


def _describe(violation: Violation) -> str:
    where = []
    if violation.stream:
        where.append(f"stream {violation.stream}")
    if violation.block is not None:
        where.append(f"block {violation.block}")
    prefix = ", ".join(where)
    return (
        f"{prefix}: [{violation.rule}] {violation.message}"
        if prefix
        else f"[{violation.rule}] {violation.message}"
    )
