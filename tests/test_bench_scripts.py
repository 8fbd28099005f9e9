"""``make bench`` runs ``bench/protocol_resolve.py`` as a script, which puts ``bench/`` first
on ``sys.path``: no file there may shadow a standard-library module (a ``bench/inspect.py``
once broke every import of ``dataclasses``). The other benchmarks run as modules (``-m``)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def test_no_benchmark_file_shadows_the_standard_library() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    standard = set(sys.stdlib_module_names) | {path.stem for path in stdlib.glob("*.py")}
    shadowing = sorted(path.name for path in BENCH.glob("*.py") if path.stem in standard)
    assert shadowing == []


def test_make_bench_runs_as_a_script() -> None:
    run = subprocess.run(
        [sys.executable, "bench/protocol_resolve.py", "--sizes", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "median ratio" in run.stdout
