"""Benchmark: the Cloud Sync API of a real ``ledgersync serve`` process, on SQLite and PostgreSQL.

Run with ``make bench-cloudsync`` (or ``.venv/bin/python -m bench.cloudsync``). The server is
a ``ledgersync serve`` subprocess (one process); the load generator (aiohttp, 64 concurrent
connections) runs in this process on the same machine. Every rate is also printed as a ratio
to a baseline measured in the same run against the same server: ``GET /_info``, the cheapest
route (no token, no database).

Measured:

* accepted ``GET`` (``up-to-date``) and ``POST`` (``updated``, 1 KiB payloads, one document
  per connection so every write is accepted) per second, with p50 and p99 latency;
* notification latency: time from a ``POST``'s acknowledgement (response read by the client)
  to the receipt of the new version by a subscriber, while 1,000 or 10,000 other subscribers
  sit idle on the same server (each a real websocket that sent its token);
* memory per idle subscriber: the server's RSS growth divided by the number of sockets.

Goals (2-core machine shared with the load generator): >= 5,000 GET/s, >= 1,500 POST/s,
p99 < 50 ms; notification p99 < 50 ms with 1,000 subscribers; < 50 KB per idle subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx2
from tests.server.cloudsync_helpers import new_member
from tests.server.harness import EmbeddedPostgres, free_port

CONNECTIONS = 64
PAYLOAD = "A" * 1024


@dataclass
class Rate:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


@contextlib.contextmanager
def serve(database: str, directory: Path) -> Iterator[tuple[str, int]]:
    """A ``ledgersync serve`` subprocess; yields its URL and pid once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "LEDGERSYNC_KEY_FILE": str(directory / "key.json"),
        "LEDGERSYNC_PUBLIC_URL": "http://ledgersync.bench",
        "LEDGERSYNC_ACCESS_TOKEN_TTL": "3600",
        "LEDGERSYNC_REFRESH_WINDOW": "7200",
        "LEDGERSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
        "LEDGERSYNC_RATE_LIMIT_BURST": "1000000",
        "LEDGERSYNC_CLOUDSYNC_PING_INTERVAL": "600",  # idle sockets need not answer pings
        # 10,000 idle subscribers and the load generator, all from 127.0.0.1
        "LEDGERSYNC_MAX_CONNECTIONS": "15000",
        "LEDGERSYNC_MAX_CONNECTIONS_PER_CLIENT": "15000",
        "LEDGERSYNC_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).parent / "ledgersync"), "serve", "--port", str(port)]
    command += ["--database", database]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # a benchmark may poll for readiness
            try:
                httpx2.get(f"{url}/_info", timeout=1).raise_for_status()
                break
            except httpx2.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def load(
    seconds: float, request: Callable[[aiohttp.ClientSession, int], Awaitable[bool]]
) -> Rate:
    """``CONNECTIONS`` workers calling ``request`` in a loop for ``seconds``; counts the
    calls that returned True (accepted) and their latencies."""
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        for worker in range(CONNECTIONS):  # warm up: open every connection
            await request(session, worker)
        stop = time.perf_counter() + seconds

        async def worker_loop(worker: int) -> None:
            nonlocal failures
            while time.perf_counter() < stop:
                started = time.perf_counter()
                if await request(session, worker):
                    latencies.append(time.perf_counter() - started)
                else:
                    failures += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker_loop(w) for w in range(CONNECTIONS)))
        elapsed = time.perf_counter() - began
    if failures:
        print(f"  ({failures} requests not accepted)")
    return Rate(len(latencies), elapsed, latencies)


async def http_benchmarks(url: str, token: str, trustchain_id: str, path: str, seconds: float):
    headers = {"Authorization": f"Bearer {token}"}
    versions = [0] * CONNECTIONS

    async def info(session: aiohttp.ClientSession, worker: int) -> bool:
        async with session.get(f"{url}/_info") as response:
            await response.read()
            return response.status == 200

    async def post(session: aiohttp.ClientSession, worker: int) -> bool:
        params = {"id": trustchain_id, "path": path, "version": str(versions[worker] + 1)}
        async with session.post(
            f"{url}/atomic/v1/bench-{worker}",
            params=params,
            json={"payload": PAYLOAD},
            headers=headers,
        ) as response:
            body = await response.json()
            if body.get("status") == "updated":
                versions[worker] += 1
                return True
            return False

    async def get(session: aiohttp.ClientSession, worker: int) -> bool:
        params = {"id": trustchain_id, "path": path, "version": str(versions[worker])}
        async with session.get(
            f"{url}/atomic/v1/bench-{worker}", params=params, headers=headers
        ) as response:
            body = await response.json()
            return body.get("status") == "up-to-date"

    baseline = await load(seconds, info)
    posts = await load(seconds, post)
    gets = await load(seconds, get)
    return baseline, gets, posts


async def notification_benchmark(
    url: str, pid: int, token: str, trustchain_id: str, path: str, idle: int, samples: int
) -> tuple[list[float], float]:
    """Latencies (ms) from POST acknowledgement to receipt, with ``idle`` idle subscribers;
    and the server's RSS growth per idle subscriber (KiB)."""
    ws_url = url.replace("http", "ws", 1)
    headers = {"Authorization": f"Bearer {token}"}
    before = rss_kib(pid)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def connect(slug: str) -> aiohttp.ClientWebSocketResponse:
            socket = await session.ws_connect(f"{ws_url}/atomic/v1/{slug}/notifications")
            await socket.send_str(token)
            return socket

        for start in range(0, idle, 250):
            batch = range(start, min(idle, start + 250))
            sockets += await asyncio.gather(*(connect("idle") for _ in batch))
        # the last idle socket is authenticated once a write to its document reaches it
        probe = await connect("idle")
        sockets.append(probe)
        async with session.post(
            f"{url}/atomic/v1/idle",
            params={"id": trustchain_id, "path": path, "version": str(int(time.time()))},
            json={"payload": "eA=="},  # payloads are base64
            headers=headers,
        ) as response:
            assert (await response.json())["status"] == "updated"
        await asyncio.wait_for(probe.receive(), 60)
        per_subscriber = (rss_kib(pid) - before) / len(sockets)

        subscriber = await connect("live")
        arrivals: dict[int, float] = {}
        arrived: dict[int, asyncio.Event] = {}

        async def read() -> None:
            async for message in subscriber:
                version = int(message.data)
                arrivals[version] = time.perf_counter()
                arrived.setdefault(version, asyncio.Event()).set()

        reader = asyncio.create_task(read())
        base = int(time.time() * 1000)  # a fresh first version: any version >= 1 is accepted
        latencies = []
        warmup = 10
        for index in range(warmup + samples):
            version = base + index
            async with session.post(
                f"{url}/atomic/v1/live",
                params={"id": trustchain_id, "path": path, "version": str(version)},
                json={"payload": PAYLOAD},
                headers=headers,
            ) as response:
                assert (await response.json())["status"] == "updated"
                acknowledged = time.perf_counter()
            event = arrived.setdefault(version, asyncio.Event())
            await asyncio.wait_for(event.wait(), 10)
            if index >= warmup:
                latencies.append((arrivals[version] - acknowledged) * 1000)
        reader.cancel()
        for slug in ("live", "idle"):  # the next run starts with empty documents
            async with session.delete(
                f"{url}/atomic/v1/{slug}",
                params={"id": trustchain_id, "path": path},
                headers=headers,
            ):
                pass
        for socket in [*sockets, subscriber]:
            await socket.close()
    return latencies, per_subscriber


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_backend(name: str, database: str, directory: Path, args: argparse.Namespace) -> None:
    with serve(database, directory) as (url, pid):
        member = new_member(httpx2.Client(base_url=url, timeout=30))
        token, trustchain_id, path = member.token, member.trustchain_id, member.path
        baseline, gets, posts = asyncio.run(
            http_benchmarks(url, token, trustchain_id, path, args.seconds)
        )
        print(f"\n{name}: {CONNECTIONS} connections, {args.seconds:.0f} s per measurement")
        print(f"  GET /_info (baseline)   {baseline.per_second:8,.0f} req/s")
        for label, rate, goal in (("GET up-to-date", gets, 5000), ("POST updated", posts, 1500)):
            print(
                f"  {label:<23} {rate.per_second:8,.0f} req/s"
                f"  {rate.per_second / baseline.per_second:5.0%} of baseline"
                f"  p50 {rate.percentile(0.5):5.1f} ms  p99 {rate.percentile(0.99):5.1f} ms"
                f"  (goal >= {goal:,}/s, p99 < 50 ms)"
            )
        for idle in args.subscribers:
            latencies, per_subscriber = asyncio.run(
                notification_benchmark(url, pid, token, trustchain_id, path, idle, args.samples)
            )
            print(
                f"  notification, {idle:>6,} idle subscribers: p50 {pct(latencies, 0.5):5.1f} ms"
                f"  p99 {pct(latencies, 0.99):5.1f} ms  max {max(latencies):5.1f} ms"
                f"  ({len(latencies)} samples); server RSS +{per_subscriber:.1f} KiB/subscriber"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs;"
        f" server and load generator on the same machine (file limit {hard})"
    )
    with tempfile.TemporaryDirectory(prefix="ledgersync-bench-") as temporary:
        directory = Path(temporary)
        if "sqlite" in args.backends:
            run_backend("SQLite", f"sqlite:///{directory / 'bench.sqlite'}", directory, args)
        if "postgresql" in args.backends:
            cluster = EmbeddedPostgres().start()
            try:
                run_backend("PostgreSQL", cluster.create_database(), directory, args)
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
