import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


def load_vectors() -> dict[str, dict[str, Any]]:
    document = json.loads((DATA / "lkrp-vectors.json").read_text())
    return {vector["id"]: vector for vector in document["vectors"]}


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict[str, Any]]:
    return load_vectors()
