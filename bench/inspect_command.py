"""Benchmark: ``ledgersync inspect`` against Ledger's JavaScript resolver, as whole processes.

Run with ``make bench-inspect`` (or ``.venv/bin/python -m bench.inspect_command``; needs Node.js and
Ledger's packages, installed by ``make interop-deps``). It builds a trustchain of 3,000 blocks
with the project's protocol builders (a root ``[Seed]`` stream, then an application stream
whose members add members, ``[AddMember, PublishKey]`` each), writes it as the JSON object
``GET /v1/trustchain/{id}`` returns, and times, several times each, as subprocesses:

* ``ledgersync inspect FILE`` (start-up, imports, decoding, resolution with every signature
  verified, and the text report), output discarded;
* ``node bench/inspect_resolve.cjs FILE``: Ledger's resolver on the same file (start-up,
  module loading and the resolution of every stream).

It prints the median wall-clock and CPU time of each and their ratios. Goal: inspect >= 20x
faster than Ledger's resolver in wall-clock time.

(Not named ``inspect.py``: the other benchmarks, run as scripts, have this directory first on
``sys.path``, where that name would shadow the standard library's ``inspect``.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ledgersync.protocol import (
    KeyPair,
    application_path,
    builders,
    encode_stream,
    format_path,
)

HERE = Path(__file__).resolve().parent
LEDGER_RESOLVER = HERE / "inspect_resolve.cjs"
LEDGER_PACKAGE = HERE.parent / "tests" / "interop" / "node_modules" / "@ledgerhq"
BLOCKS = 3_000
RUNS = 7
GOAL = 20.0
#: Members that sign AddMember blocks in turn (a tree grows from several instances).
ISSUERS = 8


def build_trustchain(blocks: int) -> dict[str, str]:
    """A tree of ``blocks`` blocks: the root Seed, then one application stream."""
    device, first_member = KeyPair.generate(), KeyPair.generate()
    seed, root_xpriv = builders.seed_block(device)
    path = application_path(16, 0)
    derive, xpriv = builders.derive_block(
        device, root_xpriv, path, seed.hash(), (first_member.public_key, "member 0")
    )
    chain = [derive]
    issuers = [first_member]
    for index in range(1, blocks - 1):
        newcomer = KeyPair.generate()
        issuer = issuers[index % len(issuers)]
        chain.append(
            builders.add_member_block(
                issuer, chain[-1].hash(), xpriv, newcomer.public_key, f"member {index}"
            )
        )
        if len(issuers) < ISSUERS:
            issuers.append(newcomer)
    return {"m/": encode_stream([seed]).hex(), format_path(path): encode_stream(chain).hex()}


@dataclass(frozen=True)
class Timing:
    """Medians over the runs: wall-clock time, and the CPU time (user + system) the process
    used, which a busy machine disturbs less."""

    wall: float
    cpu: float


def time_runs(command: list[str], runs: int) -> Timing:
    """Run ``command`` ``runs`` times (after one warm-up run) and time each run."""
    walls, cpus = [], []
    for run in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()}")
        if run:  # the first run only warms the disk cache
            walls.append(elapsed)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return Timing(statistics.median(walls), statistics.median(cpus))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=BLOCKS)
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    if shutil.which("node") is None or not LEDGER_PACKAGE.is_dir():
        sys.exit("needs node and Ledger's packages: run `make interop-deps` first")
    ledgersync = shutil.which("ledgersync", path=os.path.dirname(sys.executable))
    if ledgersync is None:
        sys.exit("the ledgersync command is not installed next to this Python (pip install -e .)")

    print(f"python {platform.python_version()}, node {node_version()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as directory:
        tree_file = Path(directory) / "trustchain.json"
        tree_file.write_text(json.dumps(build_trustchain(args.blocks)))
        size = tree_file.stat().st_size
        print(f"trustchain: {args.blocks:,} blocks, {size / 1e6:.1f} MB of JSON")
        ours = time_runs([ledgersync, "inspect", str(tree_file)], args.runs)
        theirs = time_runs(["node", str(LEDGER_RESOLVER), str(tree_file)], args.runs)
    print(f"{'median of ' + str(args.runs) + ' runs':26} {'wall':>9} {'CPU':>9}")
    print(f"{'ledgersync inspect':26} {ours.wall * 1000:6.0f} ms {ours.cpu * 1000:6.0f} ms")
    print(f"{'Ledger JS resolver':26} {theirs.wall * 1000:6.0f} ms {theirs.cpu * 1000:6.0f} ms")
    ratio = theirs.wall / ours.wall
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"ratio {ratio:.1f}x in wall time (goal >= {GOAL:.0f}x: {verdict}), ", end="")
    print(f"{theirs.cpu / ours.cpu:.1f}x in CPU time")


def node_version() -> str:
    return subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


if __name__ == "__main__":
    main()
