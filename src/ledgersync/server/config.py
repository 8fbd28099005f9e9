"""Server configuration: one frozen value, built from defaults, environment variables and flags.

Every field can be set by an environment variable named ``LEDGERSYNC_<FIELD>`` (upper case);
command-line flags of ``ledgersync serve`` override the environment. The table of variables is
in ``docs/server.md``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .storage.database import DatabaseUrlError, check_database_url

ENV_PREFIX = "LEDGERSYNC_"

#: The Ledger Sync app's attestation keys (app-ledger-sync ``src/crypto_data.h``): PROD signs
#: on genuine devices; TEST is public and used by builds without the production key (Speculos).
LEDGER_PROD_ATTESTATION_KEY = bytes.fromhex(
    "03cce710b4ace62a3597e5b9853463b6bbc45a7d198bf7b698dd885c4fedf98f9d"
)
LEDGER_TEST_ATTESTATION_KEY = bytes.fromhex(
    "029a8bef4947807f60aa2130f194f83b45e3989746a40d7b5a027ba13a38c2115f"
)
_NAMED_ATTESTATION_KEYS = {"prod": LEDGER_PROD_ATTESTATION_KEY, "test": LEDGER_TEST_ATTESTATION_KEY}


LOG_FORMATS = ("auto", "json", "text")

#: A metrics token goes into an HTTP header as it is: printable ASCII, no spaces.
MIN_METRICS_TOKEN_LENGTH = 16
METRICS_TOKEN_PATTERN = re.compile(rf"[\x21-\x7e]{{{MIN_METRICS_TOKEN_LENGTH},256}}")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the setting."""


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    #: Interface and port to listen on.
    host: str = "127.0.0.1"
    port: int = 8080
    #: ``sqlite:///relative/path.sqlite``, ``sqlite:////absolute/path.sqlite`` or
    #: ``postgresql://user:password@host:port/database``.
    database: str = "sqlite:///data/ledgersync.sqlite"
    #: The URL clients use to reach this server; its host name goes into challenges and tokens.
    public_url: str = "http://localhost:8080"
    #: The server's secret keys (challenge signing and token signing), created on first start.
    key_file: Path = Path("data/server-key.json")
    #: Access-token lifetime and the refresh window counted from the original login, in seconds.
    access_token_ttl: int = 300
    refresh_window: int = 3600
    #: How long a challenge can be answered, in seconds (Ledger's backend: 30 minutes).
    challenge_ttl: int = 1800
    #: Trusted attestation keys for device logins: ``prod``, ``test`` or 66-hex public keys.
    attestation_keys: tuple[bytes, ...] = (LEDGER_PROD_ATTESTATION_KEY, LEDGER_TEST_ATTESTATION_KEY)
    #: Accept genuine devices only (the PROD attestation key), whatever ``attestation_keys`` says.
    prod_attestation_only: bool = False
    #: Per-client token bucket on ``/v1/challenge`` and ``/v1/authenticate``.
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 20
    #: Connections (see :mod:`ledgersync.server.transport`): open at once in total and per
    #: client address (an IPv6 client is its /64; trusted proxies are exempt), request line
    #: and headers in bytes (431 beyond), seconds to receive a request's headers once its
    #: first byte came and its body once the headers came (408), and seconds an idle
    #: connection (before its first request or between two) is kept open.
    max_connections: int = 10_000
    max_connections_per_client: int = 256
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    #: Bounds on what a client may send.
    max_body_bytes: int = 1 << 20
    max_blocks_per_request: int = 64
    max_stream_blocks: int = 1024
    max_streams_per_trustchain: int = 256
    max_trustchains_per_device: int = 64
    #: Websockets: the largest frame accepted, and the QR relay's idle timeout and room count.
    ws_max_frame_bytes: int = 64 * 1024
    qr_idle_timeout: float = 300.0
    qr_max_rooms: int = 10_000
    #: Cloud Sync: the largest document payload (413 beyond), the notification socket's ping
    #: interval, and how long a socket may take to send a (renewed) token, in seconds.
    cloudsync_max_payload_bytes: int = 8 << 20
    cloudsync_ping_interval: float = 30.0
    cloudsync_auth_timeout: float = 30.0
    cloudsync_max_subscribers: int = 100_000
    #: Logging: client IP addresses are left out unless enabled.
    log_client_ip: bool = False
    log_level: str = "info"
    #: ``json`` (one object per line, for log collectors), ``text`` (a start-up banner and
    #: readable lines, for a person) or ``auto``: text when standard error is a terminal.
    log_format: str = "auto"
    #: Comma-separated proxy addresses whose X-Forwarded-For is trusted (uvicorn); empty: none.
    forwarded_allow_ips: str = ""
    #: Serve Prometheus metrics at ``/metrics``.
    metrics: bool = True
    #: When set, ``/metrics`` answers 401 unless sent ``Authorization: Bearer <this token>``.
    #: Left out of the dataclass ``repr`` so that it never reaches a log line.
    metrics_token: str = field(default="", repr=False)
    #: ``host:port`` of a second listener that serves ``/metrics`` (then absent from ``port``).
    metrics_address: str = ""
    #: Software version reported by ``/_info``.
    version: str = field(default_factory=lambda: _package_version())

    def __post_init__(self) -> None:
        for name in (
            "access_token_ttl",
            "refresh_window",
            "challenge_ttl",
            "rate_limit_per_minute",
            "rate_limit_burst",
            "max_connections",
            "max_connections_per_client",
            "max_header_bytes",
            "header_timeout",
            "body_timeout",
            "keep_alive_timeout",
            "max_body_bytes",
            "max_blocks_per_request",
            "max_stream_blocks",
            "max_streams_per_trustchain",
            "max_trustchains_per_device",
            "ws_max_frame_bytes",
            "qr_max_rooms",
            "cloudsync_max_payload_bytes",
            "cloudsync_max_subscribers",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.qr_idle_timeout <= 0:
            raise ConfigError("qr_idle_timeout must be positive")
        for name in ("cloudsync_ping_interval", "cloudsync_auth_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if not 0 <= self.port < 65536:
            raise ConfigError("port must be between 0 (any free port) and 65535")
        try:
            check_database_url(self.database)
        except DatabaseUrlError as exc:
            raise ConfigError(str(exc)) from exc
        self.public_host  # noqa: B018 - validates public_url
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
        if not self.trusted_attestation_keys:
            raise ConfigError("attestation_keys is empty: no device could log in")
        self._check_metrics_settings()

    def _check_metrics_settings(self) -> None:
        # The messages never quote the token: they end up on terminals and in logs.
        if self.metrics_token and not self.metrics:
            raise ConfigError("metrics_token is set but metrics is off: nothing would use it")
        if self.metrics_token and not METRICS_TOKEN_PATTERN.fullmatch(self.metrics_token):
            raise ConfigError(
                f"metrics_token must be {MIN_METRICS_TOKEN_LENGTH} to 256 printable ASCII "
                "characters without spaces (e.g. the output of `openssl rand -hex 32`)"
            )
        if self.metrics_address:
            if not self.metrics:
                raise ConfigError("metrics_address is set but metrics is off: nothing to serve")
            self.metrics_listen  # noqa: B018 - validates metrics_address

    @property
    def public_host(self) -> str:
        """The host name of ``public_url``: the challenge's trusted name and the token issuer."""
        host = urlsplit(self.public_url).hostname
        if not host or not host.isascii() or len(host) > 63:
            raise ConfigError(f"public_url {self.public_url!r} needs an ASCII host of 1-63 chars")
        return host

    @property
    def metrics_listen(self) -> tuple[str, int] | None:
        """``metrics_address`` as (host, port), or None when ``/metrics`` is on the main port."""
        if not self.metrics_address:
            return None
        return parse_host_port(self.metrics_address, "metrics_address")

    @property
    def trusted_attestation_keys(self) -> tuple[bytes, ...]:
        if self.prod_attestation_only:
            return (LEDGER_PROD_ATTESTATION_KEY,)
        return self.attestation_keys

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """Defaults, then ``LEDGERSYNC_*`` variables, then ``overrides`` (None values skipped)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(ENV_PREFIX + item.name.upper())
            if raw is not None and item.name in _PARSERS:
                try:
                    values[item.name] = _PARSERS[item.name](raw)
                except ValueError as exc:
                    variable = ENV_PREFIX + item.name.upper()
                    raise ConfigError(f"{variable}: {exc}") from exc
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def with_changes(self, **changes: Any) -> ServerConfig:
        return replace(self, **changes)


def _package_version() -> str:
    from .. import __version__

    return __version__


def parse_host_port(text: str, setting: str) -> tuple[str, int]:
    """``host:port``, ``[ipv6]:port``: the host as a socket takes it, and the port."""
    host, separator, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address without brackets: its port would be ambiguous
    expected = f"{setting} {text!r} is not host:port (for example 127.0.0.1:9100 or [::1]:9100)"
    if not separator or not host or not port_text.isdigit() or not host.isascii():
        raise ConfigError(expected)
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{setting} {text!r}: the port must be between 1 and 65535")
    return host, port


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true/false)")


def parse_int(text: str) -> int:
    """A whole number, said in the setting's terms rather than Python's when it is not one."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_float(text: str) -> float:
    """A number such as ``30`` or ``2.5``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_attestation_keys(text: str) -> tuple[bytes, ...]:
    """``prod,test`` or a comma-separated list of compressed public keys in hex."""
    keys = []
    for item in text.split(","):
        name = item.strip().lower()
        if not name:
            continue
        if name in _NAMED_ATTESTATION_KEYS:
            keys.append(_NAMED_ATTESTATION_KEYS[name])
            continue
        try:
            key = bytes.fromhex(name)
        except ValueError as exc:
            raise ValueError(f"{item!r} is neither prod, test nor a hex public key") from exc
        if len(key) != 33 or key[0] not in (2, 3):
            raise ValueError(f"{item!r} is not a 33-byte compressed public key")
        keys.append(key)
    return tuple(keys)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "port": parse_int,
    "database": str,
    "public_url": str,
    "key_file": Path,
    "access_token_ttl": parse_int,
    "refresh_window": parse_int,
    "challenge_ttl": parse_int,
    "attestation_keys": parse_attestation_keys,
    "prod_attestation_only": parse_bool,
    "rate_limit_per_minute": parse_int,
    "rate_limit_burst": parse_int,
    "max_connections": parse_int,
    "max_connections_per_client": parse_int,
    "max_header_bytes": parse_int,
    "header_timeout": parse_float,
    "body_timeout": parse_float,
    "keep_alive_timeout": parse_float,
    "max_body_bytes": parse_int,
    "max_blocks_per_request": parse_int,
    "max_stream_blocks": parse_int,
    "max_streams_per_trustchain": parse_int,
    "max_trustchains_per_device": parse_int,
    "ws_max_frame_bytes": parse_int,
    "qr_idle_timeout": parse_float,
    "qr_max_rooms": parse_int,
    "cloudsync_max_payload_bytes": parse_int,
    "cloudsync_ping_interval": parse_float,
    "cloudsync_auth_timeout": parse_float,
    "cloudsync_max_subscribers": parse_int,
    "log_client_ip": parse_bool,
    "log_level": str,
    "log_format": str,
    "forwarded_allow_ips": str,
    "metrics": parse_bool,
    "metrics_token": str,
    "metrics_address": str,
}
