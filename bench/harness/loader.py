"""One load run: bench/load.py as a separate process, behind the quiet gate and metered by
CpuMeter, its JSON decoded into a typed Phase."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec

from harness import BENCH, REPO, log
from harness.cpu import CpuMeter, quiet_gate
from harness.machine import group_members, rss_mib
from harness.results import LoadSummary, Phase
from harness.servers import API_KEY, WEBHOOK_SECRET
from tests.support.processes import Processes

NUMBER_BLOCK = 400_000
"""Numbers reserved per login run: +48 601 000 000 + k * NUMBER_BLOCK, each used once."""
NUMBER_BASE = 601_000_000
NUMBER_LIMIT = 8_900_000


@dataclass(frozen=True)
class LoadOptions:
    """Optional arguments of one load.py run."""

    url: str = ""
    """The server under test; empty: the service."""
    rate: float = 0.0
    ids_file: Path | None = None
    ids_out: Path | None = None
    probe: float = 0.0
    records_out: Path | None = None
    max_inflight: int = 0


class Loader:
    """Runs bench/load.py against the service (or `LoadOptions.url`) and the fake provider."""

    def __init__(self, procs: Processes, provider_url: str, quiet_wait: float) -> None:
        self.procs = procs
        self.provider_url = provider_url
        self.service_url = ""
        self.quiet_wait = quiet_wait
        self.blocks = 0

    def next_number_base(self) -> int:
        """The first number of a fresh block of NUMBER_BLOCK numbers."""
        if self.blocks * NUMBER_BLOCK >= NUMBER_LIMIT:
            raise RuntimeError("out of +48 60x numbers for this run")
        self.blocks += 1
        return NUMBER_BASE + (self.blocks - 1) * NUMBER_BLOCK

    def service_rss_mib(self) -> list[float]:
        """RSS of every process of every service (the supervisor and its workers)."""
        sizes = []
        for name, proc in self.procs.started.items():
            if name.startswith("service"):
                sizes += [rss_mib(pid) for pid in sorted(group_members(proc.pid))]
        return [size for size in sizes if size is not None]

    def run(
        self,
        scenario: str,
        *,
        concurrency: int,
        duration: float,
        warmup: float,
        options: LoadOptions | None = None,
    ) -> Phase:
        opts = options or LoadOptions()
        argv = [
            sys.executable,
            str(BENCH / "load.py"),
            f"--scenario={scenario}",
            f"--url={opts.url or self.service_url}",
            f"--inbox={self.provider_url}",
            f"--api-key={API_KEY}",
            f"--webhook-secret={WEBHOOK_SECRET}",
            f"--concurrency={concurrency}",
            f"--duration={duration}",
            f"--warmup={warmup}",
        ]
        if scenario == "login":
            argv.append(f"--number-base={self.next_number_base()}")
        if opts.rate:
            argv.append(f"--rate={opts.rate:.3f}")
        if opts.ids_file:
            argv.append(f"--ids-file={opts.ids_file}")
        if opts.ids_out:
            argv.append(f"--ids-out={opts.ids_out}")
        if opts.probe:
            argv.append(f"--probe-healthz={opts.probe}")
        if opts.records_out:
            argv.append(f"--records-out={opts.records_out}")
        if opts.max_inflight:
            argv.append(f"--max-inflight={opts.max_inflight}")
        waited, foreign_before = quiet_gate(self.procs, self.quiet_wait)
        with CpuMeter(self.procs) as meter:
            done = subprocess.run(
                argv, capture_output=True, timeout=duration + warmup + 90, cwd=REPO, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"load.py {scenario} failed: {done.stderr.decode()[-2000:]}")
        load = msgspec.json.decode(done.stdout, type=LoadSummary)
        use = meter.use
        # The meter also saw the warm-up: scale the count to the metered window.
        ops = load.count * (load.duration_s + warmup) / load.duration_s if load.duration_s else 0
        per_op = {k: round(1000 * v / ops, 3) for k, v in use.cpu_s.items()} if ops else {}
        phase = Phase(
            load=load,
            cpu=use,
            cpu_ms_per_op=per_op,
            service_rss_mib=self.service_rss_mib(),
            quiet_wait_s=waited,
            foreign_cpu_pct_before=foreign_before,
        )
        log(
            f"{scenario}{f' @{opts.rate:.0f}/s' if opts.rate else ''}: {load.rps}/s"
            f" errors={load.errors or '-'} foreign_cpu={use.foreign_cpu_pct}%"
        )
        return phase
