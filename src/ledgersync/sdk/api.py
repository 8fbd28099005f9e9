"""HTTP client of the Key Ring (trustchain) API (docs/api.md, "Key Ring API").

One method per endpoint; bodies are checked against the documented shapes and a body that
does not match raises :class:`InvalidResponse`. The client never decodes tokens: like
Ledger's, it only uses ``access_token`` and the ``permissions`` object of the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import InvalidResponse
from .http import HTTPOptions, JSONClient

#: ``{rootId: {path: [permission, ...]}}``
Permissions = Mapping[str, Mapping[str, list[str]]]


@dataclass(frozen=True)
class JWT:
    """An access token and the permissions the server granted with it."""

    access_token: str = field(repr=False)
    permissions: Permissions

    @classmethod
    def from_response(cls, body: Any, what: str) -> JWT:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise InvalidResponse(f"{what}: the answer has no access_token")
        return cls(body["access_token"], _permissions(body.get("permissions", {}), what))


@dataclass(frozen=True)
class ChallengeResponse:
    """``GET /v1/challenge``: the challenge JSON (posted back verbatim) and its TLV bytes."""

    json: dict[str, Any]
    tlv: bytes


def _permissions(value: Any, what: str) -> Permissions:
    if not isinstance(value, dict):
        raise InvalidResponse(f"{what}: permissions must be an object")
    for root_id, paths in value.items():
        if not isinstance(paths, dict) or not all(
            isinstance(perms, list) for perms in paths.values()
        ):
            raise InvalidResponse(f"{what}: permissions of {root_id} are malformed")
    return value


class TrustchainAPI:
    """The Key Ring API at ``base_url`` (for example ``http://localhost:8000``)."""

    def __init__(self, base_url: str, options: HTTPOptions | None = None) -> None:
        self._http = JSONClient(base_url, options, what="Key Ring API base URL")

    @property
    def base_url(self) -> str:
        return self._http.base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_challenge(self) -> ChallengeResponse:
        body = await self._http.request("GET", "/v1/challenge")
        if not isinstance(body, dict) or not isinstance(body.get("json"), dict):
            raise InvalidResponse("GET /v1/challenge: the answer has no challenge json")
        tlv = body.get("tlv")
        try:
            return ChallengeResponse(body["json"], bytes.fromhex(str(tlv)))
        except (TypeError, ValueError) as exc:
            raise InvalidResponse("GET /v1/challenge: tlv is not hex") from exc

    async def authenticate(self, challenge: dict[str, Any], signature: dict[str, Any]) -> JWT:
        body = await self._http.request(
            "POST",
            "/v1/authenticate",
            body={"challenge": challenge, "signature": signature},
            has_body=True,
        )
        return JWT.from_response(body, "POST /v1/authenticate")

    async def refresh(self, jwt: JWT) -> JWT:
        body = await self._http.request("GET", "/v1/refresh", token=jwt.access_token)
        return JWT.from_response(body, "GET /v1/refresh")

    async def get_trustchains(self, jwt: JWT) -> Permissions:
        body = await self._http.request("GET", "/v1/trustchains", token=jwt.access_token)
        return _permissions(body, "GET /v1/trustchains")

    async def get_trustchain(self, jwt: JWT, root_id: str) -> dict[str, str]:
        """The streams of a trustchain, hex-encoded; keys are labels, not paths."""
        url = f"/v1/trustchain/{quote(root_id, safe='')}"
        body = await self._http.request("GET", url, token=jwt.access_token)
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise InvalidResponse(f"GET {url}: the answer is not an object of hex streams")
        return body

    async def post_seed(self, jwt: JWT, root_stream: bytes) -> None:
        await self._http.request(
            "POST", "/v1/seed", token=jwt.access_token, body=root_stream.hex(), has_body=True
        )

    async def post_derivation(self, jwt: JWT, root_id: str, stream: bytes) -> None:
        await self._http.request(
            "POST",
            f"/v1/trustchain/{quote(root_id, safe='')}/derivation",
            token=jwt.access_token,
            body=stream.hex(),
            has_body=True,
        )

    async def put_commands(self, jwt: JWT, root_id: str, path: str, blocks: list[bytes]) -> None:
        """Append chained blocks to the stream at ``path``, all in one request."""
        await self._http.request(
            "PUT",
            f"/v1/trustchain/{quote(root_id, safe='')}/commands",
            token=jwt.access_token,
            body={"path": path, "blocks": [block.hex() for block in blocks]},
            has_body=True,
        )

    async def delete_trustchain(self, jwt: JWT, root_id: str) -> None:
        await self._http.request(
            "DELETE", f"/v1/trustchain/{quote(root_id, safe='')}", token=jwt.access_token
        )

    async def info(self) -> dict[str, Any]:
        body = await self._http.request("GET", "/_info")
        if not isinstance(body, dict):
            raise InvalidResponse("GET /_info: the answer is not an object")
        return body
