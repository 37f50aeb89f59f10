"""otpservice benchmark: starts everything on loopback, measures, prints one table.

    .venv/bin/python bench/run.py            # the full run (under 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # seconds per phase, 1 000 pending: a smoke test

It starts a real redis-server, the fake MessageFlow provider (bench/provider.py, around
tests/support/fake_provider.py), the trivial Litestar app (bench/trivial_app.py) and
`otpservice serve` in production mode, each as its own process, and drives them from
bench/load.py, another process. `--server both` measures the framework ceiling, logins, GET and
DLR under uvicorn and under granian and compares them. Results go to bench/results/latest.json
(and a timestamped copy) and the table to stdout and bench/results/latest.md; --update-readme
also puts it in bench/README.md. The exit status is 0 when every figure was produced, 1 when one
is missing, whatever the targets say.

This file is the command line only; the harness is bench/harness/ (its __init__ lists it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (str(REPO), str(REPO / "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

from harness import BENCH, RESULTS, log  # noqa: E402
from harness.machine import machine  # noqa: E402
from harness.phases import RunOptions, run  # noqa: E402
from harness.report import figures, table, update_readme  # noqa: E402
from harness.results import RunResult, load, save  # noqa: E402
from harness.servers import ServiceOptions  # noqa: E402
from harness.targets import targets  # noqa: E402

from tests.support.processes import Processes  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per phase, 1 000 pending")
    parser.add_argument("--workers", type=int, default=cores, help="OTP_WORKERS (default: cores)")
    parser.add_argument(
        "--hash-threads",
        type=int,
        default=None,
        help="OTP_HASH_THREADS per worker (default: not set, so the service's own default,"
        " the CPU count)",
    )
    parser.add_argument("--profile", default="default", help="OTP_ARGON2_PROFILE")
    parser.add_argument(
        "--server",
        choices=["uvicorn", "granian", "both"],
        default="uvicorn",
        help="OTP_SERVER of the service and the trivial app; both: the framework ceiling,"
        " logins, GET and DLR under each, compared in rounds (every other phase: uvicorn)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="with --server both: rounds of the comparison, each phase half --duration"
        " (default 3, quick 1)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="logins in flight")
    parser.add_argument(
        "--http-concurrency",
        type=int,
        default=64,
        help="connections for the ceiling, GET and DLR runs",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured s per phase")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument(
        "--overload-multiple",
        type=float,
        default=8.0,
        help="the overload phase offers this many times the login rate measured at"
        " --concurrency (default 8)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each phase, wait up to this many s for other processes to"
        " leave the CPUs (default 20, quick 0)",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="measure nothing: print the table of an earlier run's JSON (e.g. latest.json)",
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="put the table in bench/README.md"
    )
    args = parser.parse_args(argv)
    if args.hash_threads is not None and args.hash_threads < 1:
        parser.error("--hash-threads must be at least 1")
    if not 0 < args.overload_multiple <= 50:
        parser.error("--overload-multiple must be in (0, 50]")
    return args


def options(args: argparse.Namespace) -> RunOptions:
    """The run's settings: the command line, and the quick or full defaults."""
    q = args.quick
    duration = args.duration or (2.0 if q else 12.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if q else 2.0)
    return RunOptions(
        quick=q,
        service=ServiceOptions(
            workers=args.workers, hash_threads=args.hash_threads, profile=args.profile
        ),
        servers=["uvicorn", "granian"] if args.server == "both" else [args.server],
        rounds=args.rounds if args.rounds is not None else (1 if q else 3),
        concurrency=args.concurrency,
        http_concurrency=args.http_concurrency,
        duration=duration,
        warmup=warmup,
        argon2_seconds=1.0 if q else 5.0,
        quiet_wait=args.quiet_wait if args.quiet_wait is not None else (0.0 if q else 20.0),
        count_calls=50 if q else 200,
        pending_small=100 if q else 1_000,
        pending_mem=1_000 if q else 100_000,
        pending_big=1_000 if q else 1_000_000,
        overload_multiple=args.overload_multiple,
        overload_duration=duration,
        overload_warmup=warmup,
    )


def render(path: Path, *, readme: bool) -> int:
    """Print (and with readme, store) the table of an earlier run's JSON again."""
    out = load(path)
    f = figures(out)
    text = table(out, f, targets(f))
    sys.stdout.write(text + "\n")
    if readme:
        update_readme(BENCH / "README.md", text)
    return 0 if not f.missing() and not out.failure else 1


def measure(opts: RunOptions) -> RunResult:
    """Run every phase; whatever happens, every process started is stopped."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    logdir = RESULTS / "logs"
    logdir.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="otp-bench-"))
    procs = Processes(logdir)

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    began = time.monotonic()
    out = RunResult(
        mode="quick" if opts.quick else "full", machine=machine(), settings=opts.settings()
    )
    try:
        run(opts, procs, scratch, out)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        out.failure = "interrupted"
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        out.failure = f"{type(exc).__name__}: {exc}"
    finally:
        procs.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    out.elapsed_s = round(time.monotonic() - began, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(Path(args.render), readme=args.update_readme)
    out = measure(options(args))
    f = figures(out)
    out.figures = f
    out.targets = targets(f)
    text = table(out, f, out.targets)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in ("latest.json", f"{stamp}-{out.mode}.json"):
        save(out, RESULTS / name)
    (RESULTS / "latest.md").write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    if args.update_readme and out.failure is None:
        update_readme(BENCH / "README.md", text)
    missing = f.missing()
    if missing or out.failure:
        sys.stderr.write(f"bench: missing figures: {missing or '-'}; failure: {out.failure}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
