"""Benchmark: the Key Ring API of a pinned ``ledgersync serve``, on SQLite and PostgreSQL.

Run with ``make bench-keyring`` (``ARGS=--quick`` for a smoke run of 1 s rounds). Same set-up
as ``bench/cloudsync.py`` (``bench/harness.py``): the server on core 0, wrk ``-t1 -c64``,
PostgreSQL and this process on core 1, the default request log
on the measured server, the ceiling ``GET /_info`` with the log off in the same round.
Trustchains are built as Ledger Live builds them, with the SDK and a software device.

Measured:

* logins: ``GET /v1/challenge`` (each challenge is signed and stored), and
  ``POST /v1/authenticate`` with challenges fetched and signed ahead of the run (each is
  single-use); a login is one of each, so logins/s = 1 / (1/challenges/s + 1/authentications/s);
* ``GET /v1/trustchain/{id}`` of a trustchain with 10 instances;
* ``PUT /v1/trustchain/{id}/commands`` adding a member: one prepared ``[AddMember,
  PublishKey]`` block per request, round-robin over 256 trustchains, each block chained on
  its trustchain's previous one (the chains are rebuilt from the stored streams every run);
* the raw secp256k1 verify rate (coincurve, in this process): the floor of the routes that
  verify signatures, shown as "signatures": the share of one core the route's
  verifications alone would take at the measured rate.

Goal (issue #16): none of these below 20% of the ceiling without a stated reason.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import aiohttp
from bench.harness import (
    BACKENDS,
    CEILING,
    CONNECTIONS,
    LOG_OFF,
    BenchMember,
    Figure,
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
    ratio_to_ceiling,
    replay,
    run_rounds,
    start,
    table,
)
from bench.protocol_resolve import raw_verify_rate

from ledgersync.protocol import KeyPair, parse_path, read_key, resolve_tree
from ledgersync.protocol.builders import add_member_block
from ledgersync.protocol.challenge import Challenge, member_authentication
from ledgersync.sdk import MemberCredentials, TrustchainMember, TrustchainSDK
from ledgersync.testing import LocalServer

TREE_INSTANCES = 10
#: The rate (requests/s) single-use requests are first prepared for (twice over).
FIRST_GUESS = 1_000
#: Trustchains the AddMember chains are spread over (4 per connection).
CHAIN_OWNERS = 4 * CONNECTIONS


@dataclass(frozen=True)
class Signed:
    """A signature-bound route: how many secp256k1 verifications one request costs."""

    figure: str
    verifications: int
    what: str


SIGNED = (
    Signed("POST /v1/authenticate", 2, "the challenge's server signature and the member's"),
    Signed("PUT commands (AddMember)", 1, "the block's signature"),
)


async def ten_instance_trustchain(url: str) -> BenchMember:
    """A trustchain whose application stream has ``TREE_INSTANCES`` instances."""
    member = await new_member(url)
    async with TrustchainSDK(url, name="bench") as sdk:
        for index in range(TREE_INSTANCES - 1):
            other = MemberCredentials.generate()
            instance = TrustchainMember(other.public_key.hex(), f"instance {index}")
            await sdk.add_member(member.trustchain, member.credentials, instance)
    return member


async def signed_challenges(member: BenchMember, count: int) -> list[Request]:
    """``count`` authentication requests, each answering a fresh challenge."""
    async with aiohttp.ClientSession(member.url) as session:

        async def fetch() -> Request:
            async with session.get("/v1/challenge") as response:
                body = await check_json(response, "GET /v1/challenge")
            challenge = Challenge.decode(bytes.fromhex(body["tlv"]))
            signature = member_authentication(
                challenge, member.credentials.private_key, member.trustchain.root_id
            )
            return Request(
                "POST", "/v1/authenticate", body={"challenge": body["json"], "signature": signature}
            )

        requests: list[Request] = []
        while len(requests) < count:
            batch = min(256, count - len(requests))
            requests += await asyncio.gather(*(fetch() for _ in range(batch)))
    return requests


async def add_member_chain(member: BenchMember, length: int) -> list[Request]:
    """``length`` AddMember requests, each block chained on the previous one, continuing the
    member's stream as the server stores it now."""
    trustchain_id = member.trustchain.root_id
    path_text = member.trustchain.application_path
    async with (
        aiohttp.ClientSession(member.url, headers=member.auth) as session,
        session.get(f"/v1/trustchain/{trustchain_id}") as response,
    ):
        streams = await check_json(response, "GET /v1/trustchain")
    tree = resolve_tree([bytes.fromhex(data) for data in streams.values()])
    path = parse_path(path_text)
    stream = tree.get(path)
    assert stream is not None, "the member's stream is in its tree"
    xpriv = read_key(tree, member.credentials.private_key, path).xpriv
    parent = stream.last_hash
    requests = []
    for index in range(length):
        block = add_member_block(
            member.credentials.key_pair,
            parent,
            xpriv,
            KeyPair.generate().public_key,
            f"bench {stream.height + index}",
        )
        parent = block.hash()
        body = {"path": path_text, "blocks": [block.encode().hex()]}
        requests.append(
            Request("PUT", f"/v1/trustchain/{trustchain_id}/commands", member.token, body)
        )
    return requests


class SingleUse:
    """A measure of single-use requests (challenges, chained blocks) prepared before each run:
    enough for twice the last rate. A run that ran out (its figure would be too low) is done
    again with twice as many."""

    def __init__(
        self,
        server: LocalServer,
        files: RequestFiles,
        seconds: float,
        prepare: Callable[[int], list[Request]],  # how many -> the requests, in sending order
        status: int = 200,
        expect: str = "",
    ) -> None:
        self.server, self.files, self.seconds = server, files, seconds
        self.prepare, self.status, self.expect = prepare, status, expect
        self.rate = float(FIRST_GUESS)

    def __call__(self, _round: int) -> WrkResult:
        for _attempt in range(4):
            count = math.ceil(2 * self.rate * max(1.0, self.seconds))
            requests = self.prepare(count)
            result = replay(
                [self.server], self.files, requests, self.seconds,
                expect=self.expect, status=self.status,
            )  # fmt: skip
            if not result.exhausted_threads:
                break
            self.rate = 2 * len(requests) / self.seconds
        self.rate = result.rate
        return result


def authentications(member: BenchMember) -> Callable[[int], list[Request]]:
    def prepare(count: int) -> list[Request]:
        return asyncio.run(signed_challenges(member, count))

    return prepare


def add_members(owners: Sequence[BenchMember]) -> Callable[[int], list[Request]]:
    """Chains of AddMember blocks, one per trustchain, sent round-robin: a trustchain's next
    block goes out ``len(owners)`` requests after its last one (answered by then: there are
    :data:`CHAIN_OWNERS` trustchains for 64 connections)."""

    def prepare(count: int) -> list[Request]:
        length = math.ceil(count / len(owners))

        async def chains() -> list[list[Request]]:
            return list(await asyncio.gather(*(add_member_chain(m, length) for m in owners)))

        return [request for step in zip(*asyncio.run(chains()), strict=True) for request in step]

    return prepare


async def chain_owners(url: str, count: int) -> list[BenchMember]:
    """Fresh trustchains for the AddMember chains."""
    members: list[BenchMember] = []
    while len(members) < count:
        batch = min(16, count - len(members))
        members += await asyncio.gather(*(new_member(url) for _ in range(batch)))
    return members


def backend_figures(databases: Iterator[str | None], args: argparse.Namespace) -> list[str]:
    files = RequestFiles()
    with (
        bench_server(next(databases), **LOG_OFF) as quiet,
        bench_server(next(databases)) as logged,
    ):
        member = asyncio.run(ten_instance_trustchain(logged.url))
        owners = asyncio.run(chain_owners(logged.url, CHAIN_OWNERS))
        seconds = args.seconds
        challenge = [Request("GET", "/v1/challenge")]
        tree = [Request("GET", f"/v1/trustchain/{member.trustchain.root_id}", member.token)]
        refresh = [Request("GET", "/v1/refresh", member.token)]
        logins = SingleUse(logged, files, seconds, authentications(member), expect='"access_token"')
        # An accepted append answers 204 (no content).
        appends = SingleUse(logged, files, seconds, add_members(owners), status=204)
        # name, measure, what the route costs besides the ceiling's work
        measured: list[tuple[str, Callable[[int], WrkResult], str]] = [
            (
                "GET /v1/challenge",
                looped([logged], files, challenge, seconds, '"tlv"'),
                "a signature per challenge (not stored: its signature and expiry vouch for it)",
            ),
            (
                "POST /v1/authenticate",
                logins,
                "2 secp256k1 checks, an ES256 token, a snapshot read and a durable write"
                " (the challenge recorded as used)",
            ),
            (
                "GET /v1/refresh",
                looped([logged], files, refresh, seconds, '"access_token"'),
                "an ES256 token signed, the member's streams read (a snapshot); the looped token is"
                " remembered (a token not yet seen adds its ES256 verification)",
            ),
            (
                f"GET /v1/trustchain/{{id}}, {TREE_INSTANCES} instances",
                looped([logged], files, tree, seconds, '"m/"'),
                "one snapshot read, checked streams from the cache, the token remembered",
            ),
            (
                "PUT commands (AddMember)",
                appends,
                "a snapshot read, the new blocks checked, a group-committed append",
            ),
        ]
        figures = [
            Figure(CEILING, ceiling([quiet], files, seconds), CEILING),
            *(Figure(name, measure, CEILING, why=why) for name, measure, why in measured),
        ]
        run_rounds(figures, args.rounds)
    files.close()
    return [*table(figures), *login_lines(figures), *signature_lines(figures)]


def login_lines(figures: Sequence[Figure]) -> list[str]:
    by_name = {figure.name: figure for figure in figures}
    challenge, authenticate = by_name["GET /v1/challenge"], by_name["POST /v1/authenticate"]
    if not challenge.rate or not authenticate.rate:
        return [
            f"  {'login (challenge + authenticate)':<40} not measured: a route answered nothing"
        ]
    logins = 1 / (1 / challenge.rate + 1 / authenticate.rate)
    ratio = 1 / (
        1 / ratio_to_ceiling(challenge, figures) + 1 / ratio_to_ceiling(authenticate, figures)
    )
    why = "  < 20%: the two routes' costs added" if ratio < 0.2 else ""
    return [
        f"  {'login (challenge + authenticate)':<40} {logins:8,.0f} {ratio:8.0%}"
        f" {'':>7} {'':>7}{why}  (one core doing both in turn)"
    ]


def signature_lines(figures: Sequence[Figure]) -> list[str]:
    verify = raw_verify_rate()
    lines = [f"  raw secp256k1 verify (coincurve, the floor): {verify:,.0f}/s"]
    by_name = {figure.name: figure for figure in figures}
    for signed in SIGNED:
        share = by_name[signed.figure].rate * signed.verifications / verify
        lines.append(
            f"  {signed.figure}: {signed.verifications} verification(s) per request"
            f" ({signed.what}) = {share:.0%} of the core at the measured rate"
        )
    return lines


def main() -> None:
    args = arguments(__doc__.split("\n")[0]).parse_args()
    start(args)
    for backend in args.backends:
        with fresh_databases(backend) as databases:
            lines = backend_figures(databases, args)
        print(f"\n{BACKENDS[backend]} (fsync on):\n" + "\n".join(lines), flush=True)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
