"""Console fixtures: the integration suite's real Redis, and the app configured with support
users (tests/console/support.py), reached through AsyncTestClient."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from otpservice.app import create_app
from otpservice.providers.sandbox import SandboxGateway
from otpservice.settings import Settings, load_settings
from tests.console.support import (
    ACME_KEY,
    PASSWORDS,
    csrf_token,
    sandbox_report_ref,
    write_config,
)
from tests.integration.conftest import PEPPER, redis, redis_server  # noqa: F401 - fixtures
from tests.support.redis_servers import RedisServer


@pytest.fixture
def console_settings(redis_server: RedisServer, tmp_path: Path) -> Callable[..., Settings]:  # noqa: F811
    def build(**env: str) -> Settings:
        return load_settings(
            {
                "OTP_ENV": "development",
                "OTP_REDIS_URL": redis_server.url,
                "OTP_PEPPER": "base64:" + PEPPER,
                "OTP_ARGON2_PROFILE": "test",
                "OTP_CONFIG_FILE": str(write_config(tmp_path)),
                "OTP_SANDBOX_ECHO": "false",
                **env,
            }
        )

    return build


class Console:
    """The app, its sandbox phone, and a browser-like client of the console."""

    def __init__(self, client: AsyncTestClient[Any], gateway: SandboxGateway, settings: Settings):
        self.client = client
        self.gateway = gateway
        self.settings = settings
        self.token = ""

    @property
    def app(self) -> Any:
        return self.client.app

    async def sign_in(self, name: str, password: str | None = None) -> Any:
        page = await self.client.get("/console/login")
        self.token = csrf_token(page.text)
        return await self.client.post(
            "/console/login",
            data={
                "name": name,
                "password": PASSWORDS[name] if password is None else password,
                "_csrf_token": self.token,
            },
            follow_redirects=False,
        )

    async def lookup(self, query: str, tenant: str = "") -> Any:
        page = await self.client.get("/console/")
        self.token = csrf_token(page.text)
        fields = {"q": query, "_csrf_token": self.token}
        if tenant:
            fields["tenant"] = tenant
        return await self.client.post("/console/lookup", data=fields)

    async def start(self, to: str, key: str = ACME_KEY) -> dict[str, Any]:
        response = await self.client.post(
            "/otp/start", json={"to": to}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code in (200, 201), response.text
        await self.settle()
        return dict(response.json())

    async def resend(self, verification_id: str) -> Any:
        response = await self.client.post(
            f"/otp/{verification_id}/resend", headers={"Authorization": f"Bearer {ACME_KEY}"}
        )
        await self.settle()
        return response

    async def verify(self, verification_id: str, code: str) -> Any:
        return await self.client.post(
            "/otp/verify",
            json={"id": verification_id, "code": code},
            headers={"Authorization": f"Bearer {ACME_KEY}"},
        )

    async def settle(self) -> None:
        import asyncio  # noqa: PLC0415
        import time  # noqa: PLC0415

        deadline = time.monotonic() + 5
        await asyncio.sleep(0.005)
        while not self.app.state.services.lane.idle:
            assert time.monotonic() < deadline, "the lane did not settle"
            await asyncio.sleep(0.005)

    def code_for(self, to: str) -> str:
        sent = self.gateway.last_to(to)
        assert sent is not None
        return next(w.strip(".:,#") for w in sent.text.split() if w.strip(".:,#").isdigit())

    def codes_sent(self) -> list[str]:
        return [
            next(w.strip(".:,#") for w in m.text.split() if w.strip(".:,#").isdigit())
            for m in self.gateway.outbox
        ]

    async def report(
        self, to: str, verification_id: str, send: int, status: str, error: str | None = None
    ) -> None:
        """A delivery report for SMS `send`, posted as the sandbox provider posts it."""
        body: dict[str, Any] = {
            "externalId": sandbox_report_ref(
                base64.b64decode(PEPPER), "acme", to, verification_id, send
            ),
            "status": status,
        }
        if error:
            body["errorCode"] = error
        secret = self.settings.provider.webhook_secrets["sandbox"].reveal().decode()
        response = await self.client.post(
            "/webhooks/sandbox", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert response.status_code == 200, response.text


@pytest.fixture
async def console(
    console_settings: Callable[..., Settings],
    redis: Redis,  # noqa: F811 - flushed for each test
) -> AsyncIterator[Console]:
    settings = console_settings()
    gateway = SandboxGateway(echo=False)
    app = create_app(settings, gateway=gateway)
    async with AsyncTestClient(app=app) as client:
        yield Console(client, gateway, settings)
