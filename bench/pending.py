"""Bulk-inserts pending verifications straight into Redis with the service's own send_commit script.

The arguments come from the service's code, not a copy of it: OtpService._send_request builds the
SendRequest and VerificationStore.send_commit turns it into keys and ARGV, exactly as on a start,
through a store whose script call only captures them. They are then sent as pipelined EVALSHA of
the real send_commit script, with a fixed digest (no argon2: the point is Redis' state, not the
hashing). Each entry is a complete pending verification of the benchmark tenant: record, queued
event, number index and the number's send buckets, with the service's TTLs; its lane entry is
acknowledged and deleted at once, as after the provider took the SMS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import redis

from otpservice.domain.phone import Destination
from otpservice.lane import SendLane
from otpservice.service import OtpService
from otpservice.settings import Settings
from otpservice.store.keys import Keyspace
from otpservice.store.lane_store import LaneStore
from otpservice.store.redis_store import VerificationStore
from otpservice.store.scripts import script_source

FIXED_DIGEST = bytes(range(32))
_CANNED_OK = [b"ok", b"x", b"1", b"0", [], b"0-1"]
_SEALED = bytes(38)  # a sealed 6-digit code's size; the entry is acknowledged at once anyway


class _CapturingStore(VerificationStore):
    """A VerificationStore whose script calls record (keys, args) instead of running."""

    captured: tuple[list[str], list[Any]] = ([], [])

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:  # noqa: ARG002
        self.captured = (list(keys), list(args))
        return _CANNED_OK


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the coroutine suspended")


def pending_number(index: int) -> str:
    """+48 5xx xxx xxx: never one of the load generator's numbers (+48 60x)."""
    return f"+485{index:08d}"


class PendingInserter:
    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=60)
        self.keyspace = Keyspace(settings.pepper)
        self.tenant = settings.tenants[0]
        self.store = _CapturingStore(self.client, self.keyspace, 1.0)  # type: ignore[arg-type]
        # The hasher is never touched by _send_request; the lane only names its consumer.
        lane = SendLane(None, LaneStore(self.store, "bench-pending"))  # type: ignore[arg-type]
        self.service = OtpService(
            settings,
            self.store,
            None,  # type: ignore[arg-type]
            lane,
            settings.provider.name,
        )
        self.sha = self.client.script_load(script_source("send_commit"))

    def args_for(self, index: int) -> tuple[list[str], list[Any]]:
        e164 = pending_number(index)
        number = self.keyspace.number(e164, self.tenant.name)
        request = self.service._send_request(  # noqa: SLF001 - the service's own argument builder
            tenant=self.tenant,
            destination=Destination(e164=e164, region="PL", number_type="MOBILE"),
            mode="number",
            existing="",
            new_rand=self.keyspace.new_rand(),
            sealed_code=_SEALED,
            salt=os.urandom(16),
            digest=FIXED_DIGEST,
            locale="pl",
            app_hash="",
            client_ref="",
        )
        _drive(self.store.send_commit(number, request))
        return self.store.captured

    def insert(
        self, start: int, count: int, batch: int = 2000, time_limit: float = 300.0
    ) -> dict[str, Any]:
        """Insert verifications start..start+count-1; returns counts and seconds."""
        began = time.perf_counter()
        ok = failed = 0
        index = start
        end = start + count
        while index < end:
            if time.perf_counter() - began > time_limit:
                raise TimeoutError(f"bulk insert passed {time_limit} s at {index - start}/{count}")
            pipe = self.client.pipeline(transaction=False)
            stop = min(end, index + batch)
            lanes = []
            for i in range(index, stop):
                keys, args = self.args_for(i)
                lanes.append(keys[1])
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            # Each send is claimed by the script; here nothing sends it, so acknowledge it as a
            # dispatcher would once the provider answered: pending verifications, empty lane.
            acks = self.client.pipeline(transaction=False)
            for lane, reply in zip(lanes, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(reply, list) and reply and reply[0] == b"ok":
                    ok += 1
                    acks.xack(lane, "lane", reply[5])
                    acks.xdel(lane, reply[5])
                else:
                    failed += 1
            acks.execute()
            index = stop
        return {"inserted": ok, "failed": failed, "seconds": round(time.perf_counter() - began, 3)}

    def close(self) -> None:
        self.client.close()


def _insert_range(env: dict[str, str], redis_url: str, start: int, count: int) -> dict[str, Any]:
    from otpservice.settings import load_settings  # noqa: PLC0415

    inserter = PendingInserter(load_settings(env), redis_url)
    try:
        return inserter.insert(start, count)
    finally:
        inserter.close()


def insert_parallel(
    env: dict[str, str], redis_url: str, start: int, count: int, procs: int = 2
) -> dict[str, Any]:
    """Insert `count` pending verifications from index `start`, building ARGV in `procs`
    processes (the Python side costs about as much as the script itself)."""
    import concurrent.futures  # noqa: PLC0415
    import multiprocessing  # noqa: PLC0415

    began = time.perf_counter()
    if count <= 0:
        return {"inserted": 0, "failed": 0, "seconds": 0.0}
    procs = max(1, min(procs, count // 1000 or 1))
    share = -(-count // procs)
    ranges = [(start + i * share, min(share, count - i * share)) for i in range(procs)]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(procs, mp_context=context) as pool:
        futures = [pool.submit(_insert_range, env, redis_url, s, n) for s, n in ranges if n > 0]
        results = [f.result(timeout=600) for f in futures]
    return {
        "inserted": sum(r["inserted"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "seconds": round(time.perf_counter() - began, 3),
    }
