"""The benchmark's harness: what bench/run.py drives, one concern per module.

    results.py       every result as a typed msgspec Struct; the results JSON is their encoding
    machine.py       facts about the machine, and the processes of a group (/proc)
    cpu.py           CPU per component of the benchmark, foreign CPU, the quiet gate
    servers.py       Redis, the fake provider, the trivial app and the service, started through
                     tests/support/processes.py; the service's production environment
    loader.py        one run of bench/load.py (a separate process), metered
    argon2_bound.py  the argon2 bound: every core hashing
    redis_stats.py   Redis round trips and commands per start and per verify (INFO, MONITOR)
    phases.py        the run, phase by phase
    overload.py      the overload phase: open-loop logins at a multiple of the measured rate
    server_rounds.py uvicorn against granian in alternating rounds (`--server both`)
    report.py        the figures from the results; the table; the README block
    targets.py       the targets, each figure against its reference from the same run
    overload_report.py the overload phase's rows of the table
    comparison.py    the server comparison's table

Every module imports `tests.support` and `otpservice` from the repository root, which run.py
puts on sys.path.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"


def log(message: str) -> None:
    """One progress line on stderr (stdout carries the table)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
