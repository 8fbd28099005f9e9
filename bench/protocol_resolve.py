"""Benchmark: resolving and verifying streams against the raw libsecp256k1 verify rate.

Run with ``make bench`` (or ``.venv/bin/python bench/protocol_resolve.py``). Every figure is
measured in this run: the baseline is coincurve's ``PublicKey.verify`` on a pre-parsed key,
the floor any resolver must pay once per block. The goal is that the protocol's own overhead
(TLV decoding, two SHA-256 per block, parent/membership/permission checks) keeps resolution
at >= 50% of that rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import coincurve

from ledgersync.protocol import KeyPair, application_path, builders, encode_stream, resolve_stream
from ledgersync.protocol.block import decode_stream_blocks

SIZES = (10, 100, 1_000, 10_000)


def build_stream(blocks: int) -> bytes:
    """A Derive block, then members adding members ([AddMember, PublishKey] each)."""
    device, alice = KeyPair.generate(), KeyPair.generate()
    seed, root = builders.seed_block(device)
    first, xpriv = builders.derive_block(
        device, root, application_path(16, 0), seed.hash(), (alice.public_key, "alice")
    )
    chain = [first]
    issuers = [alice]
    for index in range(blocks - 1):
        newcomer = KeyPair.generate()
        issuer = issuers[index % len(issuers)]
        chain.append(
            builders.add_member_block(
                issuer, chain[-1].hash(), xpriv, newcomer.public_key, f"m{index}"
            )
        )
        if len(issuers) < 8:
            issuers.append(newcomer)
    return encode_stream(chain)


def best_of(repeat: int, function: Callable[..., object], *args: object) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        timings.append(time.perf_counter() - start)
    return min(timings)


def raw_verify_rate(samples: int = 5_000) -> float:
    key = KeyPair.generate()
    public = coincurve.PublicKey(key.public_key)
    digests = [os.urandom(32) for _ in range(samples)]
    signatures = [key.sign(d) for d in digests]

    def run() -> None:
        for digest, signature in zip(digests, signatures, strict=True):
            public.verify(signature, digest, hasher=None)

    return samples / best_of(3, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    baseline = raw_verify_rate()
    print(f"raw libsecp256k1 verify (baseline): {baseline:,.0f} verifications/s\n")
    print(f"{'blocks':>7} {'decode only':>14} {'resolve+verify':>16} {'ratio to raw verify':>20}")
    ratios = []
    for size in args.sizes:
        stream = build_stream(size)
        repeat = 5 if size <= 1_000 else 2
        decode_rate = size / best_of(repeat, decode_stream_blocks, stream)
        resolve_rate = size / best_of(repeat, resolve_stream, stream)
        ratio = resolve_rate / baseline
        ratios.append(ratio)
        print(f"{size:>7} {decode_rate:>10,.0f} b/s {resolve_rate:>12,.0f} b/s {ratio:>19.0%}")
    print(f"\nmedian ratio {statistics.median(ratios):.0%} (goal >= 50%)")


if __name__ == "__main__":
    main()
