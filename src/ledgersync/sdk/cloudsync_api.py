"""HTTP client of the Cloud Sync API (docs/api.md, "Cloud Sync API").

One document per (slug, trustchain id, application path), with a version counter. Answers are
checked against the documented discriminated unions on ``status``; anything else raises
:class:`InvalidResponse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from .api import JWT
from .errors import InvalidResponse
from .http import HTTPOptions, JSONClient


class Status(StrEnum):
    NO_DATA = "no-data"
    UP_TO_DATE = "up-to-date"
    OUT_OF_SYNC = "out-of-sync"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class Document:
    """The server's copy: its version, the encrypted payload, the last write time and label."""

    version: int
    payload: str
    date: str
    info: str | None = None


@dataclass(frozen=True, slots=True)
class SyncAnswer:
    status: Status
    #: Set when ``status`` is ``out-of-sync``.
    document: Document | None = None


_GET_STATUSES = frozenset({Status.NO_DATA, Status.UP_TO_DATE, Status.OUT_OF_SYNC})
_POST_STATUSES = frozenset({Status.UPDATED, Status.OUT_OF_SYNC})


def parse_answer(body: Any, allowed: frozenset[Status], what: str) -> SyncAnswer:
    if not isinstance(body, dict):
        raise InvalidResponse(f"{what}: the answer is not an object")
    try:
        status = Status(str(body.get("status")))
    except ValueError as exc:
        raise InvalidResponse(f"{what}: unknown status {body.get('status')!r}") from exc
    if status not in allowed:
        raise InvalidResponse(f"{what}: unexpected status {status.value}")
    if status is not Status.OUT_OF_SYNC:
        return SyncAnswer(status)
    version, payload, date = body.get("version"), body.get("payload"), body.get("date")
    info = body.get("info")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidResponse(f"{what}: out-of-sync without an integer version")
    if not isinstance(payload, str) or not isinstance(date, str):
        raise InvalidResponse(f"{what}: out-of-sync without payload and date strings")
    if info is not None and not isinstance(info, str):
        raise InvalidResponse(f"{what}: info must be a string or null")
    return SyncAnswer(status, Document(version, payload, date, info))


class CloudSyncAPI:
    """The Cloud Sync API at ``base_url`` for one ``slug`` (``live`` for Ledger Live)."""

    def __init__(self, base_url: str, slug: str = "live", options: HTTPOptions | None = None):
        self.slug = slug
        self._path = f"/atomic/v1/{quote(slug, safe='')}"
        self._http = JSONClient(base_url, options, what="Cloud Sync API base URL")

    @property
    def base_url(self) -> str:
        return self._http.base_url

    @property
    def notifications_url(self) -> str:
        """The websocket of version notifications (``http`` → ``ws``)."""
        return self.base_url.replace("http", "ws", 1) + self._path + "/notifications"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(self, jwt: JWT, root_id: str, path: str, version: int | None) -> SyncAnswer:
        params = {"path": path, "id": root_id}
        if version is not None:
            params["version"] = str(version)
        body = await self._http.request("GET", self._path, token=jwt.access_token, params=params)
        return parse_answer(body, _GET_STATUSES, f"GET {self._path}")

    async def upload(
        self, jwt: JWT, root_id: str, path: str, version: int, payload: str
    ) -> SyncAnswer:
        body = await self._http.request(
            "POST",
            self._path,
            token=jwt.access_token,
            params={"version": str(version), "path": path, "id": root_id},
            body={"payload": payload},
            has_body=True,
        )
        return parse_answer(body, _POST_STATUSES, f"POST {self._path}")

    async def delete(self, jwt: JWT, root_id: str, path: str) -> None:
        await self._http.request(
            "DELETE", self._path, token=jwt.access_token, params={"path": path, "id": root_id}
        )

    async def info(self) -> dict[str, Any]:
        body = await self._http.request("GET", "/_info")
        if not isinstance(body, dict):
            raise InvalidResponse("GET /_info: the answer is not an object")
        return body
