"""Bulk-inserts pending verifications straight into Redis with the service's own send_commit script.

The arguments come from the service's code, not a copy of it: the use cases are wired by the
service's own `Services` (so a change of their constructors needs no change here), then the
start use case builds the request and RedisVerifications.send_commit turns it into keys and ARGV,
exactly as on a start, through a store client whose script calls only capture them (the
pre-check is answered "new", the fraud guard, if the tenant runs it, "allow"). They are then sent
as pipelined EVALSHA of the real send_commit script, with a fixed digest (no argon2: the point is
Redis' state, not the hashing). Each entry is a complete pending verification of the
benchmark tenant: record, queued event and the number's send buckets, with the service's TTLs;
its lane entry is acknowledged and deleted at once, as after the provider took the SMS.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from otpservice.lane import SendJob
from otpservice.providers.factory import build_gateway
from otpservice.services import Services
from otpservice.settings import Settings
from otpservice.store.schema import LANE_GROUP, RECORD
from otpservice.store.scripts import script_source

FIXED_DIGEST = bytes(range(32))
_NEW = [b"new", 0, b"", 0, b""]
# A reply send_commit could give: enough for the use case to finish (its view, its SMS).
_RECORD = [
    field.encode() if isinstance(field, str) else field
    for name, value in {
        "rand": b"x", "tenant": b"bench", "to": b"+48500000000", "region": b"PL",
        "status": b"pending", "created_ms": b"0", "expires_ms": b"600000", "attempts_left": b"5",
        "sends": b"1", "max_sends": b"5", "next_resend_ms": b"0", "delivery_status": b"queued",
        "delivery_updated_ms": b"0",
    }.items()
    for field in (RECORD[name], value)
]  # fmt: skip
_CANNED_OK = [b"ok", 0, 1, 0, _RECORD, b"0-1"]
_ALLOW = [b"allow", b"", 0, 0, b"", 0, 0]


class _CapturingClient:
    """Stands in for the StoreClient's script calls: records (keys, args) of send_commit
    instead of running it, and answers the calls before it as for a new number."""

    def __init__(self) -> None:
        self.captured: tuple[list[str], list[Any]] = ([], [])

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if name == "send_commit":
            self.captured = (list(keys), list(args))
            return _CANNED_OK
        return {"rate_take": 0, "send_check": _NEW, "fraud_check": _ALLOW}.get(name, 0)

    async def scripts(self, operation: str, calls: Sequence[Any]) -> list[Any]:  # noqa: ARG002
        return [await self.script(name, keys, args) for name, keys, args in calls]


class _FixedHasher:
    @contextlib.contextmanager
    def admit(self, operation: str) -> Iterator[None]:  # noqa: ARG002
        yield

    async def hash_code_async(self, code: str, salt: bytes) -> bytes:  # noqa: ARG002
        return FIXED_DIGEST


class _NoLane:
    def enqueue(self, job: SendJob) -> None:
        pass


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
        self.tenant = settings.tenants[0]
        self.capture = _CapturingClient()
        # The service's wiring; its Redis client is never used (every script call is captured),
        # nor are its gateway and argon2 pool (the hasher and the lane are replaced).
        self.services = Services(settings, AsyncRedis.from_url(redis_url), build_gateway(settings))
        store = self.services.store
        store.script = self.capture.script  # type: ignore[method-assign]
        store.scripts = self.capture.scripts  # type: ignore[method-assign]
        self.sending = self.services.sending
        self.sending.hasher = _FixedHasher()  # type: ignore[assignment]
        self.sending.queue = _NoLane()
        self.sha = self.client.script_load(script_source("send_commit"))

    def args_for(self, index: int) -> tuple[list[str], list[Any]]:
        _drive(
            self.sending.start(
                self.tenant,
                to=pending_number(index),
                locale="pl",
                app_hash=None,
                client_ref=None,
                client_ip=f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}",
            )
        )
        return self.capture.captured

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
                lanes.append(keys[2])
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            # Each send is claimed by the script; here nothing sends it, so acknowledge it as a
            # dispatcher would once the provider answered: pending verifications, empty lane.
            acks = self.client.pipeline(transaction=False)
            for lane, reply in zip(lanes, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(reply, list) and reply and reply[0] == b"ok":
                    ok += 1
                    acks.xack(lane, LANE_GROUP, reply[5])
                    acks.xdel(lane, reply[5])
                else:
                    failed += 1
            acks.execute()
            index = stop
        return {"inserted": ok, "failed": failed, "seconds": round(time.perf_counter() - began, 3)}

    def close(self) -> None:
        self.services.hasher.shutdown()
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
