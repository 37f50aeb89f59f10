"""The argon2 bound: hashes per second with every core hashing at the configured cost (a pool
of one process per core, each calling the service's own CodeHasher), and one hash's time on one
core. A login hashes twice, so half the bound is the most logins per second any server can do."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import secrets
import time

from harness import log
from harness.cpu import CpuMeter, quiet_gate
from harness.results import Argon2Run
from tests.support.processes import Processes


def _hash_for(seconds: float, profile: str, pepper: bytes, start_at: float) -> tuple[int, float]:
    """In a pool process: hash for `seconds` from `start_at` (wall clock); (hashes, seconds)."""
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


def argon2_bound(cores: int, seconds: float, profile: str) -> Argon2Run:
    pepper = secrets.token_bytes(32)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(cores, mp_context=context) as pool:
        # One core alone: the time of one hash at the configured cost.
        n1, t1 = pool.submit(_hash_for, seconds / 2, profile, pepper, 0.0).result(timeout=120)
        start_at = time.time() + 1.0
        futures = [pool.submit(_hash_for, seconds, profile, pepper, start_at) for _ in range(cores)]
        results = [f.result(timeout=120) for f in futures]
    rate = sum(n / t for n, t in results)
    return Argon2Run(
        profile=profile,
        processes=cores,
        hashes_per_s=round(rate, 1),
        hash_ms_one_core=round(1000 * t1 / n1, 3),
        hash_ms_all_cores=round(1000 * sum(t / n for n, t in results) / len(results), 3),
        login_bound_per_s=round(rate / 2, 1),
    )


def measure_argon2(
    procs: Processes, cores: int, *, seconds: float, profile: str, quiet_wait: float, when: str
) -> Argon2Run:
    """The bound on the otherwise idle machine (after the quiet gate), with its foreign CPU."""
    log(f"argon2 bound ({when}): {cores} processes x {seconds} s")
    waited, _ = quiet_gate(procs, quiet_wait)
    with CpuMeter(procs) as meter:
        result = argon2_bound(cores, seconds, profile)
    result.when = when
    result.foreign_cpu_pct = meter.use.foreign_cpu_pct
    result.quiet_wait_s = waited
    log(f"argon2: {result}")
    return result
