"""Redis round trips and commands per start and per verify: sequential-ish starts, then as many
verifies, counted three ways (INFO stats socket reads, INFO commandstats, and MONITOR, which
names the script of every EVALSHA and tells commands run inside scripts apart)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections import Counter
from typing import Any

import httpx
import redis

from harness.results import RedisCallCounts, RedisCounts
from harness.servers import API_KEY

CONNECTION_SETUP = {"HELLO", "CLIENT", "AUTH", "SELECT", "PING", "READONLY"}
"""Sent once per new connection (or idle health check), not per request."""
BACKGROUND_SCRIPTS = {"record_delivery"}
"""Scripts the send lane runs after the response (the provider accepted: `submitted`)."""
SWEEP_SCRIPT = "lane_sweep"
"""The lane's timer in every process, on no request's path: one pipeline of one script per
shard, so one read per SHARDS scripts; claim renewals are XCLAIM."""
CONCURRENCY = 4
SMS_WAIT_S = 20.0


class Monitor:
    """Redis MONITOR on its own connection: every command with its client, so top-level calls
    and the commands run inside scripts ('lua') are told apart, and EVALSHA named by script."""

    LINE = re.compile(r'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?')

    def __init__(self, port: int, script_names: dict[str, str]) -> None:
        self.port = port
        self.names = script_names
        self.counts: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None

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
        if self.writer is not None:
            self.writer.close()


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Calls per command, and `reads`: the server's socket reads (INFO stats
    total_reads_processed). Each read is one round trip: pipelined commands arrive in one."""
    stats: dict[str, Any] = client.info("commandstats")
    out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    out["reads"] = int(client.info("stats")["total_reads_processed"])
    return out


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    skip = {"info", "config|resetstat", "monitor", "reads"}
    out = {k: after[k] - before.get(k, 0) for k in after if k not in skip}
    return {k: v for k, v in out.items() if v}


def _split(
    counts: Counter[str], before: dict[str, int], after: dict[str, int], calls: int
) -> RedisCallCounts:
    from otpservice.store.keys import SHARDS  # noqa: PLC0415

    top = {k: v for k, v in counts.items() if not k.startswith(("in-script", "setup"))}
    background = sum(
        v for k, v in top.items() if k.startswith("EVALSHA ") and k.split()[1] in BACKGROUND_SCRIPTS
    )
    sweeps = top.pop(f"EVALSHA {SWEEP_SCRIPT}", 0)
    renewals = top.pop("XCLAIM", 0)
    timers = round(sweeps / SHARDS) + renewals
    setup = sum(v for k, v in counts.items() if k.startswith("setup"))
    # Server reads between the two probes: minus the two INFO reads of the closing probe, the
    # connection set-ups, the lane's calls after the response (one read each) and its timers.
    reads = after["reads"] - before["reads"] - 2 - setup - background - timers
    stats = _delta(before, after)
    return RedisCallCounts(
        round_trips_per_call=round(reads / calls, 3),
        commands_on_request_path_per_call=round((sum(top.values()) - background) / calls, 3),
        background_round_trips_per_call=round(background / calls, 3),
        lane_timer_round_trips=timers,
        top_level={k: round(v / calls, 3) for k, v in sorted(top.items())},
        in_script={
            k.split()[1]: round(v / calls, 3)
            for k, v in sorted(counts.items())
            if k.startswith("in-script")
        },
        connection_setup_total={
            k.split()[1]: v for k, v in sorted(counts.items()) if k.startswith("setup")
        },
        commandstats_per_call={k: round(v / calls, 3) for k, v in stats.items()},
        commands_per_call=round(sum(stats.values()) / calls, 2),
    )


async def _wait_sms(http: httpx.AsyncClient, provider_url: str, expected: int) -> None:
    deadline = time.monotonic() + SMS_WAIT_S
    while time.monotonic() < deadline:
        if (await http.get(f"{provider_url}/stats")).json().get("sms", 0) >= expected:
            return
        await asyncio.sleep(0.05)


async def redis_counts(
    redis_port: int, service_url: str, provider_url: str, calls: int, number_base: int
) -> RedisCounts:
    """`calls` starts (CONCURRENCY at a time) with the provider's DLRs off, then as many
    verifies, each set counted alone."""
    from otpservice.store.scripts import SCRIPT_NAMES, script_source  # noqa: PLC0415

    names = {
        hashlib.sha1(script_source(n).encode(), usedforsecurity=False).hexdigest(): n
        for n in SCRIPT_NAMES
    }
    client = redis.Redis(port=redis_port)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    monitor = Monitor(redis_port, names)
    numbers = [f"+48{number_base + i}" for i in range(calls)]
    sem = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{provider_url}/control", json={"dlr": False})  # no webhook traffic now
        sms_before = (await http.get(f"{provider_url}/stats")).json().get("sms", 0)
        await monitor.start()
        try:
            await asyncio.sleep(0.2)
            monitor.take()
            before = commandstats(client)
            ids: list[tuple[str, str]] = []

            async def start(number: str) -> None:
                async with sem:
                    r = await http.post(
                        f"{service_url}/otp/start", json={"to": number}, headers=headers
                    )
                    r.raise_for_status()
                    ids.append((number, r.json()["id"]))

            await asyncio.gather(*(start(n) for n in numbers))
            await _wait_sms(http, provider_url, sms_before + calls)
            await asyncio.sleep(0.5)  # the lane records `submitted` after the provider answers
            after_start = commandstats(client)
            start_counts = monitor.take()
            codes = {}
            for number, vid in ids:
                text = (await http.get(f"{provider_url}/inbox/{number}?wait=5")).text
                found = re.search(r"(?<!\d)(\d{6})(?!\d)", text)
                if found is None:
                    raise RuntimeError(f"no code in the SMS to {number}: {text[:100]!r}")
                codes[vid] = found.group(1)
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
            verify_counts = monitor.take()
        finally:
            await monitor.stop()
            await http.post(f"{provider_url}/control", json={"dlr": True})
    client.close()
    return RedisCounts(
        calls=calls,
        start=_split(start_counts, before, after_start, calls),
        verify=_split(verify_counts, before_verify, after_verify, calls),
    )
