"""The LKRP test vectors of ``tests/data/lkrp-vectors.json``, by id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"


def load_vectors() -> dict[str, dict[str, Any]]:
    document = json.loads((DATA / "lkrp-vectors.json").read_text())
    return {vector["id"]: vector for vector in document["vectors"]}


VECTORS = load_vectors()


def vector(identifier: str) -> dict[str, Any]:
    return VECTORS[identifier]
