"""The service over real HTTP against a local server speaking each provider's API.

The provider accepts (or fails) the SMS and posts its delivery report back to the service's
webhook over real HTTP, as MessageFlow and Flowstates do.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from otpservice.app import create_app
from otpservice.settings import load_settings
from tests.integration.conftest import API_KEY, PEPPER, tenant_toml
from tests.integration.stores import sms_ref
from tests.support.asgi import serving
from tests.support.fake_provider import FakeProvider
from tests.support.ports import free_port
from tests.support.redis_servers import RedisServer

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
HOOK_SECRET = "hook-secret-123"


class Stack:
    def __init__(self, client: httpx.AsyncClient, provider: FakeProvider) -> None:
        self.client = client
        self.provider = provider

    async def wait_for(self, verification_id: str, status: str, timeout: float = 8) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            body = (await self.client.get(f"/otp/{verification_id}", headers=HEADERS)).json()
            if body["delivery"]["status"] == status or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.02)


@pytest.fixture
def stack(redis_server: RedisServer, redis: Any, tmp_path: Path) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def run(
        provider_name: str, policy: dict[str, Any] | None = None, **fake: Any
    ) -> AsyncIterator[Stack]:
        provider = FakeProvider(**fake)
        provider.webhook_secret = HOOK_SECRET
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        provider.flowstates_webhook = f"{public}/webhooks/flowstates"
        config = tmp_path / "otp.toml"
        config.write_text(tenant_toml("acme", API_KEY, dict(policy or {})))
        settings = load_settings(
            {
                "OTP_REDIS_URL": redis_server.url,
                "OTP_PEPPER": "base64:" + PEPPER,
                "OTP_ARGON2_PROFILE": "test",
                "OTP_CONFIG_FILE": str(config),
                "OTP_PUBLIC_URL": public,
                "OTP_PROVIDER": provider_name,
                "OTP_MESSAGEFLOW_PRIORITY_BASE_URL": provider.url,
                "OTP_MESSAGEFLOW_PRIORITY_API_KEY": "mf-api-key",
                "OTP_MESSAGEFLOW_PRIORITY_APP_KEY": "mf-app-key",
                "OTP_MESSAGEFLOW_WEBHOOK_SECRET": HOOK_SECRET,
                "OTP_FLOWSTATES_BASE_URL": provider.url,
                "OTP_FLOWSTATES_API_KEY": "fs-api-key",
                "OTP_FLOWSTATES_WEBHOOK_SECRET": HOOK_SECRET,
                "OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS": "5",
            }
        )
        async with (
            serving(provider.app(), provider.port),
            serving(create_app(settings), port),
            httpx.AsyncClient(base_url=public, timeout=10) as client,
        ):
            try:
                yield Stack(client, provider)
            finally:
                await provider.close()

    return run


def _code(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, "no code in the SMS"
    return match.group(1)


async def test_messageflow_gets_the_exact_request_and_its_report_marks_the_sms_delivered(
    stack: Callable[..., Any],
) -> None:
    async with stack("messageflow") as s:
        started = (
            await s.client.post("/otp/start", json={"to": "+48601234567"}, headers=HEADERS)
        ).json()
        body = await s.wait_for(started["id"], "delivered")
        assert body["delivery"]["status"] == "delivered"
        assert [e["status"] for e in body["delivery"]["events"]] == [
            "queued",
            "submitted",
            "delivered",
        ]
        assert len(s.provider.received) == 1
        sent = s.provider.received[0]
        assert sent.headers["authorization"] == "mf-api-key"
        assert sent.headers["application-key"] == "mf-app-key"
        assert set(sent.body) == {
            "sender",
            "message",
            "phoneNumbers",
            "validity",
            "type",
            "externalId",
            "webhookUrl",
        }
        assert sent.body["phoneNumbers"] == ["+48601234567"]
        assert sent.body["sender"] == "Acme"
        assert sent.body["type"] == 0
        assert sent.body["validity"] in {9, 10}
        assert sent.body["externalId"] == sms_ref(started["id"])
        assert sent.body["webhookUrl"].endswith("/webhooks/messageflow")
        code = _code(sent.body["message"])
        checked = await s.client.post(
            "/otp/verify", json={"id": started["id"], "code": code}, headers=HEADERS
        )
        assert checked.json()["valid"] is True
        metrics = (await s.client.get("/metrics")).text
        assert (
            'otp_sends_total{lane="priority",outcome="accepted",provider="messageflow"} 1.0'
            in metrics
        )
        assert re.search(
            r'otp_delivery_seconds_count\{country="PL",provider="messageflow",'
            r'status="delivered"\} [1-9]',
            metrics,
        )


async def test_flowstates_reports_are_matched_by_its_own_message_id(
    stack: Callable[..., Any],
) -> None:
    async with stack("flowstates") as s:
        started = (
            await s.client.post("/otp/start", json={"to": "+48601234567"}, headers=HEADERS)
        ).json()
        body = await s.wait_for(started["id"], "delivered")
        assert body["delivery"]["status"] == "delivered"
        sent = s.provider.received[0]
        assert sent.headers["authorization"] == "X-Api-key fs-api-key"
        assert set(sent.body) == {"to", "message", "sender"}
        assert sent.body["to"] == "+48601234567"


async def test_a_provider_outage_still_delivers_while_the_code_is_valid(
    stack: Callable[..., Any],
) -> None:
    async with stack("messageflow") as s:
        s.provider.answers = [503, 500]
        started = (
            await s.client.post("/otp/start", json={"to": "+48601234567"}, headers=HEADERS)
        ).json()
        body = await s.wait_for(started["id"], "delivered")
        assert body["delivery"]["status"] == "delivered"
        assert len(s.provider.received) == 3
        code = _code(s.provider.received[-1].body["message"])
        checked = await s.client.post(
            "/otp/verify", json={"id": started["id"], "code": code}, headers=HEADERS
        )
        assert checked.json()["valid"] is True


async def test_a_rejection_is_not_retried_and_shows_the_providers_error(
    stack: Callable[..., Any],
) -> None:
    async with stack("messageflow") as s:
        s.provider.answers = [400]
        started = (
            await s.client.post("/otp/start", json={"to": "+48601234567"}, headers=HEADERS)
        ).json()
        body = await s.wait_for(started["id"], "rejected")
        assert body["delivery"]["status"] == "rejected"
        assert body["delivery"]["events"][-1]["error_code"] == "ERR_NUMBER"
        await asyncio.sleep(0.5)
        assert len(s.provider.received) == 1
        # A rejected SMS lifts the cooldown: the user can ask for a new code at once.
        resent = await s.client.post(f"/otp/{started['id']}/resend", headers=HEADERS)
        assert resent.status_code == 200


async def test_no_send_goes_out_after_the_code_expired(stack: Callable[..., Any]) -> None:
    async with stack("flowstates", {"code_ttl_seconds": 2}) as s:
        s.provider.answers = [503] * 1000
        started_at = time.monotonic()
        started = (
            await s.client.post("/otp/start", json={"to": "+48601234567"}, headers=HEADERS)
        ).json()
        body = await s.wait_for(started["id"], "failed", timeout=6)
        assert body["delivery"]["status"] == "failed"
        attempts = len(s.provider.received)
        assert attempts >= 2
        assert all(r.at - started_at < 2.0 for r in s.provider.received)
        await asyncio.sleep(0.5)
        assert len(s.provider.received) == attempts
