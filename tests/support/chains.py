"""A trustchain being built block by block, for device tests that sign against its tree."""

from __future__ import annotations

from ledgersync.protocol.block import Block
from ledgersync.protocol.paths import Path
from ledgersync.protocol.tree import StreamTree, resolve_tree


class Chain:
    """A trustchain being built: the streams' bytes, and the tree they resolve to."""

    def __init__(self) -> None:
        self.streams: dict[Path, bytes] = {}

    def add(self, path: Path, block: Block) -> Chain:
        self.streams[path] = self.streams.get(path, b"") + block.encode()
        return self

    @property
    def tree(self) -> StreamTree | None:
        return resolve_tree(list(self.streams.values())) if self.streams else None
