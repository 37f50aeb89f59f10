"""How much of the machine was the benchmark's during a phase: CPU per component (the service's
event loops apart from its argon2 threads), CPU of foreign processes, and the quiet gate that
waits for those to leave before a phase."""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

from harness.machine import stat_fields
from harness.results import CpuUse
from tests.support.processes import Processes

QUIET_FOREIGN_PCT = 10.0


def _machine_jiffies() -> tuple[int, int]:
    """(busy, all) jiffies of every core since boot."""
    first = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0]
    fields = [int(x) for x in first.split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def _service_jiffies(entry: Path, name: str, total: Counter[str]) -> None:
    """One service process: its event loop (the main thread), granian's Rust threads, and the
    rest, which is the argon2 pool (and under granian the threads handing requests over)."""
    fields = stat_fields(entry / "stat")
    # The process' own figure includes its threads that ended: the whole of it.
    whole = int(fields[11]) + int(fields[12])
    named = 0
    for task in (entry / "task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            task_fields = stat_fields(task / "stat")
            if task.name == entry.name:
                part = f"{name} event loop"
            elif (task / "comm").read_text(encoding="utf-8").startswith("tokio"):
                part = f"{name} server threads (tokio)"
            else:
                continue
            used = int(task_fields[11]) + int(task_fields[12])
            total[part] += used
            named += used
    total[f"{name} threads (argon2)"] += whole - named
    total[f"pid {entry.name}"] += whole


def _our_jiffies(procs: Processes, groups: set[int]) -> Counter[str]:
    """CPU jiffies of the benchmark's processes by component. The load generator, a reaped
    child of this process, shows in this process' cutime/cstime."""
    names = {p.pid: name for name, p in procs.started.items()}
    own = os.getpid()
    total: Counter[str] = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat_fields(entry / "stat")
            pgid = int(fields[2])
            if pgid not in groups:
                continue
            if int(entry.name) == own:
                total["bench"] += int(fields[11]) + int(fields[12])
                total["load generator"] += int(fields[13]) + int(fields[14])
                continue
            name = names.get(pgid, "bench")
            if name.startswith("service"):
                _service_jiffies(entry, name, total)
            else:
                total[name] += sum(int(x) for x in fields[11:15])
    return total


class CpuMeter:
    """Meters the CPU between `__enter__` and `__exit__`; `use` holds the result. Threads that
    ended during the phase are counted in their process' whole only (the service's pools live
    as long as the service)."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.use = CpuUse(
            machine_busy_pct=0.0, foreign_cpu_pct=0.0, cpu_s={}, service_process_cpu_s=[]
        )

    def __enter__(self) -> Self:
        self.groups = self.procs.group_ids()
        self.busy0, self.all0 = _machine_jiffies()
        self.ours0 = _our_jiffies(self.procs, self.groups)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        busy1, all1 = _machine_jiffies()
        ours1 = _our_jiffies(self.procs, self.groups)
        span = max(1, all1 - self.all0)
        used = {k: ours1[k] - self.ours0.get(k, 0) for k in ours1}
        hz = os.sysconf("SC_CLK_TCK")
        per_pid = sorted((v for k, v in used.items() if k.startswith("pid ")), reverse=True)
        used = {k: v for k, v in used.items() if not k.startswith("pid ")}
        foreign = (busy1 - self.busy0) - sum(used.values())
        self.use = CpuUse(
            machine_busy_pct=round(100 * (busy1 - self.busy0) / span, 1),
            foreign_cpu_pct=round(100 * max(0, foreign) / span, 1),
            cpu_s={k: round(v / hz, 2) for k, v in used.items() if v > 0},
            service_process_cpu_s=[round(v / hz, 2) for v in per_pid if v > 0],
        )


def quiet_gate(procs: Processes, max_wait: float) -> tuple[float, float]:
    """Wait (at most max_wait s, in half-second samples) until other processes use under
    QUIET_FOREIGN_PCT % of the machine: it may be shared. Returns (seconds waited, last %)."""
    began = time.monotonic()
    while True:
        with CpuMeter(procs) as meter:
            time.sleep(0.5)
        waited = time.monotonic() - began
        if meter.use.foreign_cpu_pct < QUIET_FOREIGN_PCT or waited >= max_wait:
            return round(waited, 1), meter.use.foreign_cpu_pct
