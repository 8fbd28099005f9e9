"""``/metrics`` of a real ``ledgersync serve``: the process figures beside the counters, the
bearer token (``LEDGERSYNC_METRICS_TOKEN``), the separate listener
(``LEDGERSYNC_METRICS_ADDRESS``), and one-sentence errors for bad values."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main
from ledgersync.testing import LocalServer, free_port, ledgersync_command

TOKEN = "metrics-token-0123456789abcdef"


def sample(exposition: str, name: str) -> float:
    """The value of the unlabelled sample ``name`` in a Prometheus text exposition."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_include_the_process_cpu_memory_and_open_files() -> None:
    with LocalServer() as server:
        answer = httpx2.get(server.url + "/metrics")
    assert answer.status_code == 200
    text = answer.text
    assert sample(text, "process_cpu_seconds_total") > 0
    assert sample(text, "process_resident_memory_bytes") > 10_000_000  # a Python server
    open_files = sample(text, "process_open_fds")
    assert 3 <= open_files <= sample(text, "process_max_fds")
    assert "ledgersync_http_requests_total" in text  # beside the server's own counters


def test_start_up_objects_are_frozen_out_of_the_collectors_work() -> None:
    with LocalServer() as server:
        text = httpx2.get(server.url + "/metrics").text
    # The modules, the application and its connections: far more than a bare interpreter.
    assert sample(text, "ledgersync_gc_frozen_objects") > 20_000  # a bare interpreter: 5,000
    assert 'python_gc_collections_total{generation="2"}' in text


def test_a_metrics_token_is_required_and_never_shown() -> None:
    with LocalServer(metrics_token=TOKEN, log_format="text") as server:
        with httpx2.Client(base_url=server.url) as client:
            refused = [
                client.get("/metrics"),
                client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1]}),
                client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN + "x"}),
                client.get("/metrics", headers={"Authorization": "Basic " + TOKEN}),
                client.get("/metrics", headers={b"Authorization": "Bearer é".encode()}),
            ]
            granted = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert client.get("/_info").status_code == 200  # the rest needs no token
        log = server.log_tail(100_000)
    for answer in refused:
        assert answer.status_code == 401
        assert answer.json()["cause"].startswith("missing or wrong Authorization: Bearer")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in answer.text
    assert granted.status_code == 200
    assert "process_open_fds" in granted.text
    assert "bearer token required" in log  # the banner says a token is needed...
    assert TOKEN not in log  # ...but never what it is


def test_a_metrics_address_moves_metrics_to_a_second_listener() -> None:
    metrics_port = free_port()
    with LocalServer(metrics_address=f"127.0.0.1:{metrics_port}", log_format="text") as server:
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        on_main = httpx2.get(server.url + "/metrics")
        document = httpx2.get(server.url + "/openapi.json").json()
        apart = httpx2.get(metrics_url + "/metrics")
        others = [httpx2.get(metrics_url + path) for path in ("/_info", "/", "/v1/challenge")]
        log = server.log_tail(100_000)
    assert on_main.status_code == 404
    assert on_main.headers["content-type"] == "application/json"
    assert "/metrics" not in document["paths"]
    assert apart.status_code == 200
    assert "process_resident_memory_bytes" in apart.text
    assert "ledgersync_http_requests_total" in apart.text  # the same process's counters
    assert [answer.status_code for answer in others] == [404, 404, 404]
    assert f"metrics         {metrics_url}/metrics" in log


def serve(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``ledgersync serve`` with ``variables``, expected to stop at once."""
    env = {**os.environ, "LEDGERSYNC_PORT": "0", "LEDGERSYNC_LOG_FORMAT": "json"}
    env.update({f"LEDGERSYNC_{name.upper()}": value for name, value in variables.items()})
    return subprocess.run(
        ledgersync_command("serve"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"metrics_address": "9100"}, "metrics_address '9100' is not host:port"),
        ({"metrics_address": "localhost:http"}, "is not host:port (for example 127.0.0.1:9100"),
        ({"metrics_address": "127.0.0.1:70000"}, "the port must be between 1 and 65535"),
        ({"metrics_address": "127.0.0.1:9100", "metrics": "false"}, "metrics is off"),
        ({"metrics_token": "short secret"}, "metrics_token must be 16 to 256 printable ASCII"),
    ],
)
def test_bad_metrics_settings_are_one_sentence(variables: dict[str, str], says: str) -> None:
    env = {f"LEDGERSYNC_{name.upper()}": value for name, value in variables.items()}
    result = CliRunner().invoke(main, ["serve"], env=env)  # refused before anything starts
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output
    assert "short secret" not in result.output  # a rejected token is not echoed either


def test_a_metrics_port_in_use_is_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = serve(tmp_path, metrics_address=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use by another program" in result.stderr
    assert "--metrics-address or LEDGERSYNC_METRICS_ADDRESS" in result.stderr
    assert "Traceback" not in result.stderr
    assert "ledgersync started" not in result.stderr  # the ports are bound before start-up
