"""An auditor's view of a trustchain: verify it and describe every stream, block and member.

Pure analysis: text in (hex, or the JSON object ``GET /v1/trustchain/{id}`` returns), a typed,
immutable report out. Rendering it (plain text, the ``--json`` document) belongs to the command
line (``ledgersync.cli.inspection_text``); reading files is the CLI's too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .block import EncodedBlock, decode_stream_blocks
from .commands import Derive, Seed
from .errors import DecodeError, ProtocolError, ResolutionError
from .paths import Path, format_path
from .resolver import ResolvedStream, resolve_stream
from .tree import check_derived_link, duplicate_root_error, trustchain_id_from_hash

#: The largest input accepted (hex text); a real trustchain is a few kilobytes.
MAX_INPUT_LENGTH = 16 * 1024 * 1024


class UnreadableInput(ProtocolError):
    """The input is neither hex nor a JSON object/array/string of hex streams.

    ``rule`` names what is wrong, stable for tests and machine-readable reports: ``"too-large"``,
    ``"empty"``, ``"json"`` (not valid JSON), ``"shape"`` (JSON of another shape) or ``"hex"``;
    the message says it for humans.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.detail = message


@dataclass(frozen=True, slots=True)
class Violation:
    """The first rule a stream (or the tree) breaks, and where."""

    stream: str | None
    block: int | None
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class StreamReport:
    """One input stream: its blocks, and either what it resolves to or its violation."""

    label: str | None  # the key the stream came under in a JSON input, if any
    blocks: tuple[EncodedBlock, ...]
    #: Each block's hash, in order (computed once, during resolution when the stream resolved).
    block_hashes: tuple[bytes, ...]
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


@dataclass(frozen=True, slots=True)
class Inspection:
    """The whole report: every stream in path order, the trustchain id, the first violation."""

    streams: tuple[StreamReport, ...]
    trustchain_id: str | None
    violation: Violation | None = None

    @property
    def valid(self) -> bool:
        return self.violation is None


def parse_input(text: str) -> list[tuple[str | None, bytes]]:
    """Read streams from hex text or from JSON (object of hex values, array, or string)."""
    if len(text) > MAX_INPUT_LENGTH:
        raise UnreadableInput("too-large", f"input is larger than {MAX_INPUT_LENGTH} characters")
    stripped = text.strip()
    if not stripped:
        raise UnreadableInput("empty", "input is empty")
    if stripped[0] in '{["':
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise UnreadableInput("json", f"input is not valid JSON: {exc}") from exc
        if isinstance(value, str):
            return [(None, _hex(value, "the JSON string"))]
        if isinstance(value, list):
            return [(None, _hex(item, f"item {i}")) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return [(str(key), _hex(item, f"key {key!r}")) for key, item in value.items()]
        raise UnreadableInput("shape", "JSON input must be an object, an array or a string of hex")
    return [(None, _hex(stripped, "the input"))]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise UnreadableInput("hex", f"{what} is not a hex string")
    cleaned = "".join(value.split())
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise UnreadableInput("hex", f"{what} is not valid hex") from exc


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
    reports: list[StreamReport] = []
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
        hashes = resolved.block_hashes if resolved else tuple(block.hash() for block in blocks)
        reports.append(StreamReport(label, blocks, hashes, resolved, violation))
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
    """Parse and inspect; raises :class:`UnreadableInput` for text that holds no streams."""
    return inspect_streams(parse_input(text))
