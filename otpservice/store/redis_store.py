"""VerificationStore: the verification state in Redis, one Lua script per atomic step.

Redis exceptions are translated here, once, into ServiceUnavailable; nothing above this module
sees a redis error. Every call is bounded by the configured timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Literal, TypeVar

import msgspec
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from otpservice import metrics
from otpservice.errors import ServiceUnavailable
from otpservice.store.connection import RedisClient
from otpservice.store.keys import Keyspace, NumberKeys, VerificationKeys
from otpservice.store.scripts import register_scripts

log = logging.getLogger(__name__)
T = TypeVar("T")
ScriptCall = tuple[str, list[str], list[Any]]
"""(script name, keys, args)"""

SendVerdict = Literal["new", "resend", "not_found", "max_sends", "too_soon", "hour", "day"]


class SendCheck(msgspec.Struct, frozen=True):
    verdict: SendVerdict
    wait_ms: int
    rand: str
    salt: bytes


class SendCommit(msgspec.Struct, frozen=True):
    verdict: Literal["ok", "conflict", "not_found", "max_sends", "too_soon", "hour", "day"]
    wait_ms: int = 0
    rand: str = ""
    created: bool = False
    now_ms: int = 0
    fields: dict[str, bytes] = msgspec.field(default_factory=dict)
    entry: str = ""
    """The send's entry in its shard's lane stream, claimed by this process."""


class SendRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything send_commit needs besides the keys."""

    mode: Literal["number", "id"]
    tenant: str
    expected_rand: str
    new_rand: str
    salt: bytes
    digest: bytes
    sends_per_hour: int
    sends_per_day: int
    ttl_ms: int
    max_attempts: int
    max_sends: int
    cooldown_base_ms: int
    cooldown_cap_ms: int
    retention_ms: int
    e164: str
    region: str
    client_ref: str
    accept_previous: bool
    provider: str
    queued_event: bytes
    locale: str
    app_hash: str
    sealed_code: bytes
    """The code, sealed for the lane stream (sealing.py)."""
    consumer: str
    """This process' consumer name in the lane's group."""


class CheckBegin(msgspec.Struct, frozen=True):
    verdict: Literal["ok", "not_found", "rate_limited"]
    wait_ms: int = 0
    rand: str = ""
    salt: bytes = b""
    current: bytes = b""
    previous: bytes = b""
    sends: int = 0
    attempts_left: int = 0


class CheckFinish(msgspec.Struct, frozen=True):
    verdict: Literal["approved", "pending", "failed", "not_found"]
    attempts_left: int = 0
    created_ms: int = 0
    region: str = ""


class DeliveryUpdate(msgspec.Struct, frozen=True):
    verdict: Literal["unmatched", "duplicate", "recorded"]
    previous: str = ""
    current: str = ""
    submitted_ms: int | None = None
    region: str = ""
    provider: str = ""
    now_ms: int = 0


class RecordSnapshot(msgspec.Struct, frozen=True):
    now_ms: int
    fields: dict[str, bytes]
    events: list[bytes]


class IdempotencyState(msgspec.Struct, frozen=True):
    verdict: Literal["reserved", "conflict", "in_progress", "replay"]
    response: bytes = b""


_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    OSError,
    TimeoutError,
)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[str, bytes]:
    return {_s(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}


class VerificationStore:
    def __init__(self, client: RedisClient, keyspace: Keyspace, timeout: float) -> None:
        self.client = client
        self.keys = keyspace
        self._timeout = timeout
        self._scripts = register_scripts(client)

    async def call(self, operation: str, awaitable: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                result = await awaitable
        except _UNAVAILABLE as exc:
            metrics.store_result(operation, ok=False)
            log.warning("store unavailable during %s: %s", operation, type(exc).__name__)
            raise ServiceUnavailable(
                "The verification store cannot be reached; try again shortly."
            ) from exc
        metrics.store_result(operation, ok=True)
        return result

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.call(name, self._scripts[name](keys=list(keys), args=list(args)))

    async def ping(self) -> bool:
        return bool(await self.call("ping", self.client.ping()))

    async def durability_warnings(self) -> list[str]:
        """What in the server's configuration could lose codes or limits (checked at start)."""
        try:
            config = await self.call("config_get", self.client.config_get("*"))
        except (ServiceUnavailable, redis_errors.ResponseError):
            # Managed services often refuse CONFIG: say so rather than guess.
            return ["could not read the Redis configuration (CONFIG GET refused or unreachable)"]
        found = {_s(k): _s(v) for k, v in dict(config).items()}
        warnings = []
        policy = found.get("maxmemory-policy", "")
        if policy and policy != "noeviction":
            warnings.append(
                f"maxmemory-policy is {policy}: Redis may evict codes and rate limits under"
                " memory pressure; set it to noeviction"
            )
        if found.get("appendonly") == "no":
            warnings.append(
                "appendonly is off: a Redis restart loses pending codes and limits; enable AOF"
            )
        return warnings

    async def take_rate(self, bucket: str, limit: int, period_ms: int) -> int:
        """Take one event from a bucket; the milliseconds to wait, 0 when taken."""
        return int(await self.script("rate_take", [bucket], [limit, period_ms]))

    async def send_check(
        self,
        number: NumberKeys,
        *,
        mode: Literal["number", "id"],
        tenant: str,
        rand: str,
        sends_per_hour: int,
        sends_per_day: int,
        max_sends: int,
        cooldown_base_ms: int,
        cooldown_cap_ms: int,
        rate: tuple[str, int, int] | None = None,
    ) -> tuple[int, SendCheck]:
        """The read-only pre-check of a send, after taking from `rate` (bucket, limit, period
        ms) when given: (milliseconds to wait for that bucket, 0 when taken; the pre-check)."""
        keys = [number.index]
        args = [
            mode,
            tenant,
            number.record_prefix,
            rand,
            sends_per_hour,
            sends_per_day,
            max_sends,
            cooldown_base_ms,
            cooldown_cap_ms,
        ]
        wait = 0
        if rate is None:
            raw = await self.script("send_check", keys, args)
        elif isinstance(self.client, Redis):
            # One round trip for both: the bucket and the number live in different slots, so
            # they cannot be one script, but one server pipelines them.
            bucket, limit, period_ms = rate
            wait, raw = await self.call(
                "send_check",
                self.pipelined(
                    [("rate_take", [bucket], [limit, period_ms]), ("send_check", keys, args)]
                ),
            )
        else:
            # Redis Cluster: the two keys may sit on different nodes.
            wait = await self.take_rate(*rate)
            raw = await self.script("send_check", keys, args)
        check = SendCheck(_s(raw[0]), int(raw[1]), _s(raw[2]), bytes(raw[3]))  # type: ignore[arg-type]
        return int(wait), check

    async def pipelined(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Several scripts in one round trip on one server (not Cluster: slots may differ).
        Unbounded: callers wrap it in call()."""
        assert isinstance(self.client, Redis)
        async with self.client.pipeline(transaction=False) as pipe:
            # Plain EVALSHA: a Pipeline given Script objects would first ask SCRIPT EXISTS,
            # costing the round trip this pipeline saves.
            for name, call_keys, call_args in calls:
                script = self._scripts[name]
                pipe.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
            results = list(await pipe.execute(raise_on_error=False))
        for index, result in enumerate(results):
            if isinstance(result, redis_errors.NoScriptError):
                # Redis restarted or failed over: this call alone again, which loads the script.
                name, call_keys, call_args = calls[index]
                results[index] = await self._scripts[name](keys=call_keys, args=call_args)
            elif isinstance(result, Exception):
                raise result
        return results

    async def scripts(self, operation: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Several scripts: pipelined on one server, concurrent on a Cluster. Bounded."""
        if isinstance(self.client, Redis):
            return await self.call(operation, self.pipelined(calls))
        return list(
            await self.call(
                operation,
                asyncio.gather(
                    *(self._scripts[n](keys=list(k), args=list(a)) for n, k, a in calls)
                ),
            )
        )

    async def send_commit(self, number: NumberKeys, request: SendRequest) -> SendCommit:
        r = request
        raw = await self.script(
            "send_commit",
            [number.index, number.lane],
            [
                r.mode,
                r.tenant,
                number.record_prefix,
                r.expected_rand,
                r.new_rand,
                r.salt,
                r.digest,
                r.sends_per_hour,
                r.sends_per_day,
                r.ttl_ms,
                r.max_attempts,
                r.max_sends,
                r.cooldown_base_ms,
                r.cooldown_cap_ms,
                r.retention_ms,
                r.e164,
                r.region,
                r.client_ref,
                "1" if r.accept_previous else "0",
                r.provider,
                number.events_prefix,
                r.queued_event,
                r.locale,
                r.app_hash,
                number.tag,
                r.sealed_code,
                r.consumer,
            ],
        )
        verdict = _s(raw[0])
        if verdict == "ok":
            return SendCommit(
                "ok",
                rand=_s(raw[1]),
                created=_s(raw[2]) == "1",
                now_ms=int(raw[3]),
                fields=_fields(raw[4]),
                entry=_s(raw[5]),
            )
        return SendCommit(verdict, wait_ms=int(raw[1]))  # type: ignore[arg-type]

    async def check_begin(
        self,
        *,
        mode: Literal["number", "id"],
        lookup_key: str,
        failed_checks_key: str,
        record_prefix: str,
        tenant: str,
        rand: str,
        failed_limit: int,
        failed_window_ms: int,
    ) -> CheckBegin:
        raw = await self.script(
            "check_begin",
            [lookup_key, failed_checks_key],
            [mode, tenant, record_prefix, rand, failed_limit, failed_window_ms],
        )
        verdict = _s(raw[0])
        if verdict == "rate_limited":
            return CheckBegin("rate_limited", wait_ms=int(raw[1]))
        if verdict != "ok":
            return CheckBegin("not_found")
        return CheckBegin(
            "ok",
            rand=_s(raw[1]),
            salt=bytes(raw[2]),
            current=bytes(raw[3]),
            previous=bytes(raw[4]),
            sends=int(raw[5]),
            attempts_left=int(raw[6]),
        )

    async def check_finish(
        self, keys: VerificationKeys, failed_checks_key: str, matched_send: int
    ) -> CheckFinish:
        raw = await self.script(
            "check_finish",
            [keys.record, failed_checks_key, keys.number_index],
            [matched_send, keys.rand],
        )
        verdict = _s(raw[0])
        if verdict == "approved":
            return CheckFinish("approved", int(raw[1]), int(raw[2]), _s(raw[3]))
        if verdict in {"pending", "failed"}:
            return CheckFinish(verdict, int(raw[1]))  # type: ignore[arg-type]
        return CheckFinish("not_found")

    async def cancel(self, keys: VerificationKeys) -> bool:
        raw = await self.script(
            "cancel", [keys.record, keys.number_index], [keys.tenant, keys.rand]
        )
        return _s(raw[0]) == "ok"

    async def read(self, keys: VerificationKeys) -> RecordSnapshot | None:
        raw = await self.script("read", [keys.record, keys.events], [keys.tenant])
        if not raw:
            return None
        events = bytes(raw[2])
        return RecordSnapshot(int(raw[0]), _fields(raw[1]), events.split(b"\n") if events else [])

    async def record_delivery(
        self,
        keys: VerificationKeys,
        *,
        send: int,
        status: str,
        event: bytes,
        lifts_cooldown: bool,
        retention_ms: int,
        lane_entry: str | None = None,
    ) -> DeliveryUpdate:
        """`lane_entry`: the send's lane entry, acknowledged in the same step."""
        ack_keys, ack_args = ([keys.lane], [lane_entry]) if lane_entry else ([], [])
        raw = await self.script(
            "record_delivery",
            [keys.record, keys.events, keys.reports_seen, *ack_keys],
            [
                send,
                status,
                event,
                "1" if lifts_cooldown else "0",
                retention_ms,
                # Computed here: the embedded store's Lua (fakeredis) has no redis.sha1hex.
                hashlib.sha256(b"%d|" % send + event).hexdigest()[:24],
                *ack_args,
            ],
        )
        verdict = _s(raw[0])
        if verdict != "recorded":
            return DeliveryUpdate(verdict)  # type: ignore[arg-type]
        submitted = _s(raw[3])
        return DeliveryUpdate(
            "recorded",
            previous=_s(raw[1]),
            current=_s(raw[2]),
            submitted_ms=int(submitted) if submitted else None,
            region=_s(raw[4]),
            provider=_s(raw[5]),
            now_ms=int(raw[6]),
        )

    async def idempotency_reserve(
        self, key: str, fingerprint: str, ttl_ms: int
    ) -> IdempotencyState:
        raw = await self.script("idempotency_reserve", [key], [fingerprint, ttl_ms])
        verdict = _s(raw[0])
        if verdict == "replay":
            return IdempotencyState("replay", bytes(raw[1]))
        return IdempotencyState(verdict)  # type: ignore[arg-type]

    async def idempotency_complete(self, key: str, fingerprint: str, response: bytes) -> None:
        value = b"d|" + fingerprint.encode() + b"|" + response
        await self.call("idempotency_complete", self.client.set(key, value, xx=True, keepttl=True))

    async def idempotency_release(self, key: str) -> None:
        await self.call("idempotency_release", self.client.delete(key))

    async def remember_provider_message(
        self, key: str, verification_id: str, send: int, ttl_ms: int
    ) -> None:
        value = f"{verification_id}:{send}"
        await self.call("provider_message", self.client.set(key, value, px=ttl_ms))

    async def lookup_provider_message(self, key: str) -> tuple[str, int] | None:
        raw = await self.call("provider_message", self.client.get(key))
        if raw is None:
            return None
        verification_id, _, send = _s(raw).partition(":")
        return verification_id, int(send)
