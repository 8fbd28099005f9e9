"""Benchmark: the Cloud Sync API of a pinned ``ledgersync serve``, on SQLite and PostgreSQL.

Run with ``make bench-cloudsync`` (``ARGS=--quick`` for a smoke run of 1 s rounds). The server
is a ``ledgersync serve`` subprocess pinned to core 0; wrk (``-t1 -c64``), PostgreSQL and
this process run on core 1 (see ``bench/harness.py``). Each round measures, on
servers of their own, one with the default request log and one with it off:

* the ceiling: ``GET /_info`` (no token, no database) with the request log off;
* the poll, ``GET`` answering ``up-to-date`` (one document per connection), with the default
  log and with it off (the log's cost);
* the durable write, ``POST`` answering ``updated`` (fsync on; documents written round-robin,
  each write the next version), at 64 connections and at 1 (against ``GET /_info`` at 1).

The figures are medians over the rounds; each ratio is the median of the rounds' ratios to
the same round's ceiling. Then, once per backend: notification latency from a write's answer
to the subscriber's frame and server memory per idle subscriber, with 1,000 and 10,000 idle
websockets. On PostgreSQL, finally, two server processes on one database: poll and write
throughput with one and with two processes (the second on core 1, shared with wrk and
PostgreSQL), and the notification latency from one process's write to a subscriber of the
other.

Goals (issue #16): poll >= 50% of the ceiling and p99 <= 10 ms; durable write >= 25% and
p99 <= 20 ms on SQLite; on PostgreSQL poll >= 35%, write >= 15%; the request log costs <= 5%
of poll throughput; notification across processes p99 < 20 ms; <= 20 KiB per idle
subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from bench.harness import (
    BACKENDS,
    CEILING,
    CONNECTIONS,
    LOAD_CORE,
    LOG_OFF,
    SERVER_CORE,
    BenchMember,
    Figure,
    Goal,
    Request,
    RequestFiles,
    WrkResult,
    arguments,
    bench_server,
    ceiling,
    check_json,
    fresh_databases,
    load_average,
    looped,
    new_member,
    rss_kib,
    run_rounds,
    run_wrk,
    start,
    table,
)

from ledgersync.testing import LocalServer

PAYLOAD = "A" * 1024  # 1 KiB, valid base64 (Ledger Live's payloads are base64)
POLL_SLUG = "poll"
#: Documents written round-robin per connection: a document's next write is sent long after
#: its last one was answered.
DOCUMENTS_PER_CONNECTION = 32
UP_TO_DATE = '"up-to-date"'


@dataclass(frozen=True)
class Backend:
    key: str  # as --backends names it
    poll_goal: Goal
    write_goal: Goal

    @property
    def name(self) -> str:
        return BACKENDS[self.key]


SQLITE = Backend("sqlite", Goal(0.50, 10), Goal(0.25, 20))
POSTGRESQL = Backend("postgresql", Goal(0.35), Goal(0.15))
LOG_COST_GOAL = 0.05
#: Seconds between two polls of a Ledger Live instance with default settings.
POLL_INTERVAL_S = 10.0
CROSS_PROCESS_P99_GOAL_MS = 20.0
IDLE_SUBSCRIBER_GOAL_KIB = 20.0


# --- set-up ------------------------------------------------------------------------------


async def prepare(server: LocalServer, connections: int = CONNECTIONS) -> BenchMember:
    """A member, and one document per connection at version 1 for the poll."""
    member = await new_member(server.url)
    async with aiohttp.ClientSession(server.url, headers=member.auth) as session:
        for index in range(connections):
            async with session.post(
                f"/atomic/v1/{POLL_SLUG}{index}?{member.query}&version=1",
                json={"payload": PAYLOAD},
            ) as response:
                await check_json(response, "preparing the poll documents")
    return member


def poll_requests(member: BenchMember, connections: int = CONNECTIONS) -> list[Request]:
    """Polls of the prepared documents, in turn."""
    return [
        Request("GET", f"/atomic/v1/{POLL_SLUG}{index}?{member.query}&version=1", member.token)
        for index in range(connections)
    ]


def writes(
    servers: Sequence[LocalServer],
    member: BenchMember,
    prefix: str,
    seconds: float,
    connections: int = CONNECTIONS,
) -> Callable[[int], WrkResult]:
    """A measure: accepted writes, round-robin over fresh documents each round
    (``<prefix><round>-<thread>-<n>``), :data:`DOCUMENTS_PER_CONNECTION` per connection (one
    document at c=1, whose writes follow each other)."""
    documents = 1 if connections == 1 else DOCUMENTS_PER_CONNECTION * connections // len(servers)
    return lambda number: run_wrk(
        servers,
        "cloudsync_write.lua",
        seconds,
        connections,
        BENCH_SLUG=f"{prefix}{number}-",
        BENCH_DOCUMENTS=str(documents),
        BENCH_QUERY=member.query,
        BENCH_TOKEN=member.token,
        BENCH_PAYLOAD=PAYLOAD[len("00000000") :],  # the script puts the document's number first
    )


def polls(
    servers: Sequence[LocalServer], files: RequestFiles, member: BenchMember, seconds: float
) -> Callable[[int], WrkResult]:
    return looped(servers, files, poll_requests(member), seconds, UP_TO_DATE)


# --- throughput on one process ----------------------------------------------------------------


def throughput(
    backend: Backend, databases: Iterator[str | None], args: argparse.Namespace
) -> list[str]:
    """The figures of one backend; returns the lines of its table."""
    files = RequestFiles()
    with (
        bench_server(next(databases), **LOG_OFF) as quiet,
        bench_server(next(databases)) as logged,
    ):
        quiet_member = asyncio.run(prepare(quiet))
        logged_member = asyncio.run(prepare(logged))
        seconds = args.seconds
        top, top_1 = CEILING, "GET /_info, c=1 (ceiling at c=1)"
        poll = Figure(
            "GET up-to-date (poll)",
            polls([logged], files, logged_member, seconds),
            top,
            backend.poll_goal,
        )
        poll_log_off = Figure(
            "GET up-to-date, request log off", polls([quiet], files, quiet_member, seconds), top
        )
        figures = [
            Figure(top, ceiling([quiet], files, seconds), top),
            poll,
            poll_log_off,
            Figure(
                "POST updated (durable write)",
                writes([logged], logged_member, "w", seconds),
                top,
                backend.write_goal,
            ),
            Figure(top_1, ceiling([quiet], files, seconds, 1), top_1),
            Figure("POST updated, c=1", writes([logged], logged_member, "s", seconds, 1), top_1),
        ]
        run_rounds(figures, args.rounds)
    files.close()
    log_cost = 1 - statistics.median(
        with_log.rate / without.rate
        for with_log, without in zip(poll.results, poll_log_off.results, strict=True)
        if without.rate
    )
    verdict = "met" if log_cost <= LOG_COST_GOAL else "NOT met"
    return [
        *table(figures),
        f"  request log cost: {log_cost:.0%} of poll throughput"
        f" (goal <= {LOG_COST_GOAL:.0%}: {verdict})",
        f"  polls alone, one per instance every {POLL_INTERVAL_S:g} s (Ledger Live's default):"
        f" {poll.rate:,.0f}/s x {POLL_INTERVAL_S:g} s"
        f" = {poll.rate * POLL_INTERVAL_S:,.0f} instances per server core",
    ]


# --- notifications and idle subscribers --------------------------------------------------------


async def subscribe(
    session: aiohttp.ClientSession, url: str, slug: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    socket = await session.ws_connect(
        f"{url.replace('http', 'ws', 1)}/atomic/v1/{slug}/notifications"
    )
    await socket.send_str(token)
    return socket


@dataclass
class Latencies:
    """Per notified write, in ms: from the write's answer to the subscriber's frame (0 when
    the frame came first: the server publishes a version before it answers), and from the
    write's request to the frame (the commit included)."""

    after_answer: list[float] = field(default_factory=list)
    since_request: list[float] = field(default_factory=list)

    @property
    def p99(self) -> float:
        return percentile(self.after_answer, 0.99)

    def summary(self) -> str:
        first = sum(1 for value in self.after_answer if value == 0) / len(self.after_answer)
        return (
            f"after the answer p50 {percentile(self.after_answer, 0.5):.1f} ms,"
            f" p99 {self.p99:.1f} ms ({first:.0%} before it);"
            f" since the request p50 {percentile(self.since_request, 0.5):.1f} ms,"
            f" p99 {percentile(self.since_request, 0.99):.1f} ms; {len(self.after_answer)} writes"
        )


async def notification_latencies(
    session: aiohttp.ClientSession,
    writer_url: str,
    subscriber_url: str,
    member: BenchMember,
    slug: str,
    samples: int,
) -> Latencies:
    """Each write sent to ``writer_url`` (one at a time, once the last one's frame came) to
    its frame on a subscriber of ``subscriber_url``."""
    subscriber = await subscribe(session, subscriber_url, slug, member.token)
    arrivals: dict[int, float] = {}
    arrived: dict[int, asyncio.Event] = {}

    async def read() -> None:
        async for message in subscriber:
            if message.type is aiohttp.WSMsgType.TEXT and message.data.isdigit():
                version = int(message.data)
                arrivals[version] = time.perf_counter()
                arrived.setdefault(version, asyncio.Event()).set()

    reader = asyncio.create_task(read())
    warmup = 10
    latencies = Latencies()
    # A fresh document takes any first version: the receiver's clock makes them unique.
    base = int(time.time() * 1000)
    for index in range(warmup + samples):
        version = base + index
        sent = time.perf_counter()
        async with session.post(
            f"{writer_url}/atomic/v1/{slug}?{member.query}&version={version}",
            json={"payload": PAYLOAD},
            headers=member.auth,
        ) as response:
            await check_json(response, "a notified write")
            answered = time.perf_counter()
        # The subscription may start after the first write: the server then sends the
        # document's current version on subscribing, so the wait always ends.
        await asyncio.wait_for(arrived.setdefault(version, asyncio.Event()).wait(), 10)
        if index >= warmup:
            latencies.after_answer.append(max(0.0, arrivals[version] - answered) * 1000)
            latencies.since_request.append((arrivals[version] - sent) * 1000)
    reader.cancel()
    await subscriber.close()
    return latencies


#: Subscribers connected, notified and closed before measuring: the first connections pay
#: one-time costs (modules imported at the first websocket, buffers, the allocator's arenas),
#: about 3 MiB, which are not a cost per subscriber.
WARM_UP_SUBSCRIBERS = 100


async def notified_subscribers(
    session: aiohttp.ClientSession, url: str, member: BenchMember, slug: str, count: int
) -> list[aiohttp.ClientWebSocketResponse]:
    """``count`` subscribers of document ``slug``, each of which has received a version."""
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for first in range(0, count, 250):
        batch = range(first, min(count, first + 250))
        sockets += await asyncio.gather(
            *(subscribe(session, url, slug, member.token) for _ in batch)
        )
    # The sockets count once subscribed: each is, when a write reaches it.
    async with session.post(
        f"{url}/atomic/v1/{slug}?{member.query}&version=1",
        json={"payload": "eA=="},
        headers=member.auth,
    ) as response:
        await check_json(response, f"the subscribers' document {slug}")
    for socket in sockets:
        await asyncio.wait_for(socket.receive(), 60)
    return sockets


async def idle_subscribers(
    server: LocalServer, member: BenchMember, idle: int, samples: int
) -> tuple[Latencies, float, float]:
    """Notification latencies with ``idle`` idle subscribers on the server, the server's RSS
    growth per idle subscriber (KiB), and its one-time growth for the first
    :data:`WARM_UP_SUBSCRIBERS` (MiB), paid before measuring."""
    assert server.process is not None
    pid = server.process.pid
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        initial = rss_kib(pid)
        warm = await notified_subscribers(
            session, server.url, member, f"warm{idle}", WARM_UP_SUBSCRIBERS
        )
        for socket in warm:
            await socket.close()
        before = rss_kib(pid)
        sockets = await notified_subscribers(session, server.url, member, f"idle{idle}", idle)
        per_subscriber = (rss_kib(pid) - before) / len(sockets)
        latencies = await notification_latencies(
            session, server.url, server.url, member, f"live{idle}", samples
        )
        for socket in sockets:
            await socket.close()
    return latencies, per_subscriber, (before - initial) / 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def subscribers(database: str | None, args: argparse.Namespace) -> list[str]:
    lines = []
    for idle in args.subscribers:
        with bench_server(database, **LOG_OFF) as server:
            member = asyncio.run(new_member(server.url))
            latencies, per_subscriber, warm_up_mib = asyncio.run(
                idle_subscribers(server, member, idle, args.samples)
            )
        verdict = "met" if per_subscriber <= IDLE_SUBSCRIBER_GOAL_KIB else "NOT met"
        lines.append(
            f"  {idle:,} idle subscribers: server RSS +{per_subscriber:.1f} KiB/subscriber"
            f" (goal <= {IDLE_SUBSCRIBER_GOAL_KIB:g} KiB: {verdict}; after"
            f" +{warm_up_mib:.1f} MiB once for the first {WARM_UP_SUBSCRIBERS});"
            f" notification {latencies.summary()}"
        )
    return lines


# --- several processes on PostgreSQL ------------------------------------------------------------


def several_processes(database: str | None, args: argparse.Namespace) -> list[str]:
    """One and two server processes on one PostgreSQL database (request log off)."""
    files = RequestFiles()
    with tempfile.TemporaryDirectory(prefix="ledgersync-bench-keys-") as keys, ExitStack() as stack:
        # The processes of one deployment share the key file (tokens of one are valid on all).
        shared = {"key_file": str(Path(keys) / "server-key.json"), **LOG_OFF}
        first = stack.enter_context(bench_server(database, core=SERVER_CORE, **shared))
        second = stack.enter_context(bench_server(database, core=LOAD_CORE, **shared))
        member = asyncio.run(prepare(first))
        both = [first, second]
        seconds = args.seconds
        one_top, two_top = "1 process: GET /_info (ceiling)", "2 processes: GET /_info (ceiling)"
        figures = [
            Figure(one_top, ceiling([first], files, seconds), one_top),
            Figure("1 process: GET up-to-date", polls([first], files, member, seconds), one_top),
            Figure("1 process: POST updated", writes([first], member, "m1-", seconds), one_top),
            Figure(two_top, ceiling(both, files, seconds), two_top),
            Figure("2 processes: GET up-to-date", polls(both, files, member, seconds), two_top),
            Figure("2 processes: POST updated", writes(both, member, "m2-", seconds), two_top),
        ]
        run_rounds(figures, args.rounds)
        latencies = asyncio.run(cross_process(first, second, member, args.samples))
    files.close()
    scale_poll = figures[4].rate / figures[1].rate
    scale_write = figures[5].rate / figures[2].rate
    verdict = "met" if latencies.p99 < CROSS_PROCESS_P99_GOAL_MS else "NOT met"
    return [
        *table(figures),
        f"  2 processes / 1 process: poll x{scale_poll:.2f}, write x{scale_write:.2f}"
        " (the second process shares core 1 with wrk and PostgreSQL)",
        "  notification, write on one process -> subscriber on the other"
        f" (goal p99 < {CROSS_PROCESS_P99_GOAL_MS:g} ms after the answer: {verdict}):",
        f"    {latencies.summary()}",
    ]


async def cross_process(
    writer: LocalServer, reader: LocalServer, member: BenchMember, samples: int
) -> Latencies:
    async with aiohttp.ClientSession() as session:
        return await notification_latencies(
            session, writer.url, reader.url, member, "crossprocess", samples
        )


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = arguments(__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="notification samples")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    if args.quick:
        args.samples, args.subscribers = 20, [200]
    start(args)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 websockets
    for backend in (backend for backend in (SQLITE, POSTGRESQL) if backend.key in args.backends):
        with fresh_databases(backend.key) as fresh:
            lines = throughput(backend, fresh, args)
            print(f"\n{backend.name} (fsync on):", flush=True)
            print("\n".join(lines), flush=True)
            print("\n".join(subscribers(next(fresh), args)), flush=True)
            if backend is POSTGRESQL:
                print(f"\n{backend.name}, several processes on one database (request log off):")
                print("\n".join(several_processes(next(fresh), args)), flush=True)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
