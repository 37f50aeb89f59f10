"""The run, phase by phase: the argon2 bound, the framework ceiling, logins (closed loop, then
open loop at half their rate), GET, DLR, the overload phase, Redis round trips, Redis memory per
pending verification and logins with few and many pending, the argon2 bound again. Each phase
stores its typed result in the RunResult as soon as it has it."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
import redis

from harness import RESULTS, log
from harness.argon2_bound import measure_argon2
from harness.loader import Loader, LoadOptions
from harness.overload import run_overload
from harness.redis_stats import redis_counts
from harness.results import Insert, Pending, RunResult, RunSettings
from harness.server_rounds import compare_servers
from harness.servers import (
    Service,
    ServiceOptions,
    provider_stats,
    redis_version,
    start_provider,
    start_redis,
    start_service,
    start_trivial,
    wait_provider_idle,
)
from tests.support.processes import Processes
from tests.support.redis_servers import RedisServer


@dataclass(frozen=True)
class RunOptions:
    """Everything the command line decides."""

    quick: bool
    service: ServiceOptions
    servers: list[str]
    rounds: int
    concurrency: int
    http_concurrency: int
    duration: float
    warmup: float
    argon2_seconds: float
    quiet_wait: float
    count_calls: int
    pending_small: int
    pending_mem: int
    pending_big: int
    overload_multiple: float
    overload_duration: float
    overload_warmup: float

    def settings(self) -> RunSettings:
        return RunSettings(
            workers=self.service.workers,
            server=self.servers[0],
            servers=self.servers,
            hash_threads=self.service.hash_threads,
            argon2_profile=self.service.profile,
            concurrency=self.concurrency,
            http_concurrency=self.http_concurrency,
            duration_s=self.duration,
            warmup_s=self.warmup,
            overload_multiple=self.overload_multiple,
            overload_duration_s=self.overload_duration,
        )


def run(opts: RunOptions, procs: Processes, scratch: Path, out: RunResult) -> None:
    """Fills `out` phase by phase, so a failure still leaves the figures measured so far."""
    out.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    cores = os.cpu_count() or 1
    sec, profile, wait = opts.argon2_seconds, opts.service.profile, opts.quiet_wait
    first = measure_argon2(
        procs, cores, seconds=sec, profile=profile, quiet_wait=wait, when="start"
    )
    out.argon2, out.argon2_runs = first, [first]
    redis_server = start_redis(procs)
    try:
        _run_with_redis(opts, procs, scratch, out, redis_server)
    finally:
        redis_server.close()
    procs.stop_all()
    # Again on the idle machine: other users' load comes and goes, the bound is the better one.
    end = measure_argon2(procs, cores, seconds=sec, profile=profile, quiet_wait=wait, when="end")
    out.argon2_runs.append(end)
    if end.hashes_per_s > first.hashes_per_s:
        out.argon2 = end


def _run_with_redis(
    opts: RunOptions, procs: Processes, scratch: Path, out: RunResult, redis_server: RedisServer
) -> None:
    out.machine.redis = redis_version(redis_server)
    provider_url = start_provider(procs)
    loader = Loader(procs, provider_url, opts.quiet_wait)
    primary, *others = opts.servers
    trivial = start_trivial(procs, "trivial_app", primary, opts.service.workers)
    try:
        out.framework_ceiling = loader.run(
            "trivial",
            concurrency=opts.http_concurrency,
            duration=opts.duration,
            warmup=opts.warmup,
            options=LoadOptions(url=trivial),
        )
    finally:
        procs.stop("trivial_app")

    def start(server: str) -> Service:
        name = "service" if server == primary else f"service-{server}"
        return start_service(
            procs,
            opts.service,
            dict(os.environ),
            name=name,
            server=server,
            scratch=scratch,
            redis_url=redis_server.url,
            provider_url=provider_url,
        )

    service = start(primary)
    out.settings.service_processes = service.processes
    loader.service_url = service.url
    if others:
        services = {primary: service.url} | {s: start(s).url for s in others}
        try:
            out.server_rounds = compare_servers(
                procs,
                loader,
                services,
                scratch,
                rounds=opts.rounds,
                workers=opts.service.workers,
                duration=opts.duration,
                warmup=opts.warmup,
                concurrency=opts.concurrency,
                http_concurrency=opts.http_concurrency,
            )
        finally:
            for server in others:
                procs.stop(f"service-{server}")

    _logins_and_reads(opts, loader, scratch, out)
    if out.login is None or not out.login.rps:
        raise RuntimeError("no login rate measured: nothing to overload against")
    out.overload = run_overload(
        loader,
        reference_login_per_s=out.login.load.rps,
        multiple=opts.overload_multiple,
        duration=opts.overload_duration,
        warmup=opts.overload_warmup,
        scratch=scratch,
        records_copy=RESULTS / "overload-requests.json",
    )

    log(f"redis commands: {opts.count_calls} starts then as many verifies, with MONITOR")
    out.redis_commands = asyncio.run(
        redis_counts(
            redis_server.port,
            service.url,
            provider_url,
            opts.count_calls,
            loader.next_number_base(),
        )
    )
    wait_provider_idle(provider_url)
    _pending(opts, loader, service, redis_server, out)
    out.fake_provider = provider_stats(provider_url)


def _logins_and_reads(opts: RunOptions, loader: Loader, scratch: Path, out: RunResult) -> None:
    """Logins at a fixed concurrency (the maximum rate), open loop at half of it, then GET and
    DLR over the verifications the first run approved."""
    d, w = opts.duration, opts.warmup
    ids = scratch / "ids.txt"
    out.login = loader.run(
        "login",
        concurrency=opts.concurrency,
        duration=d,
        warmup=w,
        options=LoadOptions(ids_out=ids, probe=10.0),
    )
    wait_provider_idle(loader.provider_url)
    out.login_half_load = loader.run(
        "login",
        concurrency=opts.concurrency,
        duration=d,
        warmup=w,
        options=LoadOptions(rate=max(1.0, out.login.load.rps / 2), probe=10.0),
    )
    wait_provider_idle(loader.provider_url)
    if not ids.exists() or not ids.read_text(encoding="utf-8").strip():
        raise RuntimeError("the login run approved no verification: nothing to read")
    reads = LoadOptions(ids_file=ids)
    out.get = loader.run(
        "get", concurrency=opts.http_concurrency, duration=d, warmup=w, options=reads
    )
    out.dlr = loader.run(
        "dlr", concurrency=opts.http_concurrency, duration=d, warmup=w, options=reads
    )
    wait_provider_idle(loader.provider_url)


def _insert(env: dict[str, str], redis_url: str, start: int, count: int) -> Insert:
    """bench/pending.py's bulk insert (a script beside this package, with its own pool)."""
    pending = importlib.import_module("pending")
    return msgspec.convert(pending.insert_parallel(env, redis_url, start, count), Insert)


def _pending(
    opts: RunOptions,
    loader: Loader,
    service: Service,
    redis_server: RedisServer,
    out: RunResult,
) -> None:
    """Memory per pending verification, and login with few and with many of them (A-B-A: the
    machine's speed drifts between phases, so the reference is the mean before and after)."""
    d, w, env, url = opts.duration, opts.warmup, service.env, redis_server.url
    small, mem, big = opts.pending_small, opts.pending_mem, opts.pending_big
    client = redis.Redis(port=redis_server.port)
    try:
        client.flushall()
        pend = Pending(small=small, memory_sample=mem, big=big)
        out.pending = pend
        pend.insert_small = _insert(env, url, 0, small)
        pend.keys_after_small = int(client.dbsize())
        out.login_pending_small = loader.run(
            "login", concurrency=opts.concurrency, duration=d, warmup=w
        )
        wait_provider_idle(loader.provider_url)
        used0 = int(client.info("memory")["used_memory"])
        keys0 = int(client.dbsize())
        log(f"inserting {mem} pending verifications for the memory figure")
        pend.insert_memory_sample = _insert(env, url, small, mem)
        used1 = int(client.info("memory")["used_memory"])
        pend.bytes_per_pending = round((used1 - used0) / mem, 1)
        pend.keys_per_pending = round((int(client.dbsize()) - keys0) / mem, 3)
        rest = max(0, big - small - mem)
        log(f"inserting {rest} more pending verifications ({big} in all)")
        pend.insert_rest = _insert(env, url, small + mem, rest)
        inserts = (pend.insert_small, pend.insert_memory_sample, pend.insert_rest)
        pend.pending_total = sum(i.inserted for i in inserts)
        pend.insert_seconds_total = round(sum(i.seconds for i in inserts), 2)
        used = int(client.info("memory")["used_memory"])
        pend.used_memory_mib_after = round(used / 2**20, 1)
        log(f"pending: {pend}")
        out.login_pending_big = loader.run(
            "login", concurrency=opts.concurrency, duration=d, warmup=w
        )
        wait_provider_idle(loader.provider_url)
        client.flushall()
        pend.insert_small_again = _insert(env, url, 0, small)
        out.login_pending_small_again = loader.run(
            "login", concurrency=opts.concurrency, duration=d, warmup=w
        )
        wait_provider_idle(loader.provider_url)
    finally:
        client.close()
