"""Integration fixtures: a real Redis server for the session, and the app wired to it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import Settings, load_settings
from tests.redis_server import MISSING, RedisServer, find_server_binary

API_KEY = "test-key-tenant-a"
OTHER_KEY = "test-key-tenant-b"
PEPPER = base64.b64encode(b"p" * 32).decode()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = find_server_binary()
    if binary is None:
        pytest.exit(MISSING, returncode=3)
    server = RedisServer(binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


def tenant_toml(name: str, key: str, policy: dict[str, Any]) -> str:
    lines = [
        "[[tenants]]",
        f'name = "{name}"',
        f'api_key_sha256 = ["{hashlib.sha256(key.encode()).hexdigest()}"]',
        'sender = "Acme"',
        'app_name = "Acme"',
    ]
    limits = policy.pop("limits", {})
    if policy:
        lines.append("[tenants.policy]")
        for k, v in policy.items():
            lines.append(f"{k} = {_toml(v)}")
    if limits:
        lines.append("[tenants.policy.limits]")
        for k, v in limits.items():
            lines.append(f"{k} = {_toml(v)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Path) -> Callable[..., Settings]:
    def build(policy: dict[str, Any] | None = None, **env: str) -> Settings:
        config = tmp_path / "otp.toml"
        config.write_text(
            tenant_toml("acme", API_KEY, dict(policy or {})) + tenant_toml("other", OTHER_KEY, {})
        )
        return load_settings(
            {
                "OTP_ENV": "development",
                "OTP_REDIS_URL": redis_server.url,
                "OTP_PEPPER": "base64:" + PEPPER,
                "OTP_ARGON2_PROFILE": "test",
                "OTP_CONFIG_FILE": str(config),
                "OTP_SANDBOX_ECHO": "false",
                **env,
            }
        )

    return build


class Harness:
    """The app under test, its HTTP client and the sandbox phone."""

    def __init__(self, client: AsyncTestClient[Any], gateway: SandboxGateway) -> None:
        self.client = client
        self.gateway = gateway
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    @property
    def app(self) -> Any:
        return self.client.app

    async def start(self, to: str = "+48601234567", **body: Any) -> Any:
        return await self.client.post("/otp/start", json={"to": to, **body}, headers=self.headers)

    async def verify(self, code: str, **by: Any) -> Any:
        return await self.client.post(
            "/otp/verify", json={"code": code, **by}, headers=self.headers
        )

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the lane has dispatched and recorded every queued send.

        The test client runs the app on its own event loop, so this polls instead of awaiting
        the lane's queue from this loop.
        """
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0.005)
        while not self.app.state.lane.idle:
            assert time.monotonic() < deadline, "the lane did not settle"
            await asyncio.sleep(0.005)

    async def code_for(self, to: str = "+48601234567") -> str:
        """The code the sandbox phone received last, read from the SMS text."""
        await self.settle()
        sent = self.gateway.last_to(to)
        assert sent is not None, f"no SMS reached {to}"
        digits = [w.strip(".:,#") for w in sent.text.split()]
        codes = [w for w in digits if w.isdigit() and len(w) >= 4]
        assert codes, "the SMS holds no code"
        return codes[0]


@pytest.fixture
def make_harness(make_settings: Callable[..., Settings], redis: Redis) -> Callable[..., Any]:
    def build(policy: dict[str, Any] | None = None, **env: str) -> Any:
        settings = make_settings(policy, **env)
        gateway = SandboxGateway(echo=False)
        app = create_app(settings, gateway=gateway)
        return _HarnessContext(app, gateway)

    return build


class _HarnessContext:
    def __init__(self, app: Any, gateway: SandboxGateway) -> None:
        self._client = AsyncTestClient(app=app)
        self._gateway = gateway

    async def __aenter__(self) -> Harness:
        await self._client.__aenter__()
        return Harness(self._client, self._gateway)

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)


@pytest.fixture
async def harness(make_harness: Callable[..., Any]) -> AsyncIterator[Harness]:
    async with make_harness() as h:
        yield h


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything any logger writes during the test, at every level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)
