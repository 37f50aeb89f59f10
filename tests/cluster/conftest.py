"""Fixtures for the scale-out tests: one Redis server, a 3-master Redis Cluster and a Sentinel
setup (each started once per session, only when a test asks for it), and helpers that run the
real app on loopback ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import Settings, load_settings
from tests.integration.conftest import API_KEY, OTHER_KEY, PEPPER, tenant_toml
from tests.support.binaries import redis_server_binary
from tests.support.redis_servers import LocalCluster, LocalSentinel, RedisServer, Topology, running

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def single_backend() -> Iterator[RedisServer]:
    with running("single", redis_server_binary()) as server:
        assert isinstance(server, RedisServer)
        yield server


@pytest.fixture(scope="session")
def cluster_backend() -> Iterator[LocalCluster]:
    with running("cluster", redis_server_binary()) as cluster:
        assert isinstance(cluster, LocalCluster)
        yield cluster


@pytest.fixture(scope="session")
def sentinel_backend() -> Iterator[LocalSentinel]:
    with running("sentinel", redis_server_binary()) as sentinel:
        assert isinstance(sentinel, LocalSentinel)
        yield sentinel


@pytest.fixture(params=["single", "cluster", "sentinel"])
async def backend(request: pytest.FixtureRequest) -> Any:
    """Each Redis topology in turn, flushed before the test."""
    found: Topology = request.getfixturevalue(f"{request.param}_backend")
    client = found.client()
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return found


def service_settings(redis_url: str, tmp_path: Path, **policy: Any) -> Settings:
    """Development-mode settings (sandbox provider) for the `acme` tenant, on `redis_url`."""
    config = tmp_path / "otp.toml"
    config.write_text(tenant_toml("acme", API_KEY, policy) + tenant_toml("other", OTHER_KEY, {}))
    return load_settings(
        {
            "OTP_ENV": "development",
            "OTP_REDIS_URL": redis_url,
            "OTP_PEPPER": "base64:" + PEPPER,
            "OTP_ARGON2_PROFILE": "test",
            "OTP_CONFIG_FILE": str(config),
            "OTP_SANDBOX_ECHO": "false",
        }
    )


async def next_code(gateway: SandboxGateway, to: str, after: int = 0, timeout: float = 5) -> str:
    """The code in the first SMS to `to` past the first `after` ones this gateway sent."""
    deadline = time.monotonic() + timeout
    while True:
        sent = [m for m in gateway.outbox if m.to == to]
        if len(sent) > after:
            words = [w.strip(".:,#") for w in sent[after].text.split()]
            return next(w for w in words if w.isdigit() and len(w) >= 4)
        assert time.monotonic() < deadline, f"no SMS #{after + 1} reached {to}"
        await asyncio.sleep(0.01)


async def until(what: str, probe: Any, timeout: float = 10, interval: float = 0.05) -> Any:
    """Await `probe()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
