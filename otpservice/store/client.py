"""StoreClient: every Redis call of the service goes through here, bounded by the configured
timeout, with redis' exceptions translated, once, into ServiceUnavailable: nothing above this
module sees a redis error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from otpservice import metrics
from otpservice.errors import Overloaded, ServiceUnavailable
from otpservice.loop_lag import LoopLag
from otpservice.store.connection import RedisClient
from otpservice.store.scripts import register_scripts

log = logging.getLogger(__name__)
T = TypeVar("T")
ScriptCall = tuple[str, Sequence[str], Sequence[Any]]
"""(script name, keys, args)"""

_RESET_SAFE = frozenset({"read", "send_check", "record_delivery"})
"""Scripts that may run twice without harm (they only read, or they deduplicate): one whose
connection turns out dead is run once more, on a fresh one. The others are not: a second
check_begin would take a second attempt. (Pooled connections are checked before use anyway,
store/connection.py; this covers a reset that came too late for that check to see.)"""

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


class StoreClient:
    """`loop_lag`: how late this process's event loop runs (loop_lag.py), to tell a Redis
    call that timed out because Redis did not answer from one whose answer waited for a
    saturated loop."""

    def __init__(
        self, client: RedisClient, timeout: float, loop_lag: LoopLag | None = None
    ) -> None:
        self.redis = client
        self._timeout = timeout
        self._loop_lag = loop_lag
        self._scripts = register_scripts(client)

    @property
    def single_server(self) -> bool:
        """One server (or a Sentinel-managed primary): several keys' slots may be pipelined."""
        return isinstance(self.redis, Redis)

    async def call(self, operation: str, awaitable: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                result = await awaitable
        except _UNAVAILABLE as exc:
            if self._overloaded(exc):
                log.debug("%s timed out behind a saturated event loop: overloaded", operation)
                metrics.count_shed(operation)
                raise Overloaded from exc
            metrics.store_result(operation, ok=False)
            log.warning("store unavailable during %s: %s", operation, type(exc).__name__)
            raise ServiceUnavailable(
                "The verification store cannot be reached; try again shortly."
            ) from exc
        metrics.store_result(operation, ok=True)
        return result

    def _overloaded(self, exc: BaseException) -> bool:
        timed_out = isinstance(exc, TimeoutError | redis_errors.TimeoutError)
        # A loop this late took a good part of the call's time budget away from it.
        return (
            timed_out and self._loop_lag is not None and self._loop_lag.lagging(self._timeout / 4)
        )

    async def script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        script = self._scripts[name]
        if name not in _RESET_SAFE:
            return await self.call(name, script(keys=list(keys), args=list(args)))

        async def once_more_on_a_dead_connection() -> Any:
            try:
                return await script(keys=list(keys), args=list(args))
            except redis_errors.ConnectionError:
                # redis-py dropped that connection: the pool lends a fresh one now.
                return await script(keys=list(keys), args=list(args))

        return await self.call(name, once_more_on_a_dead_connection())

    async def scripts(self, operation: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Several scripts: pipelined on one server, concurrent on a Cluster. Bounded."""
        if self.single_server:
            return await self.call(operation, self._pipelined(calls))
        return list(
            await self.call(
                operation,
                asyncio.gather(
                    *(self._scripts[n](keys=list(k), args=list(a)) for n, k, a in calls)
                ),
            )
        )

    async def _pipelined(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Several scripts in one round trip on one server (not Cluster: slots may differ)."""
        assert isinstance(self.redis, Redis)
        async with self.redis.pipeline(transaction=False) as pipe:
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
                results[index] = await self._scripts[name](
                    keys=list(call_keys), args=list(call_args)
                )
            elif isinstance(result, Exception):
                raise result
        return results

    async def ping(self) -> bool:
        return bool(await self.call("ping", self.redis.ping()))

    async def durability_warnings(self) -> list[str]:
        """What in the server's configuration could lose codes or limits (checked at start)."""
        try:
            config = await self.call("config_get", self.redis.config_get("*"))
        except (ServiceUnavailable, redis_errors.ResponseError):
            # Managed services often refuse CONFIG: say so rather than guess.
            return ["could not read the Redis configuration (CONFIG GET refused or unreachable)"]
        found = {_text(k): _text(v) for k, v in dict(config).items()}
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
