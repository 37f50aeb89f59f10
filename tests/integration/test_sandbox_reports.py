"""The sandbox simulator posts delivery reports back through the real webhook route."""

from __future__ import annotations

import asyncio
import time

from tests.integration.conftest import Harness


async def _delivery(harness: Harness, verification_id: str, want: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        body = (await harness.client.get(f"/otp/{verification_id}", headers=harness.headers)).json()
        if body["delivery"]["status"] == want or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.02)


async def test_a_sandbox_send_goes_queued_submitted_delivered(make_harness) -> None:
    async with make_harness(reports="delivered=100") as harness:
        started = (await harness.start()).json()
        body = await _delivery(harness, started["id"], "delivered")
        assert body["delivery"]["status"] == "delivered"
        events = body["delivery"]["events"]
        assert [e["status"] for e in events] == ["queued", "submitted", "delivered"]
        assert events[-1]["provider"] == "sandbox"
        assert events[-1]["provider_status"] == "DELIVRD"


async def test_an_undelivered_report_lifts_the_resend_cooldown(make_harness) -> None:
    async with make_harness(reports="undelivered=100") as harness:
        started = (await harness.start()).json()
        body = await _delivery(harness, started["id"], "undelivered")
        assert body["delivery"]["status"] == "undelivered"
        resent = await harness.client.post(f"/otp/{started['id']}/resend", headers=harness.headers)
        assert resent.status_code == 200, resent.text
        assert resent.json()["sends"] == 2


async def test_without_a_report_the_cooldown_holds(make_harness) -> None:
    async with make_harness(reports="none=100") as harness:
        started = (await harness.start()).json()
        await harness.settle()
        resent = await harness.client.post(f"/otp/{started['id']}/resend", headers=harness.headers)
        assert resent.status_code == 429
        assert resent.json()["code"] == "resend_too_soon"
        assert 1 <= int(resent.headers["retry-after"]) <= 30
