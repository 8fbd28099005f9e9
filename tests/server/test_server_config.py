"""Configuration from defaults, LEDGERSYNC_* variables and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgersync.server import ServerConfig
from ledgersync.server.config import ConfigError

from ..support.keyring import PROD_ATTESTATION_KEY, TEST_ATTESTATION_KEY


def test_defaults() -> None:
    config = ServerConfig()
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.database == "sqlite:///data/ledgersync.sqlite"
    assert config.public_host == "localhost"
    assert (config.access_token_ttl, config.refresh_window, config.challenge_ttl) == (
        300,
        3600,
        1800,
    )
    assert config.trusted_attestation_keys == (PROD_ATTESTATION_KEY, TEST_ATTESTATION_KEY)
    assert config.log_client_ip is False and config.metrics is True


def test_every_variable_is_read() -> None:
    env = {
        "LEDGERSYNC_HOST": "0.0.0.0",
        "LEDGERSYNC_PORT": "9000",
        "LEDGERSYNC_DATABASE": "postgresql://u@db/ls",
        "LEDGERSYNC_PUBLIC_URL": "https://sync.example.org/base",
        "LEDGERSYNC_KEY_FILE": "/etc/ledgersync/keys.json",
        "LEDGERSYNC_ACCESS_TOKEN_TTL": "60",
        "LEDGERSYNC_REFRESH_WINDOW": "600",
        "LEDGERSYNC_CHALLENGE_TTL": "90",
        "LEDGERSYNC_ATTESTATION_KEYS": "test, " + "02" + "11" * 32,
        "LEDGERSYNC_RATE_LIMIT_PER_MINUTE": "5",
        "LEDGERSYNC_RATE_LIMIT_BURST": "2",
        "LEDGERSYNC_MAX_BODY_BYTES": "2048",
        "LEDGERSYNC_MAX_BLOCKS_PER_REQUEST": "3",
        "LEDGERSYNC_MAX_STREAM_BLOCKS": "30",
        "LEDGERSYNC_MAX_STREAMS_PER_TRUSTCHAIN": "4",
        "LEDGERSYNC_MAX_TRUSTCHAINS_PER_DEVICE": "2",
        "LEDGERSYNC_WS_MAX_FRAME_BYTES": "512",
        "LEDGERSYNC_QR_IDLE_TIMEOUT": "2.5",
        "LEDGERSYNC_QR_MAX_ROOMS": "7",
        "LEDGERSYNC_LOG_CLIENT_IP": "yes",
        "LEDGERSYNC_LOG_LEVEL": "debug",
        "LEDGERSYNC_FORWARDED_ALLOW_IPS": "10.0.0.1",
        "LEDGERSYNC_METRICS": "off",
    }
    config = ServerConfig.from_env(env)
    assert config.host == "0.0.0.0" and config.port == 9000
    assert config.database == "postgresql://u@db/ls"
    assert config.public_host == "sync.example.org"
    assert config.key_file == Path("/etc/ledgersync/keys.json")
    assert (config.access_token_ttl, config.refresh_window, config.challenge_ttl) == (60, 600, 90)
    assert config.attestation_keys == (TEST_ATTESTATION_KEY, bytes.fromhex("02" + "11" * 32))
    assert (config.rate_limit_per_minute, config.rate_limit_burst) == (5, 2)
    assert (config.max_body_bytes, config.max_blocks_per_request) == (2048, 3)
    assert (config.max_stream_blocks, config.max_streams_per_trustchain) == (30, 4)
    assert config.max_trustchains_per_device == 2
    assert (config.ws_max_frame_bytes, config.qr_idle_timeout, config.qr_max_rooms) == (512, 2.5, 7)
    assert config.log_client_ip is True and config.log_level == "debug"
    assert config.forwarded_allow_ips == "10.0.0.1" and config.metrics is False


def test_overrides_win_and_none_is_ignored() -> None:
    env = {"LEDGERSYNC_PORT": "9000", "LEDGERSYNC_HOST": "0.0.0.0"}
    config = ServerConfig.from_env(env, port=7000, host=None)
    assert (config.host, config.port) == ("0.0.0.0", 7000)


def test_prod_only() -> None:
    config = ServerConfig.from_env({"LEDGERSYNC_PROD_ATTESTATION_ONLY": "1"})
    assert config.trusted_attestation_keys == (PROD_ATTESTATION_KEY,)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEDGERSYNC_PORT": "eighty"}, "LEDGERSYNC_PORT"),
        ({"LEDGERSYNC_METRICS": "maybe"}, "LEDGERSYNC_METRICS"),
        ({"LEDGERSYNC_ATTESTATION_KEYS": "staging"}, "LEDGERSYNC_ATTESTATION_KEYS"),
        ({"LEDGERSYNC_ATTESTATION_KEYS": "04" + "11" * 32}, "LEDGERSYNC_ATTESTATION_KEYS"),
        ({"LEDGERSYNC_ATTESTATION_KEYS": ","}, "attestation_keys"),
        ({"LEDGERSYNC_PUBLIC_URL": "not a url"}, "public_url"),
        ({"LEDGERSYNC_ACCESS_TOKEN_TTL": "0"}, "access_token_ttl"),
        ({"LEDGERSYNC_QR_IDLE_TIMEOUT": "-1"}, "qr_idle_timeout"),
        ({"LEDGERSYNC_PORT": "70000"}, "port"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        ServerConfig.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEDGERSYNC_PORT": "eighty"}, "LEDGERSYNC_PORT: 'eighty' is not a whole number"),
        (
            {"LEDGERSYNC_MAX_CONNECTIONS": "1.5"},
            "LEDGERSYNC_MAX_CONNECTIONS: '1.5' is not a whole number",
        ),
        (
            {"LEDGERSYNC_HEADER_TIMEOUT": "soon"},
            "LEDGERSYNC_HEADER_TIMEOUT: 'soon' is not a number",
        ),
        (
            {"LEDGERSYNC_BODY_TIMEOUT": "nan"},
            "LEDGERSYNC_BODY_TIMEOUT: 'nan' is not a finite number",
        ),
    ],
)
def test_bad_numbers_are_refused_in_the_settings_terms(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ServerConfig.from_env(env)
    assert str(raised.value) == message


def test_numbers_may_have_surrounding_spaces() -> None:
    config = ServerConfig.from_env(
        {"LEDGERSYNC_PORT": " 9000 ", "LEDGERSYNC_HEADER_TIMEOUT": "2.5"}
    )
    assert (config.port, config.header_timeout) == (9000, 2.5)
