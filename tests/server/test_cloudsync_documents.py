"""Cloud Sync documents (``/atomic/v1/{slug}``) over real HTTP, on SQLite and PostgreSQL:
the version rules, authorization from the token snapshot, bounds and bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx2
import pytest

from ..support.cloudsync import Member, new_member, race_writers
from ..support.keyring import app_path, bearer, error_message, login_member
from ..support.payloads import b64
from ..support.servers import RunningServer


@pytest.fixture
def member(client: httpx2.Client) -> Member:
    return new_member(client)


def test_the_version_rules(server: RunningServer, member: Member) -> None:
    assert member.get().json() == {"status": "no-data"}
    assert member.get(version=0).json() == {"status": "no-data"}

    response = member.post(1, "AAEC", info="lld/2.90.0")
    assert response.status_code == 200
    assert response.json() == {"status": "updated"}

    document = member.get().json()  # no version: the client knows nothing yet
    assert document == {
        "status": "out-of-sync",
        "version": 1,
        "payload": "AAEC",
        "date": document["date"],
        "info": "lld/2.90.0",
    }
    written = datetime.fromisoformat(document["date"])
    assert document["date"].endswith("Z")
    assert abs(written.timestamp() - server.clock()) < 1
    assert member.get(version=1).json() == {"status": "up-to-date"}
    assert member.get(version=0).json()["status"] == "out-of-sync"
    assert member.get(version=7).json()["version"] == 1  # ahead of the server: out of sync too

    for stale in (1, 3, 1000):  # not the stored version + 1: the stored document comes back
        refused = member.post(stale, "nope")
        assert refused.status_code == 200
        assert refused.json() == {**document, "status": "out-of-sync"}
    assert member.post(2, "AAED").json() == {"status": "updated"}
    second = member.get(version=1).json()
    assert (second["version"], second["payload"]) == (2, "AAED")
    assert "info" not in second  # this writer sent no X-Ledger-Client-Version


def test_the_first_write_of_an_empty_document_may_carry_any_version(member: Member) -> None:
    # Ledger Live's key rotation re-uploads to the fresh path with its old version number.
    assert member.post(42, b64("rotated")).json() == {"status": "updated"}
    assert member.get().json()["version"] == 42
    assert member.post(42, b64("again")).json()["status"] == "out-of-sync"
    assert member.post(43, "next").json() == {"status": "updated"}
    big = 2**53 - 2  # JavaScript's largest safe integer is the last version
    assert member.post(big, b64("big"), slug="big").json() == {"status": "updated"}
    assert member.post(big + 1, b64("bigger"), slug="big").json() == {"status": "updated"}
    assert member.get(slug="big", version=big + 1).json() == {"status": "up-to-date"}
    assert member.post(big + 2, b64("too big"), slug="big").status_code == 400
    response = member.post(0, "zero")
    assert response.status_code == 400
    assert "version must be at least 1" in error_message(response)


def test_slugs_are_independent(member: Member) -> None:
    assert member.post(1, b64("live-1")).json() == {"status": "updated"}
    assert member.get(slug="other").json() == {"status": "no-data"}
    assert member.post(5, b64("other-5"), slug="other").json() == {"status": "updated"}
    assert member.get(slug="live").json()["payload"] == b64("live-1")
    assert member.get(slug="other").json()["payload"] == b64("other-5")
    assert member.delete(slug="other").status_code == 204
    assert member.get(slug="other").json() == {"status": "no-data"}
    assert member.get(slug="live").json()["version"] == 1


def test_delete_then_write_again(member: Member) -> None:
    assert member.delete().status_code == 204  # nothing to delete: still 204
    assert member.post(1, b64("x")).json() == {"status": "updated"}
    response = member.delete()
    assert response.status_code == 204
    assert response.content == b""
    assert member.get(version=1).json() == {"status": "no-data"}
    assert member.post(9, b64("after delete")).json() == {"status": "updated"}


def test_the_id_may_come_from_the_token(member: Member) -> None:
    # Ledger's newer clients send only path; the token names one trustchain with that path.
    assert member.post(1, b64("x")).json() == {"status": "updated"}
    response = member.client.get(
        "/atomic/v1/live", params={"path": member.path}, headers=bearer(member.token)
    )
    assert response.json()["payload"] == b64("x")
    response = member.client.get(
        "/atomic/v1/live", params={"path": app_path(1)}, headers=bearer(member.token)
    )
    assert response.status_code == 401
    assert "path does not match" in error_message(response)


def test_documents_of_different_trustchains_are_separate(client: httpx2.Client) -> None:
    first, second = new_member(client), new_member(client)
    assert first.post(1, b64("first")).json() == {"status": "updated"}
    assert second.get().json() == {"status": "no-data"}
    # second's token does not open first's trustchain
    response = client.get(
        "/atomic/v1/live",
        params={"id": first.trustchain_id, "path": first.path},
        headers=bearer(second.token),
    )
    assert response.status_code == 401
    assert "JWT contains no permission" in error_message(response)


# --- authorization ------------------------------------------------------------------------------


def test_authorization_failures_use_ledgers_messages(server: RunningServer, member: Member) -> None:
    client = member.client
    assert client.get("/atomic/v1/live", params=member.query()).status_code == 401
    response = client.get("/atomic/v1/live", params=member.query(), headers=bearer("not.a.jwt"))
    assert response.status_code == 401
    assert "Invalid JWT" in error_message(response)

    wrong_path = client.get(
        "/atomic/v1/live",
        params={"id": member.trustchain_id, "path": app_path(1)},
        headers=bearer(member.token),
    )
    assert wrong_path.status_code == 401
    assert "path does not match" in error_message(wrong_path)

    # a device token owns m/ only: no application path
    device_wrong = client.get(
        "/atomic/v1/live", params=member.query(), headers=bearer(member.device.token)
    )
    assert device_wrong.status_code == 401
    assert "path does not match" in error_message(device_wrong)

    server.clock.advance(300)
    expired = member.get()
    assert expired.status_code == 401
    assert "JWT is expired, please call /refresh" in error_message(expired)
    server.clock.advance(3300)
    window_over = member.post(1, b64("x"))
    assert window_over.status_code == 401
    message = error_message(window_over)
    assert "JWT is expired" in message and "/refresh" not in message


def test_the_token_snapshot_authorizes_not_the_live_trustchain(member: Member) -> None:
    # Key rotation: the device closes the old stream and derives m/0'/16'/1'; the lifecycle
    # hook then deletes the old document with a token taken before the rotation.
    assert member.post(12, b64("old data")).json() == {"status": "updated"}
    old_token = member.token
    trustchain, device = member.trustchain, member.device
    close = trustchain.close(app_path(0), trustchain.device)
    assert device.put_blocks(trustchain.id, app_path(0), [close]).status_code == 204
    trustchain.derive(1, member.key)
    assert device.post_derivation(trustchain, app_path(1)).status_code == 204

    assert member.delete().status_code == 204  # the old token, the old path
    assert member.get().json() == {"status": "no-data"}

    rotated = login_member(member.client, member.key, trustchain.id)
    assert rotated.token != old_token
    params = {"id": trustchain.id, "path": app_path(1), "version": 12}
    response = member.client.post(
        "/atomic/v1/live",
        params=params,
        json={"payload": b64("new")},
        headers=bearer(rotated.token),
    )
    assert response.json() == {"status": "updated"}  # re-upload with the old version number
    stale = member.client.get(
        "/atomic/v1/live", params=member.query(), headers=bearer(rotated.token)
    )
    assert stale.status_code == 401
    assert "path does not match" in error_message(stale)


def test_deleting_the_trustchain_deletes_its_documents(member: Member) -> None:
    assert member.post(1, b64("x")).json() == {"status": "updated"}
    assert member.post(3, b64("y"), slug="other").json() == {"status": "updated"}
    response = member.session.delete(f"/v1/trustchain/{member.trustchain_id}")
    assert response.status_code == 204
    # the member's token is still unexpired; its documents are gone and stay gone
    assert member.get().json() == {"status": "no-data"}
    assert member.get(slug="other").json() == {"status": "no-data"}
    recreate = member.post(1, b64("resurrected"))
    assert recreate.status_code == 404
    assert "No such trustchain" in error_message(recreate)


# --- bounds and bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"id": "x"}, "path is required"),
        ({"path": "m/0'/16'/0'", "version": "abc"}, "version must be an integer"),
        ({"path": "m/0'/16'/0'", "version": "-1"}, "version must be an integer"),
        ({"path": "m/0'/16'/0'", "version": "1e3"}, "version must be an integer"),
        ({"path": "m/0'/16'/0'", "version": str(2**53)}, "version must be an integer"),
        ({"path": "m/" + "0'/" * 200}, "longer than 256 characters"),
    ],
)
def test_malformed_queries_answer_400(member: Member, query: dict[str, str], expected: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = member.client.request(
            method,
            "/atomic/v1/live",
            params=query,
            json={"payload": b64("x")} if method == "POST" else None,
            headers=bearer(member.token),
        )
        assert response.status_code == 400, (method, response.text)
        assert expected in error_message(response)


def test_more_bad_requests_answer_4xx_never_500(member: Member) -> None:
    client, headers = member.client, bearer(member.token)
    twice = client.get(
        f"/atomic/v1/live?path={member.path}&path=m/&id={member.trustchain_id}", headers=headers
    )
    assert twice.status_code == 400
    assert "more than once" in error_message(twice)
    assert (
        client.get("/atomic/v1/" + "s" * 65, params=member.query(), headers=headers).status_code
        == 400
    )
    assert (
        client.get("/atomic/v1/bad%20slug", params=member.query(), headers=headers).status_code
        == 400
    )
    no_version = client.post(
        "/atomic/v1/live", params=member.query(), json={"payload": b64("x")}, headers=headers
    )
    assert no_version.status_code == 400
    assert "version is required" in error_message(no_version)
    url = "/atomic/v1/live"
    params = member.query(version=1)
    for body in (b"not json", b"[1, 2]", b'{"payload": 3}', b'{"data": "x"}', b"\xff\xfe"):
        response = client.post(
            url,
            params=params,
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        assert response.status_code == 400, body
    assert member.get().json() == {"status": "no-data"}  # nothing was written
    long_info = member.post(1, b64("x"), info="v" * 300)
    assert long_info.status_code == 400


def test_payload_limit_answers_413(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(cloudsync_max_payload_bytes=1000)
    member = new_member(server.client())
    assert member.post(1, "a" * 1000).json() == {"status": "updated"}
    too_large = member.post(2, "a" * 1001)
    assert too_large.status_code == 413
    assert "payload too large" in error_message(too_large)
    assert "1000 bytes" in error_message(too_large)
    huge = member.post(2, "a" * 100_000)  # beyond the body limit too
    assert huge.status_code == 413
    assert "payload too large" in error_message(huge)
    assert member.get(version=1).json() == {"status": "up-to-date"}


# --- concurrency --------------------------------------------------------------------------------


async def test_racing_writers_get_unique_consecutive_versions(
    server: RunningServer, member: Member
) -> None:
    """N clients race on one document, each reading then writing version + 1 repeatedly:
    the accepted versions are unique and consecutive, and the last acknowledged write is
    what the server keeps (no acknowledged write is lost)."""
    attempts = 15
    accepted = await race_writers(member, [server.url] * 12, attempts)
    versions = sorted(version for version, _ in accepted)
    assert versions == list(range(1, len(versions) + 1))  # unique and consecutive
    assert len(versions) >= attempts  # the race let writes through
    final = member.get().json()
    assert final["version"] == versions[-1]
    assert final["payload"] == dict(accepted)[versions[-1]]
