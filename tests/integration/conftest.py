"""Integration fixtures: a real Redis server for the session, and the app wired to it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import ReportSimulator, SandboxGateway
from otpservice.settings import Settings, load_settings, parse_outcomes
from tests.support.binaries import redis_server_binary
from tests.support.redis_servers import RedisServer, Topology, running

API_KEY = "test-key-tenant-a"
OTHER_KEY = "test-key-tenant-b"
PEPPER = base64.b64encode(b"p" * 32).decode()


# OTP_TEST_REDIS_MODE=cluster|sentinel runs this suite against a local 3-master Redis Cluster or
# a Sentinel-managed primary with a replica (tests/support/redis_servers.py); default: one server.
REDIS_MODE = os.environ.get("OTP_TEST_REDIS_MODE", "single")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Topology]:
    """The session's Redis: every topology has `.url`, and `.client()` for assertions."""
    with running(REDIS_MODE, redis_server_binary()) as topology:
        yield topology


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    # In cluster mode a RedisCluster client: flushall, scan_iter and friends cover every master.
    single = REDIS_MODE == "single"
    client = Redis.from_url(redis_server.url) if single else redis_server.client()
    await client.flushall()
    yield client
    await client.aclose()


def tenant_toml(name: str, key: str, policy: dict[str, Any], **fields: str) -> str:
    """A tenant's TOML. `policy` is flat but for `limits` and `fraud` (a table, whose budgets
    are tables too). The fraud guard is off unless `fraud` is given: most tests start codes to
    many numbers of one prefix, which is what the guard is there to stop
    (tests/integration/test_fraud.py tests it)."""
    lines = [
        "[[tenants]]",
        f'name = "{name}"',
        f'api_key_sha256 = ["{hashlib.sha256(key.encode()).hexdigest()}"]',
        'sender = "Acme"',
        'app_name = "Acme"',
        *(f"{k} = {_toml(v)}" for k, v in fields.items()),
    ]
    limits = policy.pop("limits", {})
    fraud = policy.pop("fraud", {"mode": "off"})
    if policy:
        lines.append("[tenants.policy]")
        for k, v in policy.items():
            lines.append(f"{k} = {_toml(v)}")
    if limits:
        lines.append("[tenants.policy.limits]")
        for k, v in limits.items():
            lines.append(f"{k} = {_toml(v)}")
    lines.append("[tenants.policy.fraud]")
    tables = {k: v for k, v in fraud.items() if isinstance(v, dict)}
    lines.extend(f"{k} = {_toml(v)}" for k, v in fraud.items() if k not in tables)
    for table, values in tables.items():
        lines.append(f"[tenants.policy.fraud.{table}]")
        lines.extend(f"{k} = {_toml(v)}" for k, v in values.items())
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
    def build(
        policy: dict[str, Any] | None = None, tenant: dict[str, str] | None = None, **env: str
    ) -> Settings:
        """`tenant`: more fields of tenant acme's table (events_url, ...)."""
        config = tmp_path / "otp.toml"
        config.write_text(
            tenant_toml("acme", API_KEY, dict(policy or {}), **(tenant or {}))
            + tenant_toml("other", OTHER_KEY, {})
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
        while not self.app.state.services.lane.idle:
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
    """make_harness(policy, reports=None, **env): `reports` is a sandbox outcome mix such as
    "delivered=100"; the sandbox then posts delivery reports back through /webhooks/sandbox."""

    def build(
        policy: dict[str, Any] | None = None,
        *,
        reports: str | None = None,
        report_delay: float = 0.05,
        tenant: dict[str, str] | None = None,
        **env: str,
    ) -> Any:
        settings = make_settings(policy, tenant, **env)
        gateway = SandboxGateway(echo=False)
        app = create_app(settings, gateway=gateway)
        if reports is not None:
            gateway.reports = ReportSimulator(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
                url="http://testserver/webhooks/sandbox",
                secret=settings.provider.webhook_secrets["sandbox"].reveal().decode(),
                delay=report_delay,
                outcomes=parse_outcomes(reports),
            )
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


WEBHOOK_SECRETS = {
    "OTP_MESSAGEFLOW_WEBHOOK_SECRET": "mf-hook-secret",
    "OTP_FLOWSTATES_WEBHOOK_SECRET": "fs-hook-secret",
}


# --- Shared checks for the limit, expiry, bad-input, secrecy and operations tests -------------

PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code"})


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with this status and machine-readable `code`."""
    assert response.status_code == status, response.text
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/problem+json"), content_type
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"urn:otpservice:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def retry_after(response: Any) -> int:
    """The Retry-After header as whole seconds (RFC 9110 delay-seconds), at least 1."""
    raw = response.headers.get("retry-after")
    assert raw is not None, f"no Retry-After on {response.status_code} {response.text}"
    assert raw.isascii(), raw
    assert raw.isdigit(), raw
    seconds = int(raw)
    assert seconds >= 1
    return seconds


async def redis_contents(client: Redis) -> dict[bytes, tuple[bytes, Any]]:
    """Every key in Redis with its type and whole value (not its TTL, which ticks)."""
    contents: dict[bytes, tuple[bytes, Any]] = {}
    async for key in client.scan_iter(count=1000):
        kind = await client.type(key)
        value: Any
        if kind == b"string":
            value = await client.get(key)
        elif kind == b"hash":
            value = await client.hgetall(key)
        elif kind == b"list":
            value = await client.lrange(key, 0, -1)
        elif kind == b"set":
            value = sorted(await client.smembers(key))
        elif kind == b"zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            value = await client.xrange(key)
        else:
            value = await client.dump(key)
        contents[key] = (kind, value)
    return contents


async def metric_value(client: Any, sample: str, **labels: str) -> float:
    """One sample of /metrics, e.g. ("otp_rate_limited_total", scope="ip"); 0 when absent."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return float(found.value)
    return 0.0
