"""Documents: ``GET``, ``POST`` and ``DELETE /atomic/v1/{slug}?id=&path=[&version=]``.

Version rules (docs/api.md, "Cloud Sync versioning"):

* ``GET``: ``{"status": "no-data"}`` if there is no document; ``{"status": "up-to-date"}`` if
  the client's ``version`` equals the stored one (answered from the process's
  :mod:`.versions` cache when it knows that version); otherwise ``out-of-sync`` with the whole
  document (``version``, ``payload``, ``date`` ISO 8601, ``info`` when known). A client that
  sends no version gets the document.
* ``POST`` with ``version`` and ``{"payload": "<opaque string>"}``: accepted
  (``{"status": "updated"}``, after the commit) only if ``version`` is the stored version + 1,
  or, on an empty document, any ``version`` >= 1 (Ledger Live's key rotation re-uploads to the
  fresh path with its old version number). Otherwise ``out-of-sync`` with the stored document,
  and nothing is written. ``info`` records the writer's ``X-Ledger-Client-Version``.
* ``DELETE``: removes the document (204, also when there was none); later reads say
  ``no-data``.
* A closed stream's path (a key rotation retired it) holds nothing for anyone, whatever the
  token's snapshot grants: closing the stream deleted its documents (and told subscribers
  ``0``), so ``GET`` answers ``no-data`` (Ledger's clients holding data then drop it and
  restore the trustchain: the reset they need before reading the new path, whose versions
  start again); ``POST`` answers 401 ``path does not match`` (``TrustchainOutdated``:
  restore), nothing written; ``DELETE`` too, except by a member of the application's open
  stream (Ledger Live's rotation deletes the old document after closing the stream, with a
  token taken before: nothing is left to delete). A removed member's unexpired token thus
  reads, writes and deletes nothing there.

Any slug (``[A-Za-z0-9._~-]{1,64}``) names an independent set of documents. ``id`` may be
omitted (Ledger's newer clients send ``path`` only): see :mod:`.access`. Bounds: query values
of at most :data:`MAX_QUERY_VALUE` characters, versions up to 2^53 - 1 (JavaScript's safe
integers), payloads up to ``cloudsync_max_payload_bytes`` (413). The payload is opaque to the
server but must be standard base64 (what every Ledger client sends: the encrypted blob
encoded); anything else is a 400, on every backend (a lone surrogate or a NUL character
could otherwise reach the database). It is stored and returned as sent.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import (
    PATH_DOES_NOT_MATCH,
    ApiError,
    BadRequest,
    NotFound,
    TooLarge,
    Unauthorized,
    no_such_trustchain,
)
from ..http import PreparedJson
from ..storage import Document, DocumentKey, StreamClosed, TrustchainDeleted
from ..tokens import TokenClaims
from .access import authorize
from .context import CloudSync

SLUG = re.compile(r"[A-Za-z0-9._~-]{1,64}")
MAX_QUERY_VALUE = 256
MAX_VERSION = 2**53 - 1
#: Longest ``X-Ledger-Client-Version`` stored as ``info``.
MAX_INFO = 256
#: Bytes a POST body may add around its payload (``{"payload": ""}`` and whitespace).
BODY_OVERHEAD = 4096
_VERSION = re.compile(r"[0-9]{1,16}")
#: The answers that never change, rendered once.
UP_TO_DATE = PreparedJson({"status": "up-to-date"})
NO_DATA = PreparedJson({"status": "no-data"})
UPDATED = PreparedJson({"status": "updated"})
#: What ``read`` and ``write`` answer: a document (out-of-sync), or one of the above.
Answer = dict[str, Any] | PreparedJson


@dataclass(frozen=True)
class DocumentQuery:
    slug: str
    trustchain_id: str | None
    path: str
    version: int | None


def parse_query(slug: str, items: Iterable[tuple[str, str]]) -> DocumentQuery:
    """Validate the slug and the ``id``, ``path`` and ``version`` query parameters (400)."""
    if not SLUG.fullmatch(slug):
        raise BadRequest("the slug must be 1 to 64 characters among A-Z a-z 0-9 . _ ~ -")
    values: dict[str, str] = {}
    for name, value in items:
        if name not in ("id", "path", "version"):
            continue
        if name in values:
            raise BadRequest(f"query parameter {name} is given more than once")
        if len(value) > MAX_QUERY_VALUE:
            raise BadRequest(f"query parameter {name} is longer than {MAX_QUERY_VALUE} characters")
        values[name] = value
    path = values.get("path")
    if not path:
        raise BadRequest("query parameter path is required (the application path, m/0'/16'/0')")
    trustchain_id = values.get("id") or None
    version = None if "version" not in values else parse_version(values["version"])
    return DocumentQuery(slug, trustchain_id, path, version)


def parse_version(text: str) -> int:
    if not _VERSION.fullmatch(text) or int(text) > MAX_VERSION:
        raise BadRequest(f"version must be an integer from 0 to {MAX_VERSION}")
    return int(text)


def accepts(stored: int | None, version: int) -> bool:
    """The write rule: the next version, or any version >= 1 on an empty document."""
    return version >= 1 if stored is None else version == stored + 1


def parse_payload(body: Any, limit: int) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("payload"), str):
        raise BadRequest('the body must be a JSON object {"payload": "<base64 string>"}')
    payload: str = body["payload"]
    if len(payload) > limit:  # base64 is ASCII: one character, one byte
        raise payload_too_large(limit)
    try:  # strict: the standard alphabet, correct padding, nothing else (no line breaks)
        binascii.a2b_base64(payload, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII string
        raise BadRequest("the payload must be a base64 string (standard alphabet, padded)") from exc
    return payload


def payload_too_large(limit: int) -> ApiError:
    return TooLarge(f"payload too large: Cloud Sync documents are limited to {limit} bytes")


def parse_info(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_INFO:
        raise BadRequest(f"X-Ledger-Client-Version is longer than {MAX_INFO} characters")
    return value


def format_date(milliseconds: int) -> str:
    moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def out_of_sync(document: Document) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "out-of-sync",
        "version": document.version,
        "payload": document.payload,
        "date": format_date(document.updated_at),
    }
    if document.info is not None:  # POST's schema has info optional, not nullable
        body["info"] = document.info
    return body


def stream_closed(key: DocumentKey) -> ApiError:
    return Unauthorized(
        f"{PATH_DOES_NOT_MATCH}: {key.path} of trustchain {key.trustchain_id} is closed"
        " (its key was rotated); restore the trustchain for its current path"
    )


def _key(claims: TokenClaims, query: DocumentQuery) -> DocumentKey:
    trustchain_id = authorize(claims, query.trustchain_id, query.path)
    return DocumentKey(query.slug, trustchain_id, query.path)


async def read(cloud: CloudSync, claims: TokenClaims, query: DocumentQuery) -> Answer:
    key = _key(claims, query)
    versions = cloud.versions
    if query.version is not None and versions.version(key) == query.version:
        # A known committed version: no database query. With other processes, first make
        # sure no commit acknowledged elsewhere is still on its way here (one round trip on
        # the broker's connection, shared by every poll waiting at that moment).
        if not cloud.broker.needs_catching_up:
            return UP_TO_DATE
        if await cloud.broker.caught_up() and versions.version(key) == query.version:
            return UP_TO_DATE
    epoch = versions.epoch
    document = await cloud.store.get(key)
    versions.observed(key, None if document is None else document.version, epoch)
    if document is None:
        return NO_DATA
    if query.version == document.version:
        return UP_TO_DATE
    return out_of_sync(document)


async def write(
    cloud: CloudSync, claims: TokenClaims, query: DocumentQuery, payload: str, info: str | None
) -> Answer:
    key = _key(claims, query)
    if query.version is None:
        raise BadRequest("query parameter version is required (the client's version + 1)")
    if query.version < 1:
        raise BadRequest("version must be at least 1")
    document = Document(query.version, payload, int(cloud.clock() * 1000), info)
    try:
        outcome = await cloud.store.write(key, document)
    except TrustchainDeleted as exc:
        raise NotFound(no_such_trustchain(key.trustchain_id)) from exc
    except StreamClosed as exc:
        raise stream_closed(key) from exc
    if outcome.accepted:  # committed (and announced to subscribers by the storage)
        cloud.metrics.cloudsync_writes.labels("updated").inc()
        return UPDATED
    cloud.metrics.cloudsync_writes.labels("out-of-sync").inc()
    if outcome.current is None:
        raise ApiError(409, "the document changed during the write; read it and try again")
    return out_of_sync(outcome.current)


async def delete(cloud: CloudSync, claims: TokenClaims, query: DocumentQuery) -> None:
    key = _key(claims, query)
    try:
        await cloud.store.delete(key, requester=claims.subject_key)  # announced if deleted
    except StreamClosed as exc:
        raise stream_closed(key) from exc
