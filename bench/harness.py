"""What the server benchmarks share: pinned servers, wrk runs, rounds and medians, the table.

The server under test is a ``ledgersync serve`` subprocess pinned to core 0
(:data:`SERVER_CORE`); everything else, wrk, PostgreSQL and this Python process (set-up,
websocket clients), runs on core 1 (:data:`LOAD_CORE`), so the figures say what one server
core does. The load generator is wrk (``make bench-deps`` installs Debian's package), one
thread per server and 64 connections in all (``-t1 -c64`` for one server, as issue #16
measured); the scripts in ``bench/wrk/`` hand out prepared requests and count the answers
accepted. Every figure is printed beside its ratio to a ceiling measured in the same round on
the same server stack: ``GET /_info`` (no token, no database), with the request log off.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from ledgersync.device.approval import approve_all
from ledgersync.device.identity import DeviceIdentity
from ledgersync.device.software import SoftwareDevice
from ledgersync.protocol import KeyPair
from ledgersync.sdk import MemberCredentials, Trustchain, TrustchainSDK
from ledgersync.testing import EmbeddedPostgres, LocalServer

SERVER_CORE = 0
LOAD_CORE = 1
WRK = Path("/usr/bin/wrk")
WRK_SCRIPTS = Path(__file__).with_name("wrk")
CONNECTIONS = 64
#: Longest a single wrk request may take before wrk counts it as a timeout.
WRK_TIMEOUT = "10s"

#: Every benchmark server: tokens outlive the run, no rate limit on logins (one address),
#: room for 10,000 idle subscribers from 127.0.0.1, idle sockets need not answer pings,
#: AddMember chains of a few hundred blocks per stream.
BENCH_SETTINGS: dict[str, Any] = {
    "access_token_ttl": 3600,
    "refresh_window": 7200,
    "rate_limit_per_minute": 100_000_000,
    "rate_limit_burst": 100_000_000,
    "cloudsync_ping_interval": 600,
    "max_connections": 15_000,
    "max_connections_per_client": 15_000,
    "max_stream_blocks": 100_000,
}
#: The switch that turns the per-request log off (warnings and errors are still logged).
LOG_OFF: dict[str, Any] = {"log_level": "warning"}


#: The backends, as ``--backends`` names them, and as the tables title them.
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every server benchmark takes; ``--quick`` is applied by :func:`start`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: one round of 1 s runs, fewer sockets"
    )
    return parser


def start(args: argparse.Namespace) -> None:
    """Check the machine, move this process to the load core, print the run's conditions."""
    if args.quick:
        args.seconds, args.rounds = 1.0, 1
    check_machine()
    pin_to_load_core()
    print(describe_machine())
    print(
        f"server: 1 process pinned to core {SERVER_CORE}; wrk -t1 -c{CONNECTIONS}"
        f" on core {LOAD_CORE} with PostgreSQL and the bench;"
        f" {args.rounds} rounds of {args.seconds:g} s, medians; ratios to GET /_info"
        " (request log off) in the same round",
        flush=True,
    )


def check_machine() -> None:
    """Exit with one sentence when wrk or a second core is missing."""
    if not WRK.exists():
        sys.exit("wrk is not installed: run `make bench-deps` (it installs Debian's wrk package).")
    if not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        sys.exit("the benchmarks need cores 0 and 1: the server on one, the load on the other.")


def pin_to_load_core() -> None:
    """This process (set-up, websocket clients) stays off the server's core."""
    os.sched_setaffinity(0, {LOAD_CORE})


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: the other jobs the figures shared it with."""
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def describe_machine() -> str:
    wrk = subprocess.run([str(WRK), "-v"], capture_output=True, text=True, check=False)
    version = (wrk.stdout or wrk.stderr).split(" [")[0]
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load_average()}; {version}"
    )


# --- servers and databases ----------------------------------------------------------------


def bench_server(
    database: str | None = None, *, core: int = SERVER_CORE, **settings: Any
) -> LocalServer:
    """A ``ledgersync serve`` pinned to ``core`` (not started)."""
    return LocalServer(
        launcher=("taskset", "-c", str(core)),
        database=database,
        **{**BENCH_SETTINGS, **settings},
    )


def pin_process_tree(pid: int, core: int) -> None:
    """Pin ``pid`` and its present children; children started later inherit the affinity."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            os.sched_setaffinity(current, {core})
        except ProcessLookupError:
            continue
        pending += children.get(current, [])


@contextmanager
def postgres_cluster() -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL with fsync on (as in production), pinned to the load core."""
    with EmbeddedPostgres(fsync=True) as cluster:
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        pin_process_tree(postmaster, LOAD_CORE)
        yield cluster


@contextmanager
def fresh_databases(backend: str) -> Iterator[Iterator[str | None]]:
    """Fresh databases, one per ``next()``: ``sqlite`` gives None (each server's own file in
    its directory), ``postgresql`` new schemas of one embedded cluster."""
    if backend == "sqlite":
        yield itertools.repeat(None)
        return
    with postgres_cluster() as cluster:
        yield (cluster.create_database() for _ in itertools.count())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"process {pid} reports no VmRSS")


# --- members, built with the SDK and a software device --------------------------------------


@dataclass(frozen=True)
class BenchMember:
    """An instance that joined a fresh trustchain (created by a software device), logged in."""

    url: str
    device: SoftwareDevice
    credentials: MemberCredentials
    trustchain: Trustchain
    token: str

    @property
    def query(self) -> str:
        """The Cloud Sync query of this member's document, URL-encoded."""
        return cloudsync_query(self.trustchain.root_id, self.trustchain.application_path)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def cloudsync_query(trustchain_id: str, path: str) -> str:
    return f"id={quote(trustchain_id, safe='')}&path={quote(path, safe='')}"


async def new_member(url: str, name: str = "bench") -> BenchMember:
    """A new software device creates a trustchain and adds one instance (the Ledger Live flow)."""
    device = SoftwareDevice(DeviceIdentity(KeyPair.generate()), approver=approve_all)
    async with TrustchainSDK(url, name=name) as sdk:
        credentials = sdk.init_member_credentials()
        result = await sdk.get_or_create_trustchain(device, credentials)
        jwt = await sdk.get_jwt(result.trustchain, credentials)
    return BenchMember(url, device, credentials, result.trustchain, jwt.access_token)


async def check_json(response: aiohttp.ClientResponse, what: str, status: int = 200) -> Any:
    """The answer's JSON, or a one-line failure naming the request."""
    text = await response.text()
    if response.status != status:
        raise RuntimeError(f"{what}: HTTP {response.status}: {text[:300]}")
    return json.loads(text) if text else None


# --- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One prepared request for ``bench/wrk/replay.lua``."""

    method: str
    path: str
    token: str | None = None
    body: Any = None

    def line(self) -> str:
        body = "-" if self.body is None else json.dumps(self.body, separators=(",", ":"))
        return "\t".join((self.method, self.path, self.token or "-", body))


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: answers accepted (status 200 and the expected body) and latencies of all."""

    accepted: int
    rejected: int
    seconds: float
    p50_ms: float
    p99_ms: float
    exhausted_threads: int
    socket_errors: int
    timeouts: int
    rejection: str

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        for line in output.splitlines():
            if line.startswith("BENCH-JSON "):
                data = json.loads(line.removeprefix("BENCH-JSON "))
                return cls(
                    accepted=data["accepted"],
                    rejected=data["rejected"],
                    seconds=data["duration_us"] / 1e6,
                    p50_ms=data["p50_us"] / 1000,
                    p99_ms=data["p99_us"] / 1000,
                    exhausted_threads=data["exhausted_threads"],
                    socket_errors=data["socket_errors"],
                    timeouts=data["timeouts"],
                    rejection=data["rejection"],
                )
        raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


def run_wrk(
    servers: Sequence[LocalServer],
    script: str,
    seconds: float,
    connections: int = CONNECTIONS,
    **environment: str,
) -> WrkResult:
    """wrk on the load core: one thread per server, ``connections`` connections in all;
    ``environment`` configures the script (``BENCH_*`` variables)."""
    targets = ",".join(f"127.0.0.1:{server.port}" for server in servers)
    command = [
        "taskset", "-c", str(LOAD_CORE), str(WRK),
        f"-t{len(servers)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}", "-s", str(WRK_SCRIPTS / script), servers[0].url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_TARGETS": targets, **environment}
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=seconds + 120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return WrkResult.parse(completed.stdout)


class RequestFiles:
    """Request lists for ``replay.lua`` (one per wrk thread), in a temporary directory."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="ledgersync-bench-wrk-")
        self._count = 0

    def write(self, per_thread: Sequence[Sequence[Request]]) -> dict[str, str]:
        """Write the lists; returns the environment that points ``replay.lua`` at them."""
        self._count += 1
        directory = Path(self._directory.name) / str(self._count)
        directory.mkdir()
        for index, requests in enumerate(per_thread):
            text = "".join(request.line() + "\n" for request in requests)
            (directory / f"{index}.txt").write_text(text)
        return {"BENCH_REQUESTS": str(directory)}

    def close(self) -> None:
        self._directory.cleanup()


def replay(
    servers: Sequence[LocalServer],
    files: RequestFiles,
    requests: Sequence[Request],
    seconds: float,
    *,
    connections: int = CONNECTIONS,
    expect: str = "",
    status: int = 200,
    cycle: bool = False,
) -> WrkResult:
    """Send prepared requests in order (``cycle``: in a loop; each server's thread has its own
    copy); an answer is accepted with ``status`` and ``expect`` in its body."""
    if not cycle and len(servers) > 1:
        raise ValueError("single-use requests go to one server: each thread would send them all")
    environment = files.write([requests] * len(servers))
    return run_wrk(
        servers,
        "replay.lua",
        seconds,
        connections,
        BENCH_EXPECT=expect,
        BENCH_STATUS=str(status),
        BENCH_CYCLE="1" if cycle else "0",
        **environment,
    )


def looped(
    servers: Sequence[LocalServer],
    files: RequestFiles,
    requests: Sequence[Request],
    seconds: float,
    expect: str,
    connections: int = CONNECTIONS,
) -> Callable[[int], WrkResult]:
    """A measure for :class:`Figure`: read requests replayed in a loop, every round."""
    return lambda _round: replay(
        servers, files, requests, seconds, connections=connections, expect=expect, cycle=True
    )


#: The ceiling's figure name, and text in every ``GET /_info`` answer.
CEILING = "GET /_info (ceiling, log off)"
INFO_MARKER = '"ledgersync"'


def ceiling(
    servers: Sequence[LocalServer],
    files: RequestFiles,
    seconds: float,
    connections: int = CONNECTIONS,
) -> Callable[[int], WrkResult]:
    """A measure of the ceiling: ``GET /_info`` (no token, no database) in a loop."""
    return looped(servers, files, [Request("GET", "/_info")], seconds, INFO_MARKER, connections)


# --- rounds, medians and the table -----------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """A goal for one figure: a least ratio to its ceiling and/or a largest p99."""

    min_ratio: float | None = None
    max_p99_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:.0%}")
        if self.max_p99_ms is not None:
            parts.append(f"p99 <= {self.max_p99_ms:g} ms")
        return ", ".join(parts)

    def met(self, ratio: float, p99_ms: float) -> bool:
        return (self.min_ratio is None or ratio >= self.min_ratio) and (
            self.max_p99_ms is None or p99_ms <= self.max_p99_ms
        )


@dataclass
class Figure:
    """A measurement repeated once per round; ``ceiling`` names the figure it is compared to
    (itself for a ceiling)."""

    name: str
    measure: Callable[[int], WrkResult]  # the round's number -> one wrk run
    ceiling: str
    goal: Goal | None = None
    why: str = ""  # why the figure is what it is, when it misses 20% of its ceiling
    results: list[WrkResult] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(result.rate for result in self.results)

    @property
    def p50_ms(self) -> float:
        return statistics.median(result.p50_ms for result in self.results)

    @property
    def p99_ms(self) -> float:
        return statistics.median(result.p99_ms for result in self.results)


def run_rounds(figures: Sequence[Figure], rounds: int) -> None:
    """Every figure once per round, in order, so that each round's ceiling and figures are
    measured seconds apart (the machine's load drifts). A first round is not counted: right
    after the set-up a server can stall for a second (seen with 1 s runs)."""
    for number in range(rounds + 1):
        for figure in figures:
            result = figure.measure(number)
            if number:
                figure.results.append(result)


def ratio_to_ceiling(figure: Figure, figures: Sequence[Figure]) -> float:
    """The median over rounds of the figure's rate over its ceiling's rate in the same round."""
    ceiling = next(item for item in figures if item.name == figure.ceiling)
    return statistics.median(
        mine.rate / theirs.rate
        for mine, theirs in zip(figure.results, ceiling.results, strict=True)
        if theirs.rate
    )


def table(figures: Sequence[Figure]) -> list[str]:
    """The paste-ready lines: rate, ratio, p50, p99, goal and verdict per figure."""
    lines = [
        f"  {'':<40} {'req/s':>8} {'ceiling':>8} {'p50 ms':>7} {'p99 ms':>7}  goal",
    ]
    for figure in figures:
        ratio = ratio_to_ceiling(figure, figures)
        goal = ""
        if figure.goal is not None:
            verdict = "met" if figure.goal.met(ratio, figure.p99_ms) else "NOT met"
            goal = f"{figure.goal.describe()}: {verdict}"
        elif figure.why and ratio < 0.2:
            goal = f"< 20%: {figure.why}"
        lines.append(
            f"  {figure.name:<40} {figure.rate:8,.0f} {ratio:8.0%}"
            f" {figure.p50_ms:7.1f} {figure.p99_ms:7.1f}  {goal}".rstrip()
        )
        lines += anomalies(figure)
    return lines


def anomalies(figure: Figure) -> list[str]:
    """What went wrong in a figure's runs: answers not accepted, errors, too few prepared."""
    rejected = sum(result.rejected for result in figure.results)
    errors = sum(result.socket_errors + result.timeouts for result in figure.results)
    exhausted = sum(result.exhausted_threads for result in figure.results)
    notes = []
    if rejected:
        sample = next(result.rejection for result in figure.results if result.rejection)
        notes.append(f"{rejected:,} answers not accepted (first: {sample[:100]})")
    if errors:
        notes.append(f"{errors:,} socket errors or timeouts")
    if exhausted:
        notes.append(f"{exhausted} connections ran out of prepared requests (figure too low)")
    return [f"  {'':<40} ({note})" for note in notes]
