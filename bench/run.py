"""otpservice benchmark: starts everything on loopback, measures, prints one table.

    .venv/bin/python bench/run.py            # the full run (under 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # seconds per phase, 1 000 pending: a smoke test

It starts a real redis-server, the fake MessageFlow provider (tests/support/fake_provider.py), the
trivial Litestar app (bench/trivial_app.py) and `otpservice serve` in production mode, each as its
own process, and drives them from bench/load.py, another process. `--server both` measures the
framework ceiling, logins, GET and DLR under uvicorn and under granian and compares them. Results
go to bench/results/latest.json (and a timestamped copy) and the table to stdout and
bench/results/latest.md; --update-readme also puts it in bench/README.md. The exit status is 0
when every figure was produced, 1 when one is missing, whatever the targets say.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
for path in (str(REPO), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

import httpx  # noqa: E402
import redis  # noqa: E402

from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import Processes  # noqa: E402
from tests.support.redis_servers import RedisServer, find_server_binary  # noqa: E402

API_KEY = "bench_" + secrets.token_urlsafe(24)
WEBHOOK_SECRET = secrets.token_urlsafe(24)
PEPPER = "base64:" + base64.b64encode(secrets.token_bytes(32)).decode()
NUMBER_BLOCK = 400_000  # numbers reserved per load run: +48 601 000 000 + k * NUMBER_BLOCK
README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- processes ----------------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process, from /proc/<pid>/status (None once it has gone)."""
    with contextlib.suppress(OSError):
        found = re.search(
            r"^VmRSS:\s*(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE
        )
        if found:
            return round(int(found.group(1)) / 1024, 1)
    return None


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    out.append(int(entry.name))
    return out


# --- CPU accounting: how much of the machine was ours during a phase -----------------------------


def _machine_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def _stat_fields(path: Path) -> list[str]:
    return path.read_text().rsplit(")", 1)[1].split()


def _our_jiffies(procs: Processes, groups: set[int]) -> Counter[str]:
    """CPU jiffies of the benchmark's processes by component. The service's argon2 threads
    are counted apart; the load generator, a reaped child of this process, shows in its
    cutime/cstime."""
    names = {p.pid: name for name, p in procs.started.items()}
    own = os.getpid()
    total: Counter[str] = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(entry / "stat")
            pgid = int(fields[2])
            if pgid not in groups:
                continue
            pid = int(entry.name)
            if pid == own:
                total["bench"] += int(fields[11]) + int(fields[12])
                total["load generator"] += int(fields[13]) + int(fields[14])
                continue
            name = names.get(pgid, "bench")
            if name.startswith("service"):
                # The process' own figure includes its threads that ended: the whole of it.
                whole = int(fields[11]) + int(fields[12])
                named = 0
                for task in (entry / "task").iterdir():
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        tf = _stat_fields(task / "stat")
                        # The main thread runs the event loop; granian's Rust runtime threads
                        # are named tokio-*; the rest is the argon2 pool (and under granian,
                        # the threads that hand requests to the loop).
                        if task.name == entry.name:
                            part = f"{name} event loop"
                        elif (task / "comm").read_text().startswith("tokio"):
                            part = f"{name} server threads (tokio)"
                        else:
                            continue
                        total[part] += int(tf[11]) + int(tf[12])
                        named += int(tf[11]) + int(tf[12])
                total[f"{name} threads (argon2)"] += whole - named
                total[f"pid {pid}"] += whole
            else:
                total[name] += sum(int(x) for x in fields[11:15])
    return total


class CpuMeter:
    """Share of all cores busy with processes that are not the benchmark's (other users), and
    the CPU seconds each of the benchmark's components used (threads that ended during the
    phase are not counted: the service's pools live as long as the service)."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs

    def __enter__(self) -> Self:
        self.groups = self.procs.group_ids()
        self.busy0, self.all0 = _machine_jiffies()
        self.ours0 = _our_jiffies(self.procs, self.groups)
        return self

    def __exit__(self, *exc: object) -> None:
        busy1, all1 = _machine_jiffies()
        ours1 = _our_jiffies(self.procs, self.groups)
        span = max(1, all1 - self.all0)
        used = {k: ours1[k] - self.ours0.get(k, 0) for k in ours1}
        hz = os.sysconf("SC_CLK_TCK")
        # Per service process: shows how evenly the kernel spread connections over workers.
        per_pid = sorted((v for k, v in used.items() if k.startswith("pid ")), reverse=True)
        self.service_process_cpu_s = [round(v / hz, 2) for v in per_pid if v > 0]
        used = {k: v for k, v in used.items() if not k.startswith("pid ")}
        self.cpu_s = {k: round(v / hz, 2) for k, v in used.items() if v > 0}
        self.busy_pct = round(100 * (busy1 - self.busy0) / span, 1)
        foreign = (busy1 - self.busy0) - sum(used.values())
        self.foreign_pct = round(100 * max(0, foreign) / span, 1)


QUIET_FOREIGN_PCT = 10.0


def quiet_gate(procs: Processes, max_wait: float) -> tuple[float, float]:
    """Wait (at most max_wait s) until other processes use under QUIET_FOREIGN_PCT % of the
    machine over one second: this machine may be shared. Returns (seconds waited, last %)."""
    began = time.monotonic()
    foreign = -1.0
    while True:
        with CpuMeter(procs) as meter:
            time.sleep(0.5)
        foreign = meter.foreign_pct
        waited = time.monotonic() - began
        if foreign < QUIET_FOREIGN_PCT or waited >= max_wait:
            return round(waited, 1), foreign


# --- argon2 bound --------------------------------------------------------------------------------


def _hash_for(seconds: float, profile: str, pepper: bytes, start_at: float) -> tuple[int, float]:
    from otpservice.hashing import CodeHasher  # noqa: PLC0415
    from otpservice.settings import ARGON2_PROFILES, Secret  # noqa: PLC0415

    hasher = CodeHasher(ARGON2_PROFILES[profile], Secret(pepper), 1)
    salt = os.urandom(16)
    hasher.hash_code("123456", salt)  # warm: allocator, cffi
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    count = 0
    while time.perf_counter() - began < seconds:
        hasher.hash_code(f"{count % 1_000_000:06d}", salt)
        count += 1
    hasher.shutdown()
    return count, time.perf_counter() - began


def argon2_bound(cores: int, seconds: float, profile: str) -> dict[str, Any]:
    pepper = secrets.token_bytes(32)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(cores, mp_context=context) as pool:
        # One core alone: the time of one hash at the configured cost.
        n1, t1 = pool.submit(_hash_for, seconds / 2, profile, pepper, 0.0).result(timeout=120)
        start_at = time.time() + 1.0
        futures = [pool.submit(_hash_for, seconds, profile, pepper, start_at) for _ in range(cores)]
        results = [f.result(timeout=120) for f in futures]
    rate = sum(n / t for n, t in results)
    return {
        "profile": profile,
        "processes": cores,
        "hashes_per_s": round(rate, 1),
        "hash_ms_one_core": round(1000 * t1 / n1, 3),
        "hash_ms_all_cores": round(1000 * sum(t / n for n, t in results) / len(results), 3),
        "login_bound_per_s": round(rate / 2, 1),
    }


# --- the load generator --------------------------------------------------------------------------


class Loader:
    def __init__(self, procs: Processes, service_url: str, inbox_url: str, scratch: Path) -> None:
        self.procs = procs
        self.service_url = service_url
        self.inbox_url = inbox_url
        self.scratch = scratch
        self.blocks = 0
        self.quiet_wait = 0.0

    def _service_rss_mib(self) -> list[float]:
        """RSS of every process of the service (the server's supervisor and its workers), right
        after a phase."""
        sizes = []
        for name, proc in self.procs.started.items():
            if name.startswith("service"):
                sizes += [rss_mib(pid) for pid in sorted(group_members(proc.pid))]
        return [size for size in sizes if size is not None]

    def run(
        self,
        scenario: str,
        *,
        url: str | None = None,
        concurrency: int,
        duration: float,
        warmup: float,
        rate: float = 0.0,
        ids_file: Path | None = None,
        ids_out: Path | None = None,
        probe: float = 0.0,
    ) -> dict[str, Any]:
        argv = [
            sys.executable,
            str(BENCH / "load.py"),
            "--scenario",
            scenario,
            "--url",
            url or self.service_url,
            "--inbox",
            self.inbox_url,
            f"--api-key={API_KEY}",
            f"--webhook-secret={WEBHOOK_SECRET}",
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
        ]
        if scenario == "login":
            if self.blocks * NUMBER_BLOCK >= 8_900_000:
                raise RuntimeError("out of +48 60x numbers for this run")
            argv += ["--number-base", str(601_000_000 + self.blocks * NUMBER_BLOCK)]
            self.blocks += 1
        if rate:
            argv += ["--rate", f"{rate:.3f}"]
        if ids_file:
            argv += ["--ids-file", str(ids_file)]
        if ids_out:
            argv += ["--ids-out", str(ids_out)]
        if probe:
            argv += ["--probe-healthz", str(probe)]
        waited, foreign_before = quiet_gate(self.procs, self.quiet_wait)
        with CpuMeter(self.procs) as meter:
            done = subprocess.run(
                argv, capture_output=True, timeout=duration + warmup + 90, cwd=REPO, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"load.py {scenario} failed: {done.stderr.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        result["machine_busy_pct"] = meter.busy_pct
        result["foreign_cpu_pct"] = meter.foreign_pct
        result["cpu_s"] = meter.cpu_s
        result["service_process_cpu_s"] = meter.service_process_cpu_s
        result["service_rss_mib"] = self._service_rss_mib()
        window = result["duration_s"] + warmup  # the meter also saw the warm-up
        ops = result["count"] * window / result["duration_s"] if result["duration_s"] else 0
        result["cpu_ms_per_op"] = (
            {k: round(1000 * v / ops, 3) for k, v in meter.cpu_s.items()} if ops else {}
        )
        result["quiet_wait_s"] = waited
        result["foreign_cpu_pct_before"] = foreign_before
        log(
            f"{scenario}{f' @{rate:.0f}/s' if rate else ''}: {result['rps']}/s"
            f" errors={result['errors'] or '-'} foreign_cpu={meter.foreign_pct}%"
        )
        return result


# --- Redis: commands per request ------------------------------------------------------------------


class Monitor:
    """Redis MONITOR: every command with its client, so top-level calls (round trips) and the
    commands run inside scripts ('lua') are told apart, and EVALSHA named by script."""

    LINE = re.compile(r'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?')

    def __init__(self, port: int, script_names: dict[str, str]) -> None:
        self.port = port
        self.names = script_names
        self.counts: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"MONITOR\r\n")
        await writer.drain()
        if not (await reader.readline()).startswith(b"+OK"):
            raise RuntimeError("MONITOR refused")
        self.writer = writer
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = (await reader.readline()).decode(errors="replace")
            if not line:
                return
            match = self.LINE.match(line)
            if not match:
                continue
            source, command, first = match.groups()
            command = command.upper()
            if command in {"INFO", "CONFIG"}:
                continue  # the benchmark's own probes
            if source == "lua":
                self.counts[f"in-script {command}"] += 1
            elif command in CONNECTION_SETUP:
                self.counts[f"setup {command}"] += 1
            elif command == "EVALSHA":
                self.counts[f"EVALSHA {self.names.get(first or '', first)}"] += 1
            else:
                self.counts[command] += 1

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.writer.close()


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Calls per command, and `reads`: the server's socket reads (INFO stats
    total_reads_processed). Each read is one round trip: pipelined commands arrive in one."""
    stats = client.info("commandstats")
    out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    out["reads"] = int(client.info("stats")["total_reads_processed"])
    return out


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    skip = {"info", "config|resetstat", "monitor", "reads"}
    out = {k: after[k] - before.get(k, 0) for k in after if k not in skip}
    return {k: v for k, v in out.items() if v}


# Sent once per new connection (or idle health check), not per request.
CONNECTION_SETUP = {"HELLO", "CLIENT", "AUTH", "SELECT", "PING", "READONLY"}
# Scripts the send lane runs after the response (the provider accepted: status `submitted`).
BACKGROUND_SCRIPTS = {"record_delivery"}
# The lane's own timers in every process, on no request's path: the sweep (one pipeline of one
# script per shard, so one read per LANE_SHARDS scripts) and the renewal of claims (XCLAIM).
SWEEP_SCRIPT = "lane_sweep"


async def redis_counts(
    redis_port: int, service_url: str, inbox_url: str, calls: int, number_base: int
) -> dict[str, Any]:
    from otpservice.store.scripts import SCRIPT_NAMES, script_source  # noqa: PLC0415

    names = {hashlib.sha1(script_source(n).encode()).hexdigest(): n for n in SCRIPT_NAMES}  # noqa: S324
    client = redis.Redis(port=redis_port)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    monitor = Monitor(redis_port, names)
    numbers = [f"+48{number_base + i}" for i in range(calls)]
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{inbox_url}/control", json={"dlr": False})  # no webhook traffic now
        sms_before = (await http.get(f"{inbox_url}/stats")).json().get("sms", 0)
        await monitor.start()
        try:
            await asyncio.sleep(0.2)
            monitor.take()
            before = commandstats(client)
            ids: list[tuple[str, str]] = []
            sem = asyncio.Semaphore(4)

            async def start(number: str) -> None:
                async with sem:
                    r = await http.post(
                        f"{service_url}/otp/start", json={"to": number}, headers=headers
                    )
                    r.raise_for_status()
                    ids.append((number, r.json()["id"]))

            await asyncio.gather(*(start(n) for n in numbers))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                sent = (await http.get(f"{inbox_url}/stats")).json().get("sms", 0)
                if sent - sms_before >= calls:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the lane records `submitted` after the provider answers
            after_start = commandstats(client)
            start_mon = monitor.take()
            codes = {}
            for number, vid in ids:
                text = (await http.get(f"{inbox_url}/inbox/{number}?wait=5")).text
                codes[vid] = re.search(r"(?<!\d)(\d{6})(?!\d)", text).group(1)  # type: ignore[union-attr]
            await asyncio.sleep(0.2)
            monitor.take()
            before_verify = commandstats(client)

            async def verify(vid: str) -> None:
                async with sem:
                    r = await http.post(
                        f"{service_url}/otp/verify",
                        json={"id": vid, "code": codes[vid]},
                        headers=headers,
                    )
                    if not (r.status_code == 200 and r.json()["valid"]):
                        raise RuntimeError(f"verify failed: {r.status_code} {r.text[:200]}")

            await asyncio.gather(*(verify(v) for v in codes))
            await asyncio.sleep(0.5)
            after_verify = commandstats(client)
            verify_mon = monitor.take()
        finally:
            await monitor.stop()
            await http.post(f"{inbox_url}/control", json={"dlr": True})
    client.close()

    def split(
        counts: Counter[str], before: dict[str, int], after: dict[str, int]
    ) -> dict[str, Any]:
        top = {k: v for k, v in counts.items() if not k.startswith(("in-script", "setup"))}
        from otpservice.store.keys import LANE_SHARDS  # noqa: PLC0415

        background = sum(
            v
            for k, v in top.items()
            if k.startswith("EVALSHA ") and k.split()[1] in BACKGROUND_SCRIPTS
        )
        sweeps = top.pop(f"EVALSHA {SWEEP_SCRIPT}", 0)
        renewals = top.pop("XCLAIM", 0)
        timers = round(sweeps / LANE_SHARDS) + renewals
        setup = sum(v for k, v in counts.items() if k.startswith("setup"))
        # Server reads between the two probes: minus the two INFO reads of the closing probe,
        # the connection set-ups, the lane's calls after the response (one read each) and its
        # timers.
        reads = after["reads"] - before["reads"] - 2 - setup - background - timers
        return {
            "round_trips_per_call": round(reads / calls, 3),
            "commands_on_request_path_per_call": round((sum(top.values()) - background) / calls, 3),
            "background_round_trips_per_call": round(background / calls, 3),
            "lane_timer_round_trips": timers,
            "top_level": {k: round(v / calls, 3) for k, v in sorted(top.items())},
            "in_script": {
                k.split()[1]: round(v / calls, 3)
                for k, v in sorted(counts.items())
                if k.startswith("in-script")
            },
            "connection_setup_total": {
                k.split()[1]: v for k, v in sorted(counts.items()) if k.startswith("setup")
            },
        }

    start_cs = _delta(before, after_start)
    verify_cs = _delta(before_verify, after_verify)
    return {
        "calls": calls,
        "start": {
            **split(start_mon, before, after_start),
            "commandstats_per_call": {k: round(v / calls, 3) for k, v in start_cs.items()},
            "commands_per_call": round(sum(start_cs.values()) / calls, 2),
        },
        "verify": {
            **split(verify_mon, before_verify, after_verify),
            "commandstats_per_call": {k: round(v / calls, 3) for k, v in verify_cs.items()},
            "commands_per_call": round(sum(verify_cs.values()) / calls, 2),
        },
    }


# --- the run -------------------------------------------------------------------------------------


def tenant_toml(path: Path) -> None:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    path.write_text(
        f"""# Benchmark tenant: limits raised so that the load is never rate-limited.
[policy.limits]
starts_per_ip_per_minute = 10000000
sends_per_number_per_hour = 5
sends_per_number_per_day = 10

[[tenants]]
name = "bench"
api_key_sha256 = ["{digest}"]
sender = "Bench"
app_name = "Bench"
default_locale = "en"
""",
        encoding="utf-8",
    )


def service_env(
    args: argparse.Namespace,
    *,
    port: int,
    redis_url: str,
    provider_url: str,
    config: Path,
    metrics_dir: Path,
    server: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTP_")}
    env.update(
        OTP_ENV="production",
        OTP_HOST="127.0.0.1",
        OTP_PORT=str(port),
        OTP_REDIS_URL=redis_url,
        OTP_PEPPER=PEPPER,
        OTP_CONFIG_FILE=str(config),
        OTP_PROVIDER="messageflow",
        OTP_MESSAGEFLOW_PRIORITY_BASE_URL=provider_url,
        OTP_MESSAGEFLOW_PRIORITY_API_KEY="bench-api-key",
        OTP_MESSAGEFLOW_PRIORITY_APP_KEY="bench-app-key",
        OTP_MESSAGEFLOW_WEBHOOK_SECRET=WEBHOOK_SECRET,
        OTP_PUBLIC_URL=f"http://127.0.0.1:{port}",
        OTP_ARGON2_PROFILE=args.profile,
        OTP_WORKERS=str(args.workers),
        OTP_SERVER=server,
        OTP_HASH_THREADS=str(args.hash_threads),
        OTP_LOG_LEVEL="WARNING",
    )
    if args.workers > 1:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return env


def wait_quiet(inbox_url: str, timeout: float = 30.0) -> None:
    """Until the fake provider has no DLR left to post and no SMS arrived for 0.3 s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        stats = httpx.get(f"{inbox_url}/stats", timeout=5).json()
        now = (stats.get("sms", 0), stats.get("dlr_queue", 0))
        if now[1] == 0 and now == last:
            return
        last = now
        time.sleep(0.3)
    log("warning: the provider was still busy after the quiet wait")


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "server": args.servers[0],
        "servers": args.servers,
        "hash_threads": args.hash_threads,
        "argon2_profile": args.profile,
        "concurrency": args.concurrency,
        "http_concurrency": args.http_concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
    }


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def run(
    args: argparse.Namespace, procs: Processes, scratch: Path, out: dict[str, Any]
) -> dict[str, Any]:
    """Fills `out` phase by phase, so a failure still leaves the figures measured so far."""
    quick = args.quick
    out |= {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "settings": run_settings(args),
    }
    cores = os.cpu_count() or 1

    out["argon2"] = measure_argon2(procs, cores, args, "start")

    binary = find_server_binary()
    if binary is None:
        raise RuntimeError("no redis-server binary (apt-get install redis-server)")
    redis_server = RedisServer(binary, processes=procs)
    redis_server.start()
    try:
        _run_with_redis(args, procs, scratch, out, redis_server)
    finally:
        redis_server.close()
    procs.stop_all()
    # Again on the idle machine: other users' load comes and goes, the bound is the better one.
    end = measure_argon2(procs, cores, args, "end")
    out["argon2_runs"] = [out["argon2"], end]
    if end["hashes_per_s"] > out["argon2"]["hashes_per_s"]:
        out["argon2"] = end
    return out


def measure_argon2(
    procs: Processes, cores: int, args: argparse.Namespace, when: str
) -> dict[str, Any]:
    log(f"argon2 bound ({when}): {cores} processes x {args.argon2_seconds} s")
    waited, _ = quiet_gate(procs, args.quiet_wait)
    with CpuMeter(procs) as meter:
        result = argon2_bound(cores, args.argon2_seconds, args.profile)
    result["when"] = when
    result["foreign_cpu_pct"] = meter.foreign_pct
    result["quiet_wait_s"] = waited
    log(f"argon2: {result}")
    return result


def start_trivial(args: argparse.Namespace, procs: Processes, name: str, server: str) -> str:
    """The trivial app under `server`, with the service's settings; returns its URL."""
    port = free_port()
    procs.start(
        name,
        [
            sys.executable,
            str(BENCH / "trivial_app.py"),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--server",
            server,
        ],
        ready_url=f"http://127.0.0.1:{port}/",
    )
    return f"http://127.0.0.1:{port}"


def measure_ceiling(
    args: argparse.Namespace, procs: Processes, loader: Loader, server: str
) -> dict[str, Any]:
    """Requests per second of the trivial app under `server`."""
    url = start_trivial(args, procs, "trivial_app", server)
    try:
        return loader.run(
            "trivial",
            url=url,
            concurrency=args.http_concurrency,
            duration=args.duration,
            warmup=args.warmup,
        )
    finally:
        procs.stop("trivial_app")


def compare_servers(
    args: argparse.Namespace,
    procs: Processes,
    loader: Loader,
    services: dict[str, str],
    scratch: Path,
) -> dict[str, Any]:
    """The framework ceiling, logins, GET and DLR under each server, in rounds of shorter phases
    whose order alternates (ABBA...), every server's processes up all along: the machine is
    shared and its speed drifts, so a server is compared with the others minutes apart at most,
    and a burst of foreign load hits one round, not one server. Per round and server: the
    phase's result, and `process`, the name its CPU is counted under."""
    servers = list(services)
    d = max(2.0, args.duration / 2)
    w = min(args.warmup, 1.0)
    trivial = {s: start_trivial(args, procs, f"trivial_app-{s}", s) for s in servers}
    quiet_wait, loader.quiet_wait = loader.quiet_wait, min(loader.quiet_wait, 5.0)
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            result: dict[str, dict[str, Any]] = {s: {} for s in servers}
            log(f"servers compared, round {r + 1}/{args.rounds}: {' then '.join(order)}")
            for s in order:
                phase = loader.run(
                    "trivial",
                    url=trivial[s],
                    concurrency=args.http_concurrency,
                    duration=d,
                    warmup=w,
                )
                result[s]["framework_ceiling"] = phase | {"process": f"trivial_app-{s}"}
            for s in order:
                ids = scratch / f"ids-{s}-{r}.txt"
                phase = loader.run(
                    "login",
                    url=services[s],
                    concurrency=args.concurrency,
                    duration=d,
                    warmup=w,
                    ids_out=ids,
                    probe=10.0,
                )
                result[s]["login"] = phase
                wait_quiet(loader.inbox_url)
                if not ids.exists() or not ids.read_text().strip():
                    raise RuntimeError(f"the login run under {s} approved no verification")
            for scenario in ("get", "dlr"):
                for s in order:
                    result[s][scenario] = loader.run(
                        scenario,
                        url=services[s],
                        concurrency=args.http_concurrency,
                        duration=d,
                        warmup=w,
                        ids_file=scratch / f"ids-{s}-{r}.txt",
                    )
                wait_quiet(loader.inbox_url)
            for s in servers:
                for scenario in ("login", "get", "dlr"):
                    result[s][scenario]["process"] = (
                        "service" if s == servers[0] else f"service-{s}"
                    )
            rounds.append(result)
    finally:
        loader.quiet_wait = quiet_wait
        for s in servers:
            procs.stop(f"trivial_app-{s}")
    return {"servers": servers, "duration_s": d, "warmup_s": w, "rounds": rounds}


def _run_with_redis(
    args: argparse.Namespace,
    procs: Processes,
    scratch: Path,
    out: dict[str, Any],
    redis_server: RedisServer,
) -> None:
    d, w = args.duration, args.warmup
    rclient = redis.Redis(port=redis_server.port)
    out["machine"]["redis"] = "{} {}".format(
        Path(redis_server.binary).name, rclient.info("server")["redis_version"]
    )

    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    procs.start(
        "fake_provider",
        [
            sys.executable,
            "-m",
            "tests.support.fake_provider",
            "--port",
            str(provider_port),
            f"--webhook-secret={WEBHOOK_SECRET}",
        ],
        ready_url=f"{provider_url}/stats",
    )

    loader = Loader(procs, "", provider_url, scratch)
    loader.quiet_wait = args.quiet_wait
    primary, *others = args.servers
    out["framework_ceiling"] = measure_ceiling(args, procs, loader, primary)

    # The service, as in production.
    config = scratch / "bench.toml"
    tenant_toml(config)

    def start_service(server: str) -> tuple[dict[str, str], str]:
        name = "service" if server == primary else f"service-{server}"
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        metrics_dir = scratch / f"metrics-{server}"  # emptied by each service at start
        metrics_dir.mkdir(exist_ok=True)
        env = service_env(
            args,
            port=port,
            redis_url=redis_server.url,
            provider_url=provider_url,
            config=config,
            metrics_dir=metrics_dir,
            server=server,
        )
        procs.service(name, env, timeout=60)
        time.sleep(0.5)
        service_procs = group_members(procs.started[name].pid)
        log(f"service under {server} up on {service_url}: {len(service_procs)} process(es)")
        if server == primary:
            out["settings"]["service_processes"] = len(service_procs)
        return env, service_url

    env, service_url = start_service(primary)
    loader.service_url = service_url
    if others:
        services = {primary: service_url} | {s: start_service(s)[1] for s in others}
        try:
            out["server_rounds"] = compare_servers(args, procs, loader, services, scratch)
        finally:
            for server in others:
                procs.stop(f"service-{server}")

    # Login round trips at a fixed concurrency: the maximum rate.
    ids = scratch / "ids.txt"
    out["login"] = loader.run(
        "login", concurrency=args.concurrency, duration=d, warmup=w, ids_out=ids, probe=10.0
    )
    max_rate = out["login"]["rps"]
    wait_quiet(provider_url)
    # Open loop at half of it.
    out["login_half_load"] = loader.run(
        "login",
        concurrency=args.concurrency,
        duration=d,
        warmup=w,
        rate=max(1.0, max_rate / 2),
        probe=10.0,
    )
    wait_quiet(provider_url)
    if not ids.exists() or not ids.read_text().strip():
        raise RuntimeError("the login run approved no verification: nothing to read")
    out["get"] = loader.run(
        "get", concurrency=args.http_concurrency, duration=d, warmup=w, ids_file=ids
    )
    out["dlr"] = loader.run(
        "dlr", concurrency=args.http_concurrency, duration=d, warmup=w, ids_file=ids
    )

    # Redis commands per start and per verify.
    log(f"redis commands: {args.count_calls} starts then as many verifies, with MONITOR")
    out["redis_commands"] = asyncio.run(
        redis_counts(
            redis_server.port,
            service_url,
            provider_url,
            args.count_calls,
            601_000_000 + loader.blocks * NUMBER_BLOCK,
        )
    )
    loader.blocks += 1
    wait_quiet(provider_url)

    # Pending verifications: memory, and login with few and with many of them.
    import pending  # noqa: PLC0415

    rclient.flushall()
    small, mem, big = args.pending_small, args.pending_mem, args.pending_big
    pend: dict[str, Any] = {"small": small, "memory_sample": mem, "big": big}
    pend["insert_small"] = pending.insert_parallel(env, redis_server.url, 0, small)
    pend["keys_after_small"] = rclient.dbsize()
    out["login_pending_small"] = loader.run(
        "login", concurrency=args.concurrency, duration=d, warmup=w
    )
    wait_quiet(provider_url)
    used0 = int(rclient.info("memory")["used_memory"])
    keys0 = rclient.dbsize()
    log(f"inserting {mem} pending verifications for the memory figure")
    pend["insert_memory_sample"] = pending.insert_parallel(env, redis_server.url, small, mem)
    used1 = int(rclient.info("memory")["used_memory"])
    pend["bytes_per_pending"] = round((used1 - used0) / mem, 1)
    pend["keys_per_pending"] = round((rclient.dbsize() - keys0) / mem, 3)
    rest = max(0, big - small - mem)
    log(f"inserting {rest} more pending verifications ({big} in all)")
    pend["insert_rest"] = pending.insert_parallel(env, redis_server.url, small + mem, rest)
    inserted = sum(
        pend[k]["inserted"] for k in ("insert_small", "insert_memory_sample", "insert_rest")
    )
    pend["pending_total"] = inserted
    pend["insert_seconds_total"] = round(
        sum(pend[k]["seconds"] for k in ("insert_small", "insert_memory_sample", "insert_rest")), 2
    )
    pend["used_memory_mib_after"] = round(int(rclient.info("memory")["used_memory"]) / 2**20, 1)
    log(f"pending: {pend}")
    out["pending"] = pend
    out["login_pending_big"] = loader.run(
        "login", concurrency=args.concurrency, duration=d, warmup=w
    )
    wait_quiet(provider_url)
    # Few pending again (A-B-A): the machine's speed drifts by 10 % or more between phases on
    # a shared host, so the reference is the mean of the runs before and after the big one.
    rclient.flushall()
    pend["insert_small_again"] = pending.insert_parallel(env, redis_server.url, 0, small)
    out["login_pending_small_again"] = loader.run(
        "login", concurrency=args.concurrency, duration=d, warmup=w
    )
    wait_quiet(provider_url)
    out["fake_provider"] = httpx.get(f"{provider_url}/stats", timeout=5).json()
    rclient.close()


# --- figures, targets, table ---------------------------------------------------------------------


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or data.get(key) is None:
            return None
        data = data[key]
    return data


def figures(out: dict[str, Any]) -> dict[str, Any]:
    def rps(phase: str) -> Any:
        value = _get(out, phase, "rps")
        return value or None  # zero successes is no figure

    return {
        "argon2_hashes_per_s": _get(out, "argon2", "hashes_per_s"),
        "argon2_hash_ms": min(
            (
                r["hash_ms_one_core"]
                for r in out.get("argon2_runs", [])
                if r.get("hash_ms_one_core")
            ),
            default=_get(out, "argon2", "hash_ms_one_core"),
        ),
        "framework_ceiling_rps": rps("framework_ceiling"),
        "login_per_s": rps("login"),
        "login_start_p50_ms": _get(out, "login", "calls", "start", "p50_ms"),
        "login_start_p99_ms": _get(out, "login", "calls", "start", "p99_ms"),
        "login_verify_p50_ms": _get(out, "login", "calls", "verify", "p50_ms"),
        "login_verify_p99_ms": _get(out, "login", "calls", "verify", "p99_ms"),
        "login_sms_p50_ms": _get(out, "login", "calls", "inbox", "p50_ms"),
        "login_sms_p99_ms": _get(out, "login", "calls", "inbox", "p99_ms"),
        "healthz_under_load_p99_ms": _get(out, "login", "calls", "healthz", "p99_ms"),
        "half_load_rate": _get(out, "login_half_load", "rate"),
        "half_load_login_per_s": rps("login_half_load"),
        "half_load_start_p50_ms": _get(out, "login_half_load", "calls", "start", "p50_ms"),
        "half_load_start_p99_ms": _get(out, "login_half_load", "calls", "start", "p99_ms"),
        "half_load_verify_p50_ms": _get(out, "login_half_load", "calls", "verify", "p50_ms"),
        "half_load_verify_p99_ms": _get(out, "login_half_load", "calls", "verify", "p99_ms"),
        "cpu_ms_per_login": (
            round(sum(_get(out, "login", "cpu_ms_per_op").values()), 2)
            if _get(out, "login", "cpu_ms_per_op")
            else None
        ),
        "argon2_cpu_share_login": (
            round(
                _get(out, "login", "cpu_ms_per_op", "service threads (argon2)")
                / sum(_get(out, "login", "cpu_ms_per_op").values()),
                3,
            )
            if _get(out, "login", "cpu_ms_per_op", "service threads (argon2)")
            else None
        ),
        "get_rps": rps("get"),
        "dlr_rps": rps("dlr"),
        "redis_round_trips_per_start": _get(out, "redis_commands", "start", "round_trips_per_call"),
        "redis_round_trips_per_verify": _get(
            out, "redis_commands", "verify", "round_trips_per_call"
        ),
        "redis_commands_per_start": _get(out, "redis_commands", "start", "commands_per_call"),
        "redis_commands_per_verify": _get(out, "redis_commands", "verify", "commands_per_call"),
        "bytes_per_pending": _get(out, "pending", "bytes_per_pending"),
        "pending_insert_s": _get(out, "pending", "insert_seconds_total"),
        "login_pending_small_per_s": (
            round((rps("login_pending_small") + rps("login_pending_small_again")) / 2, 2)
            if rps("login_pending_small") and rps("login_pending_small_again")
            else None
        ),
        "login_pending_big_per_s": rps("login_pending_big"),
        **{
            f"{server}_{phase}_rps": _median(
                [_get(r, server, phase, "rps") for r in _get(out, "server_rounds", "rounds")]
            )
            for server in _get(out, "server_rounds", "servers") or []
            for phase in COMPARED
        },
    }


def targets(f: dict[str, Any]) -> list[dict[str, Any]]:
    def ratio(a: Any, b: Any) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    bound = f["argon2_hashes_per_s"]
    h = f["argon2_hash_ms"]
    rows = [
        (
            "login round trips >= 85 % of half the argon2 bound",
            f["login_per_s"],
            bound / 2 if bound else None,
            0.85,
            "ge",
        ),
        (
            "GET /otp/{id} >= 50 % of the framework ceiling",
            f["get_rps"],
            f["framework_ceiling_rps"],
            0.50,
            "ge",
        ),
        (
            "DLR ingestion >= 50 % of the framework ceiling",
            f["dlr_rps"],
            f["framework_ceiling_rps"],
            0.50,
            "ge",
        ),
        (
            "p99 verify at 50 % load <= 3 x argon2 + 20 ms",
            f["half_load_verify_p99_ms"],
            3 * h + 20 if h else None,
            1.0,
            "le",
        ),
        ("Redis round trips per start <= 2", f["redis_round_trips_per_start"], 2, 1.0, "le"),
        ("Redis round trips per verify <= 2", f["redis_round_trips_per_verify"], 2, 1.0, "le"),
        ("Redis memory per pending verification <= 1 KiB", f["bytes_per_pending"], 1024, 1.0, "le"),
        (
            "login with big pending >= 90 % of with small",
            f["login_pending_big_per_s"],
            f["login_pending_small_per_s"],
            0.90,
            "ge",
        ),
    ]
    out = []
    for name, measured, reference, factor, sense in rows:
        r = ratio(measured, reference)
        met = None if r is None else (r >= factor if sense == "ge" else r <= factor)
        out.append(
            {
                "target": name,
                "measured": measured,
                "reference": reference,
                "ratio": r,
                "required": f"{'>=' if sense == 'ge' else '<='} {factor:g}",
                "met": met,
            }
        )
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "MISSING"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(out: dict[str, Any], f: dict[str, Any], t: list[dict[str, Any]]) -> str:
    m = out["machine"]
    s = out["settings"]
    pend = out.get("pending", {})
    rc = out.get("redis_commands", {})

    def p50_99(phase: str, call: str) -> str:
        return (
            f"{_fmt(_get(out, phase, 'calls', call, 'p50_ms'))}/"
            f"{_fmt(_get(out, phase, 'calls', call, 'p99_ms'))} ms"
        )

    argon2_runs = " / ".join(_fmt(r.get("hashes_per_s")) for r in out.get("argon2_runs", []))
    workers = _get(out, "login", "service_process_cpu_s") or []
    rss = _get(out, "login", "service_rss_mib") or []
    rows = [
        (
            "argon2 bound (hashes/s, all cores)",
            _fmt(f["argon2_hashes_per_s"]),
            (
                f"{_fmt(f['argon2_hash_ms'], 2)} ms per hash on one core (best run), "
                f"{_fmt(_get(out, 'argon2', 'hash_ms_all_cores'), 2)} ms with all cores hashing; "
                f"runs at start / end: {argon2_runs}"
            ),
        ),
        (
            "framework ceiling (req/s)",
            _fmt(f["framework_ceiling_rps"]),
            "trivial Litestar GET, same server settings; CPU per request: "
            + _cpu(out.get("framework_ceiling")),
        ),
        (
            f"login round trips/s (c={s['concurrency']})",
            _fmt(f["login_per_s"]),
            (
                f"start {p50_99('login', 'start')}; SMS wait {p50_99('login', 'inbox')}; verify "
                f"{p50_99('login', 'verify')}; /healthz meanwhile {p50_99('login', 'healthz')}"
            ),
        ),
        (
            f"login at 50 % load (open loop, {_fmt(f['half_load_rate'])}/s offered)",
            _fmt(f["half_load_login_per_s"]),
            (
                f"start {p50_99('login_half_load', 'start')}; verify "
                f"{p50_99('login_half_load', 'verify')}"
            ),
        ),
        (
            "CPU per login round trip (ms, all processes)",
            _fmt(f["cpu_ms_per_login"], 1),
            (
                f"{_cpu(out.get('login'))}; CPU s per service process: {workers}; RSS after"
                f" the login run (MiB, supervisor and workers): {rss}"
            ),
        ),
        (
            "share of all CPU spent hashing during the login run",
            _fmt(f["argon2_cpu_share_login"], 3),
            (
                "the login target without the machine's speed drift between phases: "
                "a login rate of 85 % of half the argon2 bound needs this >= 0.85"
            ),
        ),
        (
            "GET /otp/{id} (req/s)",
            _fmt(f["get_rps"]),
            f"{p50_99('get', 'request')}; CPU per request: {_cpu(out.get('get'))}",
        ),
        (
            "DLR ingestion (reports/s)",
            _fmt(f["dlr_rps"]),
            f"one report per POST; {p50_99('dlr', 'request')}; CPU per report: "
            + _cpu(out.get("dlr")),
        ),
        (
            "Redis round trips per start",
            _fmt(f["redis_round_trips_per_start"], 2),
            (
                f"server socket reads; {_scripts(rc.get('start'))}; + "
                f"{_fmt(_get(rc, 'start', 'background_round_trips_per_call'), 2)} after the "
                f"response (lane: submitted); {_fmt(f['redis_commands_per_start'])} commands "
                "incl. inside scripts"
            ),
        ),
        (
            "Redis round trips per verify",
            _fmt(f["redis_round_trips_per_verify"], 2),
            (
                f"{_scripts(rc.get('verify'))}; {_fmt(f['redis_commands_per_verify'])} commands "
                "incl. inside scripts"
            ),
        ),
        (
            "Redis memory per pending verification (bytes)",
            _fmt(f["bytes_per_pending"]),
            (
                f"used_memory delta over {_fmt(pend.get('memory_sample'))}; "
                f"{_fmt(pend.get('keys_per_pending'), 2)} keys each"
            ),
        ),
        (
            f"login/s with {_fmt(pend.get('small'))} pending",
            _fmt(f["login_pending_small_per_s"]),
            (
                "mean of the runs before and after the big one: "
                f"{_fmt(_get(out, 'login_pending_small', 'rps'))} / "
                f"{_fmt(_get(out, 'login_pending_small_again', 'rps'))}; verify "
                f"{p50_99('login_pending_small', 'verify')}"
            ),
        ),
        (
            f"login/s with {_fmt(pend.get('pending_total'))} pending",
            _fmt(f["login_pending_big_per_s"]),
            (
                f"verify {p50_99('login_pending_big', 'verify')}; inserted in "
                f"{_fmt(f['pending_insert_s'])} s (pipelined EVALSHA send_commit); Redis "
                f"{_fmt(pend.get('used_memory_mib_after'))} MiB"
            ),
        ),
    ]
    lines = [
        (
            f"Machine: {m['nproc']} x {m['cpu_model']}, {m.get('memory_gib')} GiB, Linux "
            f"{m['kernel']}, Python {m['python']}, {m.get('redis', '?')}"
        ),
        (
            f"Run: {out['mode']}, {out['started_at']}; service: "
            f"OTP_SERVER={s.get('server', 'uvicorn')}, OTP_WORKERS={s['workers']} "
            f"({s.get('service_processes', '?')} processes), "
            f"OTP_HASH_THREADS={s['hash_threads']}, argon2 profile {s['argon2_profile']}; "
            f"{s['duration_s']:g} s per phase after {s['warmup_s']:g} s warm-up; logins at "
            f"concurrency {s['concurrency']}, other HTTP at {s['http_concurrency']}"
        ),
        "",
        "| figure | value | notes |",
        "|---|---:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "| target | measured | reference | ratio | required | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in t:
        met = "MISSING" if row["met"] is None else ("met" if row["met"] else "**not met**")
        lines.append(
            f"| {row['target']} | {_fmt(row['measured'], 2)} | {_fmt(row['reference'], 2)} | "
            f"{_fmt(row['ratio'], 3)} | {row['required']} | {met} |"
        )
    foreign = {
        k: v.get("foreign_cpu_pct")
        for k, v in out.items()
        if isinstance(v, dict) and "foreign_cpu_pct" in v
    }
    errors = {k: v["errors"] for k, v in out.items() if isinstance(v, dict) and v.get("errors")}
    lines += ["", f"CPU used by other processes on the machine during each phase (%): {foreign}"]
    if errors:
        lines.append(f"Errors by call and status: {errors}")
    if out.get("server_rounds"):
        lines += ["", comparison(out["server_rounds"])]
    return "\n".join(lines)


# Phases measured under every server of `--server both`: key, label, unit, call whose p99 shows.
COMPARED = {
    "framework_ceiling": ("framework ceiling", "req/s", "request"),
    "get": ("GET /otp/{id}", "req/s", "request"),
    "dlr": ("DLR ingestion", "reports/s", "request"),
    "login": ("login round trips", "logins/s", "login"),
}


def _median(values: list[Any]) -> float | None:
    """The median of the values, None when one is missing (a failed phase): no figure."""
    if not values or any(v is None for v in values):
        return None
    return round(statistics.median(values), 3)


def _server_cpu_ms(phase: dict[str, Any] | None) -> float | None:
    """CPU ms per request of the server under test, all its threads (event loop, argon2 pool,
    granian's Rust runtime): its processes are counted under the phase's `process` name."""
    name = (phase or {}).get("process")
    per = (phase or {}).get("cpu_ms_per_op") or {}
    parts = [v for k, v in per.items() if k == name or k.startswith(f"{name} ")]
    return round(sum(parts), 3) if parts else None


def _busiest_worker_pct(phase: dict[str, Any] | None) -> float | None:
    """The busiest service process' share of the service's CPU (50 % = two workers evenly
    loaded): how the server spread the load generator's connections over its workers."""
    per_pid = (phase or {}).get("service_process_cpu_s") or []
    return round(100 * max(per_pid) / sum(per_pid), 1) if sum(per_pid) > 0 else None


def comparison(compared: dict[str, Any]) -> str:
    """Every server side by side: medians over the rounds; ratios are each server's median over
    the first's, and for the rates also the ratio within each round (the pairs ran together)."""
    names: list[str] = compared["servers"]
    rounds: list[dict[str, Any]] = compared["rounds"]
    first = names[0]
    head = ["phase", "figure", *names, *(f"{n} / {first}" for n in names[1:])]
    lines = [
        (
            f"ASGI servers compared: {len(rounds)} round{'s' if len(rounds) != 1 else ''} of"
            f" {compared['duration_s']:g} s phases"
            f" after {compared['warmup_s']:g} s warm-up, order alternating ({' / '.join(names)},"
            " then reversed), every server up all along; medians over the rounds; p99 in ms;"
            " server CPU: ms per request, all the server's processes and threads; every other"
            f" figure above ran under {first}."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 2 + "---:|" * (len(head) - 2),
    ]

    def ratio(a: Any, b: Any) -> str:
        return f"{a / b:.3f}" if a is not None and b else "MISSING"

    for key, (label, unit, call) in COMPARED.items():
        calls = [call, *(("start", "verify", "healthz") if key == "login" else ())]
        rows: list[tuple[str, Any]] = [
            (unit, lambda ph: _get(ph, "rps")),
            *((f"p99 {c}", lambda ph, c=c: _get(ph, "calls", c, "p99_ms")) for c in calls),
            ("server CPU ms", _server_cpu_ms),
            *((("busiest worker %", _busiest_worker_pct),) if key != "framework_ceiling" else ()),
            ("foreign CPU %", lambda ph: _get(ph, "foreign_cpu_pct")),
        ]
        for i, (figure, read) in enumerate(rows):
            per_round = {n: [read(_get(r, n, key)) for r in rounds] for n in names}
            values = [_median(per_round[n]) for n in names]
            cells = [_fmt(v, 3 if figure == "server CPU ms" else 1) for v in values]
            ratios = [
                "" if figure.startswith(("foreign", "busiest")) else ratio(v, values[0])
                for v in values[1:]
            ]
            lines.append(f"| {label if i == 0 else ''} | {figure} | {' | '.join(cells + ratios)} |")
            if i == 0:
                by_round = [
                    ", ".join(
                        ratio(a, b) for a, b in zip(per_round[n], per_round[first], strict=True)
                    )
                    for n in names[1:]
                ]
                lines.append(
                    f"|  | {unit}, each round | "
                    + " | ".join(", ".join(_fmt(v) for v in per_round[n]) for n in names)
                    + f" | {' | '.join(by_round)} |"
                )
    return "\n".join(lines)


def _cpu(phase: dict[str, Any] | None) -> str:
    per = (phase or {}).get("cpu_ms_per_op") or {}
    if not per:
        return "MISSING"
    return (
        ", ".join(
            f"{k} {v:.3g}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.001
        )
        + " ms"
    )


def _scripts(part: dict[str, Any] | None) -> str:
    if not part:
        return "MISSING"
    top = part.get("top_level", {})
    return (
        " + ".join(
            f"{k.removeprefix('EVALSHA ')} {v:g}"
            for k, v in top.items()
            if not k.startswith("EVALSHA record_delivery")
        )
        or "-"
    )


def update_readme(text: str) -> None:
    readme = BENCH / "README.md"
    content = readme.read_text(encoding="utf-8") if readme.exists() else ""
    block = f"{README_START}\n{text}\n{README_END}"
    if README_START in content and README_END in content:
        head, _, rest = content.partition(README_START)
        _, _, tail = rest.partition(README_END)
        content = head + block + tail
    else:
        content += ("\n" if content else "") + block + "\n"
    readme.write_text(content, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per phase, 1 000 pending")
    parser.add_argument("--workers", type=int, default=cores, help="OTP_WORKERS (default: cores)")
    parser.add_argument("--hash-threads", type=int, default=1, help="OTP_HASH_THREADS per worker")
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
    args.servers = ["uvicorn", "granian"] if args.server == "both" else [args.server]
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    q = args.quick
    args.duration = args.duration or (2.0 if q else 12.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if q else 2.0)
    args.argon2_seconds = 1.0 if q else 5.0
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if q else 20.0
    args.count_calls = 50 if q else 200
    args.pending_small = 100 if q else 1_000
    args.pending_mem = 1_000 if q else 100_000
    args.pending_big = 1_000 if q else 1_000_000
    return args


def render(path: Path, *, readme: bool) -> int:
    """Print (and with readme, store) the table of an earlier run's JSON again."""
    out = json.loads(path.read_text(encoding="utf-8"))
    f = figures(out)
    text = table(out, f, targets(f)) + f"\n\nWhole run: {out['elapsed_s']:g} s."
    sys.stdout.write(text + "\n")
    if readme:
        update_readme(text)
    return 0 if all(v is not None for v in f.values()) and not out.get("failure") else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(Path(args.render), readme=args.update_readme)
    RESULTS.mkdir(parents=True, exist_ok=True)
    logdir = RESULTS / "logs"
    logdir.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="otp-bench-"))
    procs = Processes(logdir)

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    began = time.monotonic()
    out: dict[str, Any] = {}
    failure = None
    try:
        run(args, procs, scratch, out)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        failure = "interrupted"
    except Exception as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        procs.stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    if "machine" not in out:
        out |= {
            "mode": "quick" if args.quick else "full",
            "machine": machine(),
            "started_at": "",
            "settings": run_settings(args),
        }
    out["elapsed_s"] = round(time.monotonic() - began, 1)
    out["failure"] = failure
    f = figures(out)
    t = targets(f)
    out["figures"] = f
    out["targets"] = t
    text = table(out, f, t) + f"\n\nWhole run: {out['elapsed_s']:g} s."
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in ("latest.json", f"{stamp}-{out['mode']}.json"):
        (RESULTS / name).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "latest.md").write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    if args.update_readme and failure is None:
        update_readme(text)
    missing = [k for k, v in f.items() if v is None]
    if missing or failure:
        sys.stderr.write(f"bench: missing figures: {missing or '-'}; failure: {failure}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
