"""Who may do what, as the ``permissions`` object of tokens (docs/api.md, "Tokens and permissions").

* A **device** (a login attested by the Ledger Sync app) owns ``"m/"`` of every trustchain
  whose root Seed it issued: ``{id: {"m/": ["owner"]}}``. It may read and write every stream
  of those trustchains.
* A **member** (a software key logging in for one trustchain) gets, for each application, the
  newest *open* stream it belongs to: ``{id: {"m/0'/16'/1'": ["owner"]}}``. It has none (and
  cannot log in) once it belongs to no open application stream: removed by a rotation, or
  the trustchain deleted.

These are pure functions of stored facts; the snapshot goes into the token when it is issued
or refreshed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..storage import StreamInfo
from ..tokens import OWNER, Permissions

ROOT_PATH_TEXT = "m/"


def device_permissions(trustchain_ids: Iterable[str]) -> Permissions:
    return {trustchain_id: {ROOT_PATH_TEXT: [OWNER]} for trustchain_id in trustchain_ids}


def member_paths(streams: Iterable[StreamInfo]) -> list[str]:
    """Per application, the newest open stream among ``streams`` (those the member is in)."""
    newest: dict[int, StreamInfo] = {}
    for stream in streams:
        if stream.application is None or stream.closed:
            continue
        application_id, index = stream.application
        current = newest.get(application_id)
        if current is None or (current.application is not None and current.application[1] < index):
            newest[application_id] = stream
    return [newest[application_id].path for application_id in sorted(newest)]


def member_permissions(trustchain_id: str, streams: Iterable[StreamInfo]) -> Permissions:
    paths = member_paths(streams)
    if not paths:
        return {}
    return {trustchain_id: {path: [OWNER] for path in paths}}
