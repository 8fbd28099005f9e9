"""The files of ``deploy/`` agree with the code, and work where this machine can run them.

Each file is parsed (the systemd unit and its environment file, the nginx site, the container
file line by line, the compose file with PyYAML) and checked against the code: every
``LEDGERSYNC_*`` variable is a ``ServerConfig`` setting with a value it accepts, every flag is
one of ``ledgersync serve --help``, ports and paths line up, the health check path is a route.
Then for real: ``systemd-analyze verify`` on the unit, ``nginx -t`` on the site, and one HTTPS
request and one websocket relay through nginx (a certificate made here) to a real server.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect as websocket_connect

from ledgersync.cli.main import main
from ledgersync.server import ServerConfig
from ledgersync.server.openapi import route_operations
from ledgersync.server.routes import routes
from ledgersync.testing import LocalServer, free_port, ledgersync_command

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX = Path("/usr/sbin/nginx")
SYSTEMD_ANALYZE = Path("/usr/bin/systemd-analyze")
SETTINGS = {"LEDGERSYNC_" + item.name.upper() for item in fields(ServerConfig)}
HEALTH_PATH = "/_health"
START_TIMEOUT = 20.0


def serve_flags() -> set[str]:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    return set(re.findall(r"(--[a-z][a-z-]+)", result.output))


def check_serve_command(words: list[str]) -> None:
    """``ledgersync serve [--flag value]…`` with flags that exist."""
    assert Path(words[0]).name == "ledgersync" and words[1] == "serve", words
    flags = {word.split("=", 1)[0] for word in words if word.startswith("--")}
    assert flags <= serve_flags(), flags - serve_flags()


def check_settings(variables: dict[str, str]) -> ServerConfig:
    """Every variable is a real setting, and the server accepts the values together."""
    unknown = set(variables) - SETTINGS
    assert not unknown, f"not ServerConfig settings: {unknown}"
    return ServerConfig.from_env(variables)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


# --- systemd -------------------------------------------------------------------------------------


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values…]}} (a key may repeat, as systemd allows)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("[") and text.endswith("]"):
            current = sections.setdefault(text[1:-1], {})
            continue
        key, separator, value = text.partition("=")
        assert current is not None and separator, f"{path.name}:{number}: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


UNIT = DEPLOY / "ledgersync.service"
ENV_FILE = DEPLOY / "ledgersync.env"


def test_the_systemd_unit_is_hardened_and_runs_the_real_command() -> None:
    service = read_unit(UNIT)["Service"]
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }.items():
        assert service[key] == [value], key
    state = service["StateDirectory"][0]
    assert service["WorkingDirectory"] == [f"/var/lib/{state}"]
    assert Path(service["EnvironmentFile"][0]).name == ENV_FILE.name
    check_serve_command(shlex.split(service["ExecStart"][0]))
    # The state lives where the unit may write: the state directory.
    config = check_settings(read_env_file(ENV_FILE))
    assert config.database == f"sqlite:////var/lib/{state}/ledgersync.sqlite"
    assert config.key_file.parent == Path(f"/var/lib/{state}")


def test_the_environment_file_fits_the_proxy() -> None:
    config = check_settings(read_env_file(ENV_FILE))
    assert urlsplit(config.public_url).scheme == "https"
    assert config.host == "127.0.0.1"  # only the proxy reaches it
    upstream = re.search(r"upstream ledgersync \{\s*server ([\d.]+):(\d+);", NGINX_SITE.read_text())
    assert upstream is not None
    assert (upstream.group(1), int(upstream.group(2))) == (config.host, config.port)
    assert upstream.group(1) in config.forwarded_allow_ips.split(",")  # nginx connects from it
    assert config.metrics_listen is not None and config.metrics_listen[0] == "127.0.0.1"
    server_name = re.search(r"server_name (\S+);", NGINX_SITE.read_text())
    assert server_name is not None and config.public_host == server_name.group(1)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE.exists(), "systemd-analyze missing: run `make system-deps`"
    service = read_unit(UNIT)["Service"]
    installed = shlex.split(service["ExecStart"][0])[0]
    ledgersync = ledgersync_command()[0]  # this environment's command stands in for /opt's
    text = UNIT.read_text().replace(installed, ledgersync)
    text = text.replace(service["EnvironmentFile"][0], str(ENV_FILE))
    (tmp_path / UNIT.name).write_text(text)
    result = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", str(tmp_path / UNIT.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # unknown keys and bad values are only warned of


# --- the container file --------------------------------------------------------------------------


def container_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, arguments = pending.strip().partition(" ")
        instructions.append((word.upper(), arguments.strip()))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return instructions


def env_instruction(arguments: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(arguments))


CONTAINERFILE = DEPLOY / "Containerfile"


def test_the_container_file_agrees_with_the_code() -> None:
    instructions = container_instructions(CONTAINERFILE)
    words = [word for word, _ in instructions]
    assert words[0] == "FROM"
    variables: dict[str, str] = {}
    copied: list[str] = []
    for word, arguments in instructions:
        if word == "ENV":
            variables.update(env_instruction(arguments))
        if word == "COPY":
            copied += shlex.split(arguments)[:-1]
    for source in copied:  # the build context is the repository's root
        assert (ROOT / source).exists(), source
    config = check_settings({k: v for k, v in variables.items() if k.startswith("LEDGERSYNC_")})
    by_word = {word: arguments for word, arguments in instructions}
    user = by_word["USER"]
    assert user not in ("root", "0") and words.index("USER") > words.index("RUN")
    assert by_word["VOLUME"] == "/data"
    assert config.database == "sqlite:////data/ledgersync.sqlite"
    assert config.key_file.parent == Path("/data")
    assert config.host == "0.0.0.0"
    assert by_word["EXPOSE"] == str(config.port)
    assert f"127.0.0.1:{config.port}{HEALTH_PATH}" in by_word["HEALTHCHECK"]
    assert (HEALTH_PATH, "GET") in route_operations(routes(ServerConfig()))
    command = [*eval_json_list(by_word["ENTRYPOINT"]), *eval_json_list(by_word["CMD"])]
    check_serve_command(command)
    readme = re.search(r'^readme = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert readme is not None and readme.group(1) in copied  # pip install needs it


def eval_json_list(arguments: str) -> list[str]:
    value = yaml.safe_load(arguments)  # the exec form is a JSON array
    assert isinstance(value, list), arguments
    return [str(item) for item in value]


def healthcheck_command() -> list[str]:
    arguments = dict(container_instructions(CONTAINERFILE))["HEALTHCHECK"]
    return eval_json_list(arguments.split(" CMD ", 1)[1])


def test_the_container_health_check_asks_the_real_server(local_server: LocalServer) -> None:
    command = [
        sys.executable if word == "python" else word.replace(":8080/", f":{local_server.port}/")
        for word in healthcheck_command()
    ]
    assert subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    nobody = [word.replace(f":{local_server.port}/", f":{free_port()}/") for word in command]
    assert subprocess.run(nobody, capture_output=True, timeout=30).returncode != 0


# --- compose -------------------------------------------------------------------------------------


def interpolate(text: str) -> str:
    """Compose's ``${NAME:-default}`` and ``${NAME:?error}`` with sample values."""
    samples = {"POSTGRES_PASSWORD": "0123456789abcdef", "LEDGERSYNC_PUBLIC_URL": "https://s.test"}

    def value(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        return samples.get(name, rest if operator == ":-" else "")

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", value, text)


def test_the_compose_file_agrees_with_the_code() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    server, postgres = compose["services"]["ledgersync"], compose["services"]["postgres"]
    build = server["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == CONTAINERFILE
    variables = {name: interpolate(str(value)) for name, value in server["environment"].items()}
    config = check_settings(variables)
    database = urlsplit(config.database)
    database_env = {
        name: interpolate(str(value)) for name, value in postgres["environment"].items()
    }
    assert database.scheme == "postgresql" and database.hostname == "postgres"
    assert database.port == 5432
    assert database.username == database_env["POSTGRES_USER"]
    assert database.password == database_env["POSTGRES_PASSWORD"]
    assert database.path == "/" + database_env["POSTGRES_DB"]
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    published = [str(port).rsplit(":", 1)[1] for port in server["ports"]]
    assert published == [str(config.port)]
    assert any(volume.endswith(":/data") for volume in server["volumes"])
    subnet = compose["networks"]["default"]["ipam"]["config"][0]
    gateway = ipaddress.ip_address(subnet["gateway"])
    assert gateway in ipaddress.ip_network(subnet["subnet"])
    assert config.forwarded_allow_ips == str(gateway)  # the host's proxy comes through it


# --- nginx ---------------------------------------------------------------------------------------

NGINX_SITE = DEPLOY / "nginx.conf"


def test_the_nginx_site_proxies_websockets_and_forwarded_addresses() -> None:
    site = NGINX_SITE.read_text()
    assert re.search(r"listen 443 ssl", site) and "ssl_certificate " in site
    for directive in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $ledgersync_connection;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in site, directive
    assert site.count("{") == site.count("}")


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Nginx:
    """deploy/nginx.conf under a test main configuration: its own prefix, ports and
    certificate, the upstream pointed at ``upstream_port``."""

    def __init__(self, folder: Path, upstream_port: int) -> None:
        self.folder = folder
        self.https_port, self.http_port = free_port(), free_port()
        self.certificate, key = self_signed_certificate(folder)
        site = NGINX_SITE.read_text()
        for old, new in {
            "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen [::]:443 ssl http2;": "",
            "listen [::]:80;": "",
        }.items():
            assert old in site, old
            site = site.replace(old, new)
        site = re.sub(r"ssl_certificate\s+(\S+);", f"ssl_certificate {self.certificate};", site)
        site = re.sub(r"ssl_certificate_key\s+(\S+);", f"ssl_certificate_key {key};", site)
        (folder / "site.conf").write_text(site)
        (folder / "nginx.conf").write_text(
            f"pid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log info;\n"
            "worker_processes 1;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {folder}/body;\n"
            f"    proxy_temp_path {folder}/proxy;\n"
            f"    fastcgi_temp_path {folder}/fastcgi;\n"
            f"    uwsgi_temp_path {folder}/uwsgi;\n"
            f"    scgi_temp_path {folder}/scgi;\n"
            f"    include {folder}/site.conf;\n"
            "}\n"
        )
        folder.chmod(0o755)  # the workers (an unprivileged user) write temporary files here
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *arguments: str) -> list[str]:
        return [
            str(NGINX),
            "-p",
            str(self.folder),
            "-c",
            str(self.folder / "nginx.conf"),
            *arguments,
        ]

    def test_configuration(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command("-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # ready once its TLS port accepts a connection
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(self.error_log()) from None
                time.sleep(0.05)  # polling the port for readiness, with a deadline

    def error_log(self) -> str:
        error_log = self.folder / "error.log"
        return error_log.read_text(errors="replace")[-6000:] if error_log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: the workers finish and leave
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalServer]:
    with LocalServer(forwarded_allow_ips="127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def nginx(local_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    assert NGINX.exists(), "nginx missing: run `make system-deps`"
    proxy = Nginx(tmp_path_factory.mktemp("nginx"), local_server.port)
    result = proxy.test_configuration()
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_https_and_websockets_go_through_nginx(nginx: Nginx, local_server: LocalServer) -> None:
    context = ssl.create_default_context(cafile=str(nginx.certificate))
    base = f"https://127.0.0.1:{nginx.https_port}"
    with httpx2.Client(base_url=base, verify=context) as client:
        info = client.get("/_info")
        assert info.status_code == 200 and info.json()["name"] == "ledgersync"
        assert client.get(HEALTH_PATH).json()["status"] == "ok"
        assert "max-age" in info.headers["strict-transport-security"]
    redirect = httpx2.get(f"http://127.0.0.1:{nginx.http_port}/_info?x=1")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://127.0.0.1/_info?x=1"
    try:
        asyncio.run(relay_one_frame(f"wss://127.0.0.1:{nginx.https_port}", context))
    except (TimeoutError, OSError) as exc:  # say which side it got to
        raise AssertionError(
            f"nginx's log:\n{nginx.error_log()}\nthe server's log:\n{local_server.log_tail()}"
        ) from exc


async def relay_one_frame(base: str, context: ssl.SSLContext) -> None:
    # The asyncio client, as the SDK's: websockets' threaded client reads a TLS socket in one
    # thread while it writes its handshake in another, and OpenSSL does not allow that on
    # one connection. Now and then (once in a few hundred runs here) the request was lost
    # and nginx waited 60 s for it.
    room = f"{base}/v1/qr?host=02{'ab' * 32}"
    async with (
        websocket_connect(room, ssl=context, open_timeout=10) as host,
        websocket_connect(room, ssl=context, open_timeout=10) as candidate,
    ):
        await host.send("hello through the proxy")
        assert await asyncio.wait_for(candidate.recv(), 10) == "hello through the proxy"
