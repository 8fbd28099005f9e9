"""How ``ledgersync inspect`` shows an inspection: plain text, or the ``--json`` document.

Rendering only: every verdict comes from :mod:`ledgersync.protocol.inspection`.
"""

from __future__ import annotations

from typing import Any

from ..protocol import permissions
from ..protocol.commands import (
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
from ..protocol.inspection import Inspection, StreamReport, Violation
from ..protocol.paths import format_path

#: Fields too long or too raw for the text view (the JSON document keeps them).
_TEXT_HIDDEN_FIELDS = frozenset({"encrypted_xpriv", "iv", "ephemeral_public_key", "permissions"})


def _wrapped_key_fields(command: Seed | Derive | PublishKey) -> dict[str, Any]:
    """The xpriv a command carries, encrypted to its recipient."""
    return {
        "iv": command.initialization_vector.hex(),
        "encrypted_xpriv": command.encrypted_xpriv.hex(),
        "ephemeral_public_key": command.ephemeral_public_key.hex(),
    }


def _command_fields(command: Command) -> dict[str, Any]:
    if isinstance(command, Seed):
        return {
            "topic": None if command.topic is None else command.topic.hex() or '""',
            "protocol_version": command.protocol_version,
            "group_key": command.group_key.hex(),
            **_wrapped_key_fields(command),
        }
    if isinstance(command, Derive):
        return {
            "path": format_path(command.path),
            "group_key": command.group_key.hex(),
            **_wrapped_key_fields(command),
        }
    if isinstance(command, AddMember):
        return {
            "name": command.name,
            "public_key": command.public_key.hex(),
            "permissions": command.permissions,
            "permissions_text": permissions.describe(command.permissions),
        }
    if isinstance(command, PublishKey):
        return {"recipient": command.recipient.hex(), **_wrapped_key_fields(command)}
    if isinstance(command, EditMember):
        return {
            "member": command.member.hex(),
            "permissions": command.permissions,
            "name": command.name,
        }
    if isinstance(command, UnknownCommand):
        return {"tag": command.tag, "body": command.body.hex()}
    if isinstance(command, CloseStream):
        return {}
    raise TypeError(f"no rendering for command {command!r}")


def _violation_json(violation: Violation | None) -> dict[str, Any] | None:
    if violation is None:
        return None
    return {
        "stream": violation.stream,
        "block": violation.block,
        "rule": violation.rule,
        "message": violation.message,
    }


def _stream_json(report: StreamReport) -> dict[str, Any]:
    resolved = report.resolved
    return {
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
                "hash": block_hash.hex(),
                "parent": encoded.block.parent.hex(),
                "issuer": encoded.block.issuer.hex(),
                "version": encoded.block.version,
                "signature": encoded.block.signature.hex(),
                "commands": [
                    {"type": command_name(c), **_command_fields(c)} for c in encoded.block.commands
                ],
            }
            for height, (encoded, block_hash) in enumerate(
                zip(report.blocks, report.block_hashes, strict=True)
            )
        ],
        "violation": _violation_json(report.violation),
    }


def to_json(inspection: Inspection) -> dict[str, Any]:
    """The ``--json`` document; its keys are documented in the README."""
    return {
        "valid": inspection.valid,
        "trustchain_id": inspection.trustchain_id,
        "violation": _violation_json(inspection.violation),
        "streams": [_stream_json(report) for report in inspection.streams],
    }


def render_text(inspection: Inspection) -> str:
    lines = []
    status = "VALID" if inspection.valid else "INVALID"
    lines.append(f"Trustchain {inspection.trustchain_id or '(no root stream given)'}: {status}")
    for report in inspection.streams:
        lines.append("")
        lines.extend(_stream_lines(report))
    if inspection.violation:
        lines.append("")
        lines.append(f"First violation: {_describe(inspection.violation)}")
    return "\n".join(lines)


def _stream_lines(report: StreamReport) -> list[str]:
    resolved = report.resolved
    title = report.path or report.label or "(unreadable stream)"
    if report.label is not None and report.label != report.path:
        title += f"  (input key {report.label!r})"
    state = "closed" if resolved and resolved.closed else "open" if resolved else "invalid"
    lines = [f"Stream {title}  [{state}]"]
    if resolved:
        lines.append(f"  stream id  {resolved.stream_id.hex()}")
        lines.append(f"  group key  {resolved.group_key.hex()}")
        if resolved.topic:
            lines.append(f"  topic      {resolved.topic.hex()}")
    for height, (encoded, block_hash) in enumerate(
        zip(report.blocks, report.block_hashes, strict=True)
    ):
        block = encoded.block
        lines.append(f"  block {height}  hash {block_hash.hex()}")
        lines.append(f"    parent {block.parent.hex()}")
        lines.append(f"    issuer {block.issuer.hex()}")
        for command in block.commands:
            fields = _command_fields(command)
            detail = ", ".join(
                f"{k}={v}" for k, v in fields.items() if k not in _TEXT_HIDDEN_FIELDS
            )
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
    return lines


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
