"""Fuzzing against the API's own description: schemathesis reads ``/openapi.json`` from the
live server and, for every HTTP operation, generates requests that follow the document
(positive) and requests that break it (negative), on both backends.

Every answer must: not be a 5xx; have a documented status, media type, headers and body
schema; refuse (4xx) whatever breaks the document; and an operation that needs a token must
refuse the request without one. Positive requests carry valid tokens and, where the document
cannot say what exists, the world's real trustchain id and Cloud Sync path, so that they
reach the handlers' logic rather than stopping at "no such trustchain".

Budget: ``LEDGERSYNC_FUZZ_EXAMPLES`` examples per operation and mode (default
:data:`CI_EXAMPLES`, deterministic: the same cases every run); ``make fuzz`` runs a longer,
randomized campaign (``LEDGERSYNC_FUZZ_EXAMPLES=1000 LEDGERSYNC_FUZZ_RANDOM=1``). Results are
in ``docs/security.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledgersync.server import ServerConfig
from ledgersync.server.openapi import document
from ledgersync.server.routes import routes

from ..support.world import World

CI_EXAMPLES = 25
EXAMPLES = int(os.environ.get("LEDGERSYNC_FUZZ_EXAMPLES", CI_EXAMPLES))
RANDOM = os.environ.get("LEDGERSYNC_FUZZ_RANDOM", "") not in ("", "0")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def fuzz_cases() -> list[tuple[str, GenerationMode]]:
    """Every HTTP operation, positive and negative; negative only where there is input to
    break, and not the operation serving the document (schemathesis leaves it out)."""
    doc = document(routes(ServerConfig()), ServerConfig())
    cases = []
    for path, item in doc["paths"].items():
        for verb, operation in item.items():
            label = f"{verb.upper()} {path}"
            if operation.get("x-websocket") or label == "GET /openapi.json":
                continue
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    return schemathesis.openapi.from_url(f"{world.server.url}/openapi.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def operation_of(schema: Any, label: str) -> Any:
    method, path = label.split(" ", 1)
    return schema[path][method]


def aim(case: Any, world: World, label: str) -> dict[str, str]:
    """The headers of a positive case, and its ids pointed at what exists."""
    if label.startswith(("GET /atomic", "POST /atomic", "DELETE /atomic")):
        case.query = {**(case.query or {}), "id": world.trustchain_id, "path": world.path}
        return {"Authorization": f"Bearer {world.member.token}"}
    if "{trustchain_id}" in label and not label.startswith("DELETE"):
        case.path_parameters = {
            **(case.path_parameters or {}),
            "trustchain_id": world.trustchain_id,
        }
    return {"Authorization": f"Bearer {world.device.token}"}


@pytest.mark.parametrize(("label", "mode"), fuzz_cases(), ids=str)
def test_the_api_follows_its_document(
    api_schema: Any, world: World, session: requests.Session, label: str, mode: GenerationMode
) -> None:
    operation = operation_of(api_schema, label)
    statuses: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            headers = aim(case, world, label)
        else:
            token = world.member.token if "/atomic/" in label else world.device.token
            headers = {"Authorization": f"Bearer {token}"}
        response = case.call(
            base_url=world.server.url, session=session, headers=headers, timeout=60
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()
    assert sum(statuses.values()) >= 1
    print(f"{label} {mode.value}: {dict(sorted(statuses.items()))}")
