"""The quick start's embedded mode: no Redis server; the sandbox reports back; Lua in-process."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from litestar.testing import AsyncTestClient

from otpservice.app import create_app
from otpservice.providers.sandbox import ReportSimulator, SandboxGateway
from otpservice.settings import load_settings


async def test_the_whole_lifecycle_runs_without_a_redis_server() -> None:
    settings = load_settings({"OTP_DEV_API_KEY": "dev-key", "OTP_SANDBOX_ECHO": "false"})
    assert settings.redis_url is None
    gateway = SandboxGateway(echo=False)
    app = create_app(settings, gateway=gateway)
    gateway.reports = ReportSimulator(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)),
        url="http://testserver/webhooks/sandbox",
        secret=settings.provider.webhook_secrets["sandbox"].reveal().decode(),
        delay=0.05,
        outcomes=(("delivered", 1),),
    )
    headers = {"Authorization": "Bearer dev-key"}
    async with AsyncTestClient(app=app) as client:
        started = await client.post("/otp/start", json={"to": "+48601234567"}, headers=headers)
        assert started.status_code == 201
        body = started.json()
        assert [e["status"] for e in body["delivery"]["events"]] == ["queued"]
        deadline = time.monotonic() + 5
        while True:
            read = (await client.get(f"/otp/{body['id']}", headers=headers)).json()
            if read["delivery"]["status"] == "delivered" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert [e["status"] for e in read["delivery"]["events"]] == [
            "queued",
            "submitted",
            "delivered",
        ]
        code = re.search(r"\b(\d{6})\b", gateway.outbox[-1].text)
        assert code is not None
        checked = await client.post(
            "/otp/verify", json={"id": body["id"], "code": code.group(1)}, headers=headers
        )
        assert checked.json()["valid"] is True
