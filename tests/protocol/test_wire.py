"""The words of the wire are defined once (``ledgersync.protocol.wire``): the SDK uses them,
and the server's own copies (to be switched over) must say the same."""

from __future__ import annotations

import pytest

from ledgersync.protocol import challenge, wire
from ledgersync.sdk import auth, notifications
from ledgersync.server import errors as server_errors
from ledgersync.server import tokens
from ledgersync.server.cloudsync import notifications as server_notifications


def test_the_sdk_uses_the_protocol_words() -> None:
    assert auth.EXPIRED is wire.JWT_EXPIRED and auth.REFRESHABLE is wire.REFRESH_HINT
    assert auth.NO_PERMISSION is wire.JWT_NO_PERMISSION
    assert auth.PATH_MISMATCH is wire.PATH_DOES_NOT_MATCH
    assert auth.NOT_A_MEMBER is wire.NOT_A_MEMBER_TEXTS
    assert (notifications.PING, notifications.PONG) == (wire.NOTIFY_PING, wire.NOTIFY_PONG)
    assert notifications.JWT_EXPIRED is wire.NOTIFY_JWT_EXPIRED
    assert notifications.CLOSE_POLICY == wire.CLOSE_POLICY


def test_the_server_says_the_same_words() -> None:
    assert server_errors.JWT_EXPIRED_REFRESH == wire.JWT_EXPIRED_REFRESH
    assert server_errors.JWT_EXPIRED_REAUTHENTICATE == wire.JWT_EXPIRED_REAUTHENTICATE
    assert server_errors.JWT_NO_PERMISSION == wire.JWT_NO_PERMISSION
    assert server_errors.PATH_DOES_NOT_MATCH == wire.PATH_DOES_NOT_MATCH
    assert server_errors.NOT_A_MEMBER == wire.NOT_A_MEMBER
    assert server_errors.NO_SUCH_TRUSTCHAIN == wire.NO_SUCH_TRUSTCHAIN
    assert (server_notifications.PING, server_notifications.PONG) == ("ping", "pong")
    assert server_notifications.JWT_EXPIRED == wire.NOTIFY_JWT_EXPIRED
    assert (
        server_notifications.CLOSE_NORMAL,
        server_notifications.CLOSE_UNSUPPORTED,
        server_notifications.CLOSE_POLICY,
        server_notifications.CLOSE_TOO_BIG,
    ) == (wire.CLOSE_NORMAL, wire.CLOSE_UNSUPPORTED, wire.CLOSE_POLICY, wire.CLOSE_TOO_BIG)


def test_the_client_reacts_to_what_the_server_says() -> None:
    for text, failure in (
        (wire.JWT_EXPIRED_REFRESH, auth.Failure.EXPIRED_REFRESHABLE),
        (wire.JWT_EXPIRED_REAUTHENTICATE, auth.Failure.EXPIRED),
        (f"{wire.JWT_NO_PERMISSION} for trustchain 00ab", auth.Failure.NOT_PERMITTED),
        (f"{wire.PATH_DOES_NOT_MATCH} (outdated)", auth.Failure.OUTDATED),
    ):
        assert auth.classify(auth.LedgerAPI4xx(f"Unauthorized: {text}", status=401)) is failure


@pytest.mark.parametrize("moment", [0, 1_700_000_000, 1_700_000_000.9, 4_102_444_800])
def test_one_time_format(moment: float) -> None:
    text = wire.format_time(moment)
    assert text.endswith("Z") and len(text) == 20
    assert text == tokens.format_time(moment) == challenge.format_expiry(int(moment))
    assert wire.parse_time(text) == int(moment) == tokens.parse_time(text)
    assert wire.parse_time(text[:-1]) == int(moment)  # no zone: UTC
