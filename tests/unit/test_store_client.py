"""StoreClient's handling of Redis errors, with a fake client (no I/O)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis import exceptions as redis_errors

from otpservice.errors import Overloaded, ServiceUnavailable
from otpservice.store.client import StoreClient


class _Script:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, keys: Any = None, args: Any = None) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [b"ok"]


class _Client:
    def __init__(self) -> None:
        self.scripts: dict[str, _Script] = {}

    def register_script(self, source: str) -> _Script:
        script = _Script([])
        self.scripts[str(len(self.scripts))] = script
        return script


def store_with(name: str, failures: list[BaseException]) -> tuple[StoreClient, _Script]:
    store = StoreClient(_Client(), timeout=1.0)  # type: ignore[arg-type]
    script = _Script(failures)
    store._scripts[name] = script  # type: ignore[assignment]
    return store, script


@pytest.mark.parametrize("name", ["read", "send_check", "record_delivery"])
async def test_a_script_that_may_run_twice_is_run_again_after_a_dead_connection(name: str) -> None:
    store, script = store_with(name, [redis_errors.ConnectionError("closed by server")])
    assert await store.script(name, ["k"], []) == [b"ok"]
    assert script.calls == 2


@pytest.mark.parametrize("name", ["check_begin", "check_finish", "send_commit", "rate_take"])
async def test_a_script_that_must_not_run_twice_is_not_retried(name: str) -> None:
    store, script = store_with(name, [redis_errors.ConnectionError("closed by server")])
    with pytest.raises(ServiceUnavailable):
        await store.script(name, ["k"], [])
    assert script.calls == 1


async def test_a_second_failure_or_a_timeout_is_the_store_being_away() -> None:
    store, script = store_with(
        "read", [redis_errors.ConnectionError(), redis_errors.ConnectionError()]
    )
    with pytest.raises(ServiceUnavailable):
        await store.script("read", ["k"], [])
    assert script.calls == 2
    store, script = store_with("read", [redis_errors.TimeoutError()])
    with pytest.raises(ServiceUnavailable):
        await store.script("read", ["k"], [])
    assert script.calls == 1


class _Lag:
    def __init__(self, lagging: bool) -> None:
        self.is_lagging = lagging

    def lagging(self, threshold: float) -> bool:
        return self.is_lagging


class _Slow(_Script):
    async def __call__(self, keys: Any = None, args: Any = None) -> Any:
        await asyncio.sleep(1)
        return [b"ok"]


@pytest.mark.parametrize(("lagging", "error"), [(True, Overloaded), (False, ServiceUnavailable)])
async def test_a_timeout_behind_a_late_event_loop_is_overload_not_a_store_outage(
    lagging: bool, error: type[Exception]
) -> None:
    store = StoreClient(_Client(), timeout=0.05, loop_lag=_Lag(lagging))  # type: ignore[arg-type]
    store._scripts["check_begin"] = _Slow([])  # type: ignore[assignment]
    with pytest.raises(error):
        await store.script("check_begin", ["k"], [])
