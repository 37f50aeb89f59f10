"""Facts about the machine a run measured, and about the processes it started (from /proc)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from pathlib import Path

from harness.results import Machine


def machine() -> Machine:
    """CPU count and model, memory, kernel and Python (Redis' version is added once it runs)."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    mem = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.MULTILINE)
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu_model=model.group(1).strip() if model else platform.processor(),
        memory_gib=round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        kernel=platform.release(),
        python=platform.python_version(),
    )


def stat_fields(path: Path) -> list[str]:
    """The fields of a /proc/<pid>/stat (or task stat) file after the command name: index 0 is
    the state, 2 the process group, 11-14 utime, stime, cutime, cstime."""
    return path.read_text(encoding="utf-8").rsplit(")", 1)[1].split()


def group_members(pgid: int) -> list[int]:
    """Every process of one process group (a server's supervisor and its workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat_fields(entry / "stat")[2]) == pgid:
                    out.append(int(entry.name))
    return out


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process, from /proc/<pid>/status (None once it has gone)."""
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
        found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.MULTILINE)
        if found:
            return round(int(found.group(1)) / 1024, 1)
    return None
